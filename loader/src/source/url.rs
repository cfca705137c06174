//! `http://` and `https://` URLs, parsed just enough to make a request:
//! host (name, IPv4, `[IPv6]`), port, request target, and credentials for
//! basic authentication. Host names must be ASCII (punycode for IDNs),
//! which keeps Unicode tables out of the initramfs binary.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// A parsed `http(s)://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub scheme: Scheme,
    pub host: Host,
    pub port: u16,
    /// Path and query, starting with `/` (the fragment is dropped).
    pub target: String,
    /// `user:password` before the `@`, percent-encoded as given.
    pub userinfo: Option<String>,
}

/// Why a URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// Something other than `http`/`https`.
    Scheme(String),
    Invalid(String),
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<HttpUrl, UrlError> {
        let invalid = |why: &str| UrlError::Invalid(why.to_owned());
        let text = text.trim();
        let (scheme, rest) = text.split_once("://").ok_or_else(|| invalid("no scheme:// prefix"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            other => return Err(UrlError::Scheme(other.to_owned())),
        };
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(split);
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((user, hostport)) => (Some(user.to_owned()), hostport),
            None => (None, authority),
        };
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let (host, port) = parse_host_port(hostport, default_port)?;
        let target = match target {
            "" => "/".to_owned(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_owned(),
        };
        Ok(HttpUrl {
            scheme,
            host,
            port,
            target: encode_target(&target),
            userinfo,
        })
    }

    /// Resolves a redirect's `Location` against this URL.
    pub fn join(&self, location: &str) -> Result<HttpUrl, UrlError> {
        let location = location.trim();
        if let Some((scheme, _)) = location.split_once("://") {
            if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
                return HttpUrl::parse(location);
            }
        }
        if let Some(rest) = location.strip_prefix("//") {
            let scheme = match self.scheme {
                Scheme::Http => "http",
                Scheme::Https => "https",
            };
            return HttpUrl::parse(&format!("{scheme}://{rest}"));
        }
        let location = location.split_once('#').map_or(location, |(before, _)| before);
        let target = if location.starts_with('/') {
            location.to_owned()
        } else {
            let path = self.target.split_once('?').map_or(self.target.as_str(), |(p, _)| p);
            let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
            format!("{dir}/{location}")
        };
        Ok(HttpUrl {
            target: encode_target(&target),
            userinfo: None,
            ..self.clone()
        })
    }

    /// The `Host` header: the host, with the port unless it is the default.
    pub fn host_header(&self) -> String {
        let default = matches!((self.scheme, self.port), (Scheme::Http, 80) | (Scheme::Https, 443));
        if default {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL for messages: no password, no query (presigned URLs carry
    /// secrets there).
    pub fn redacted(&self) -> String {
        let path = self.target.split_once('?').map_or(self.target.as_str(), |(p, _)| p);
        let query = if self.target.contains('?') { "?…" } else { "" };
        let user = match self.userinfo.as_deref().map(|u| u.split_once(':')) {
            Some(Some((user, _))) => format!("{user}:…@"),
            Some(None) => format!("{}@", self.userinfo.as_deref().unwrap_or_default()),
            None => String::new(),
        };
        format!("{}://{user}{}{path}{query}", self.scheme_str(), self.host_header())
    }

    fn scheme_str(&self) -> &'static str {
        match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::V4(ip) => write!(f, "{ip}"),
            Host::V6(ip) => write!(f, "[{ip}]"),
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self.userinfo.as_deref().map(|u| format!("{u}@")).unwrap_or_default();
        write!(f, "{}://{user}{}{}", self.scheme_str(), self.host_header(), self.target)
    }
}

fn parse_host_port(hostport: &str, default_port: u16) -> Result<(Host, u16), UrlError> {
    let invalid = |why: String| UrlError::Invalid(why);
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (literal, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid("`[` without `]` around an IPv6 address".into()))?;
        let ip: Ipv6Addr = literal
            .parse()
            .map_err(|_| invalid(format!("`{literal}` is not an IPv6 address")))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| invalid(format!("unexpected `{p}` after `]`")))?,
            ),
        };
        (Host::V6(ip), port)
    } else {
        let (name, port) = match hostport.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (hostport, None),
        };
        if name.is_empty() {
            return Err(invalid("no host name".into()));
        }
        if !name.is_ascii() {
            return Err(invalid(format!(
                "host name `{name}` is not ASCII; write it in punycode (xn--…)"
            )));
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
            return Err(invalid(format!("`{name}` is not a valid host name")));
        }
        let host = match name.parse::<Ipv4Addr>() {
            Ok(ip) => Host::V4(ip),
            Err(_) => Host::Name(name.to_ascii_lowercase()),
        };
        (host, port)
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| invalid(format!("port `{p}` is not a number from 1 to 65535")))?,
    };
    Ok((host, port))
}

/// Percent-encodes what may not appear raw in a request line (spaces,
/// quotes, non-ASCII, controls); existing `%XX` escapes are kept.
fn encode_target(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for byte in target.bytes() {
        let raw = byte.is_ascii_graphic() && !matches!(byte, b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'\\' | b'^');
        if raw {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_urls() {
        let url = HttpUrl::parse("https://Example.NET/a/b.fw?x=1#frag").unwrap();
        assert_eq!(url.scheme, Scheme::Https);
        assert_eq!(url.host, Host::Name("example.net".into()));
        assert_eq!((url.port, url.target.as_str()), (443, "/a/b.fw?x=1"));
        assert_eq!(url.host_header(), "example.net");
        let url = HttpUrl::parse("http://10.0.2.2:8080").unwrap();
        assert_eq!(
            (url.host.clone(), url.port, url.target.as_str()),
            (Host::V4(Ipv4Addr::new(10, 0, 2, 2)), 8080, "/")
        );
        assert_eq!(url.host_header(), "10.0.2.2:8080");
        assert_eq!(HttpUrl::parse("https://h?q").unwrap().target, "/?q");
    }

    #[test]
    fn ipv6_literals() {
        let url = HttpUrl::parse("https://[2001:db8::1]:8443/x.fw").unwrap();
        assert_eq!(url.host, Host::V6("2001:db8::1".parse().unwrap()));
        assert_eq!(url.port, 8443);
        assert_eq!(url.host_header(), "[2001:db8::1]:8443");
        assert_eq!(url.to_string(), "https://[2001:db8::1]:8443/x.fw");
        assert!(HttpUrl::parse("https://[2001:db8::1/x").is_err());
        assert!(HttpUrl::parse("https://[nope]/x").is_err());
    }

    #[test]
    fn credentials_are_kept_but_redacted() {
        let url = HttpUrl::parse("https://user:s3cret@h.example/p.fw?sig=abc").unwrap();
        assert_eq!(url.userinfo.as_deref(), Some("user:s3cret"));
        assert_eq!(url.redacted(), "https://user:…@h.example/p.fw?…");
    }

    #[test]
    fn bad_urls_say_why() {
        assert_eq!(HttpUrl::parse("ftp://h/x"), Err(UrlError::Scheme("ftp".into())));
        let msg = |s| match HttpUrl::parse(s) {
            Err(UrlError::Invalid(m)) => m,
            other => panic!("{s}: {other:?}"),
        };
        assert!(msg("https://bücher.example/").contains("punycode"));
        assert!(msg("https://h:99999/").contains("port"));
        assert!(msg("https://:80/").contains("no host"));
        assert!(msg("h.example/x").contains("scheme"));
        assert!(msg("https://a b/").contains("not a valid host"));
    }

    #[test]
    fn odd_characters_in_paths_are_encoded() {
        assert_eq!(
            HttpUrl::parse("https://h/my file é.fw").unwrap().target,
            "/my%20file%20%C3%A9.fw"
        );
        assert_eq!(HttpUrl::parse("https://h/a%20b").unwrap().target, "/a%20b");
    }

    #[test]
    fn redirects_resolve() {
        let base = HttpUrl::parse("https://user:pw@h.example:8443/dir/a.fw?x").unwrap();
        let abs = base.join("http://other.example/b.fw").unwrap();
        assert_eq!(abs.to_string(), "http://other.example/b.fw");
        assert_eq!(
            base.join("//cdn.example/c.fw").unwrap().to_string(),
            "https://cdn.example/c.fw"
        );
        let path = base.join("/root.fw#x").unwrap();
        assert_eq!(
            path.to_string(),
            "https://h.example:8443/root.fw",
            "credentials are not forwarded"
        );
        assert_eq!(base.join("sib.fw").unwrap().target, "/dir/sib.fw");
    }
}
