//! Where the bundle's bytes come from: a local file, stdin, or an
//! `https://` URL (reqwest, with retries and `Range` resume). Every source
//! ends up as one plain `Read`, so there is a single verification path
//! behind it. Also the loader's other HTTP: small requests with a deadline
//! (the status callback, metadata services).

mod client;
mod error;
mod http;
pub mod metadata;
mod pinning;
pub mod policy;
pub mod request;
mod retry;
mod sha256;
mod tls;
mod transfer;
pub mod url;
mod validator;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

pub use client::ProxySetting;
pub use error::HttpError;
pub use http::{EventSink, HttpOptions, HttpReader, PlainHttp, StatsHandle, TransferEvent, TransferStats};
pub use retry::RetryPolicy;
pub use sha256::{parse_sha256, to_hex, BadSha256, Sha256Handle, Sha256Mismatch, Sha256Reader};
pub use tls::ExtraRoot;
pub use url::UrlError;
pub use validator::Validator;

/// Where to read the bundle from, as the operator named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// `-`: standard input.
    Stdin,
    /// A path (the injected `/root/install.fw` is one).
    File(PathBuf),
    /// An `http://` or `https://` URL.
    Url(String),
}

impl SourceSpec {
    /// `-` is stdin, anything with a `scheme://` prefix is a URL (so
    /// `ftp://` fails with a clear message instead of "file not found"),
    /// everything else a path.
    pub fn parse(arg: &str) -> SourceSpec {
        let is_url = arg.split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        });
        match arg {
            "-" => SourceSpec::Stdin,
            _ if is_url => SourceSpec::Url(arg.to_owned()),
            _ => SourceSpec::File(PathBuf::from(arg)),
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Stdin => f.write_str("standard input"),
            SourceSpec::File(path) => write!(f, "{}", path.display()),
            SourceSpec::Url(url) => f.write_str(url),
        }
    }
}

/// An opened source: the bytes and what is known about them.
pub struct OpenedSource {
    pub reader: Box<dyn Read + Send>,
    /// Total length, when known (file size, `Content-Length`).
    pub length: Option<u64>,
    /// For messages: the path, "standard input", or the URL with secrets
    /// hidden.
    pub description: String,
    /// Counters of an HTTP(S) transfer; `None` for local sources.
    pub http_stats: Option<StatsHandle>,
}

impl fmt::Debug for OpenedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedSource")
            .field("length", &self.length)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// Why a source could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("opening {path}: {source}")]
    File {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// Opens `spec`; `http` applies to URLs only. For a URL this waits for the
/// first response head (see [`HttpReader::open`]).
pub fn open(spec: &SourceSpec, http: HttpOptions) -> Result<OpenedSource, SourceError> {
    match spec {
        SourceSpec::Stdin => Ok(OpenedSource {
            reader: Box::new(io::stdin()),
            length: None,
            description: spec.to_string(),
            http_stats: None,
        }),
        SourceSpec::File(path) => {
            let failed = |source| SourceError::File {
                path: path.display().to_string(),
                source,
            };
            let file = File::open(path).map_err(failed)?;
            let meta = file.metadata().map_err(failed)?;
            Ok(OpenedSource {
                reader: Box::new(file),
                length: meta.is_file().then_some(meta.len()),
                description: spec.to_string(),
                http_stats: None,
            })
        }
        SourceSpec::Url(url) => {
            let reader = HttpReader::open(url, http)?;
            Ok(OpenedSource {
                length: reader.length(),
                description: reader.shown_url().to_owned(),
                http_stats: Some(reader.stats()),
                reader: Box::new(reader),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn specs_are_told_apart() {
        assert_eq!(SourceSpec::parse("-"), SourceSpec::Stdin);
        assert_eq!(
            SourceSpec::parse("/root/install.fw"),
            SourceSpec::File("/root/install.fw".into())
        );
        assert_eq!(
            SourceSpec::parse("https://[2001:db8::1]/a.fw"),
            SourceSpec::Url("https://[2001:db8::1]/a.fw".into())
        );
        assert_eq!(
            SourceSpec::parse("./odd name://x"),
            SourceSpec::File("./odd name://x".into())
        );
    }

    #[test]
    fn a_file_opens_with_its_length_and_a_missing_one_names_the_path() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(b"bundle bytes").unwrap();
        let spec = SourceSpec::File(tmp.path().to_owned());
        let mut opened = open(&spec, HttpOptions::default()).unwrap();
        assert_eq!(opened.length, Some(12));
        let mut text = String::new();
        opened.reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "bundle bytes");

        let spec = SourceSpec::File("/nonexistent/x.fw".into());
        let err = open(&spec, HttpOptions::default()).unwrap_err();
        assert!(err.to_string().starts_with("opening /nonexistent/x.fw: "), "{err}");
    }
}
