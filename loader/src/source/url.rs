//! `http://` and `https://` URLs: parsed by the `url` crate (what reqwest
//! takes), checked for what a download needs, and shown in messages
//! without their secrets. Host names must be ASCII (punycode for IDNs):
//! the binary carries no Unicode tables (see `idna_adapter` in Cargo.toml).

use std::net::IpAddr;

pub use reqwest::Url;

/// Why a URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// Something other than `http`/`https`.
    Scheme(String),
    Invalid(String),
}

/// Parses an `http(s)://` URL with a host.
pub fn parse(text: &str) -> Result<Url, UrlError> {
    let text = text.trim();
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(UrlError::Invalid("no scheme:// prefix".into()));
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(UrlError::Scheme(scheme));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if !host.is_ascii() {
        return Err(UrlError::Invalid(format!(
            "host name `{host}` is not ASCII; write it in punycode (xn--…)"
        )));
    }
    let url = Url::parse(text).map_err(|e| UrlError::Invalid(e.to_string()))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::Invalid("no host name".into()));
    }
    Ok(url)
}

/// The URL for messages: no password, no query (presigned URLs carry
/// secrets there), no fragment.
pub fn redacted(url: &Url) -> String {
    let user = match (url.username(), url.password()) {
        ("", None) => String::new(),
        (user, Some(_)) => format!("{user}:…@"),
        (user, None) => format!("{user}@"),
    };
    let host = url.host_str().unwrap_or_default();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let query = if url.query().is_some() { "?…" } else { "" };
    format!("{}://{user}{host}{port}{}{query}", url.scheme(), url.path())
}

/// The host's address when the URL names one literally (`10.0.2.2`,
/// `[fe80::1]`), `None` for a name.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_urls() {
        let url = parse("https://Example.NET/a/b.fw?x=1#frag").unwrap();
        assert_eq!(url.host_str(), Some("example.net"));
        assert_eq!(url.port_or_known_default(), Some(443));
        assert_eq!((url.path(), url.query()), ("/a/b.fw", Some("x=1")));
        let url = parse("http://10.0.2.2:8080").unwrap();
        assert_eq!(literal_ip(&url), Some("10.0.2.2".parse().unwrap()));
        assert_eq!((url.port(), url.path()), (Some(8080), "/"));
        let url = parse("https://[2001:db8::1]:8443/x.fw").unwrap();
        assert_eq!(literal_ip(&url), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(redacted(&url), "https://[2001:db8::1]:8443/x.fw");
    }

    #[test]
    fn credentials_and_queries_are_redacted() {
        let url = parse("https://user:s3cret@h.example/p.fw?sig=abc").unwrap();
        assert_eq!(url.password(), Some("s3cret"));
        assert_eq!(redacted(&url), "https://user:…@h.example/p.fw?…");
    }

    #[test]
    fn bad_urls_say_why() {
        assert_eq!(parse("ftp://h/x"), Err(UrlError::Scheme("ftp".into())));
        let msg = |s| match parse(s) {
            Err(UrlError::Invalid(m)) => m,
            other => panic!("{s}: {other:?}"),
        };
        assert!(msg("https://bücher.example/").contains("punycode"));
        assert!(msg("https://h:99999/").contains("port"), "{}", msg("https://h:99999/"));
        assert!(msg("h.example/x").contains("scheme"));
        assert!(!msg("https://a b/").is_empty());
        assert!(parse("https://[2001:db8::1/x").is_err());
    }

    #[test]
    fn odd_characters_in_paths_are_encoded() {
        assert_eq!(
            parse("https://h/my file é.fw").unwrap().path(),
            "/my%20file%20%C3%A9.fw"
        );
        assert_eq!(parse("https://h/a%20b").unwrap().path(), "/a%20b");
    }

    #[test]
    fn redirects_resolve_against_the_url() {
        let base = parse("https://user:pw@h.example:8443/dir/a.fw?x").unwrap();
        assert_eq!(base.join("sib.fw").unwrap().path(), "/dir/sib.fw");
        assert_eq!(
            base.join("//cdn.example/c.fw").unwrap().as_str(),
            "https://cdn.example/c.fw"
        );
        assert_eq!(base.join("http://o.example/b").unwrap().scheme(), "http");
    }
}
