//! The `host[:port]` part of a URL, shared by upstream and proxy URLs.
//!
//! The gateway parses its few URL shapes by hand rather than pulling a URL crate into the core:
//! it needs scheme, host, port and path, and must reject (not guess) everything else.

/// `url` with its query string, if any, shown as `?***`: a query may carry a key (some
/// providers take one there), so configuration reports and logs never show it
pub(crate) fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((before, _)) => format!("{before}?***"),
        None => url.to_owned(),
    }
}

/// `scheme://rest` split at the first `://`, the scheme lower-cased
pub(crate) fn split_scheme(text: &str) -> Result<(String, &str), String> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err("not a URL: expected scheme://host".to_owned());
    };
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return Err("not a URL: bad scheme".to_owned());
    }
    Ok((scheme.to_ascii_lowercase(), rest))
}

/// A parsed `host[:port]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Authority {
    /// The host as the URL writes it, lower-cased (IPv6 literals keep their brackets)
    pub(crate) written: String,
    /// The host without brackets, for dialing and for the proxy handshakes
    pub(crate) host: String,
    /// The explicit port, if any
    pub(crate) port: Option<u16>,
}

/// Parses `host[:port]`; `[v6]` and `[v6]:port` for IPv6 literals (an empty text has no host)
pub(crate) fn parse_authority(text: &str) -> Result<Authority, String> {
    let (host_written, host, port_text) = if let Some(rest) = text.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return Err("unclosed '[' in the host".to_owned());
        };
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err("bad IPv6 address in the host".to_owned());
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| "unexpected text after ']' in the host".to_owned())?,
            ),
        };
        (format!("[{inner}]"), inner.to_owned(), port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        };
        if host.is_empty() {
            return Err("no host".to_owned());
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            return Err("bad character in the host".to_owned());
        }
        (host.to_ascii_lowercase(), host.to_ascii_lowercase(), port)
    };
    let port = match port_text {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err("the port must be a number from 1 to 65535".to_owned()),
            Ok(port) => Some(port),
        },
    };
    Ok(Authority {
        written: host_written,
        host,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_ipv4_and_ipv6_with_and_without_ports() {
        let a = parse_authority("API.example.com:8443").expect("parses");
        assert_eq!((a.host.as_str(), a.port), ("api.example.com", Some(8443)));
        let a = parse_authority("127.0.0.1").expect("parses");
        assert_eq!((a.host.as_str(), a.port), ("127.0.0.1", None));
        let a = parse_authority("[::1]:1080").expect("parses");
        assert_eq!(
            (a.written.as_str(), a.host.as_str(), a.port),
            ("[::1]", "::1", Some(1080))
        );
    }

    #[test]
    fn rejects_what_it_cannot_dial() {
        for bad in [
            "",
            ":80",
            "host:0",
            "host:99999",
            "host:x",
            "ho st",
            "[::1",
            "[zz]",
            "[::1]x",
        ] {
            assert!(parse_authority(bad).is_err(), "{bad:?}");
        }
    }
}
