//! The URL Twilio requested, rebuilt from what a reverse proxy says it received: `Forwarded`
//! (RFC 7239) or the de facto `X-Forwarded-Proto` / `-Host` / `-Port`. Only trusted when the
//! service says it sits behind a proxy that sets (and overwrites) them: anyone can send them.

use http::uri::Authority;

use super::headers::CallbackHeaders;

/// Why the URL could not be rebuilt: the service's configuration does not match its traffic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UrlError {
    #[error("no Host header and no public_base_url")]
    NoHost,
    #[error("{header} is malformed")]
    Malformed { header: &'static str },
}

/// `scheme://authority` + `path_and_query`. Without trusted proxy headers: `http://` + `Host`
/// (or the request's own authority, as HTTP/2 sends it).
pub(crate) fn request_url(
    headers: &CallbackHeaders<'_>,
    own_authority: Option<&str>,
    path_and_query: &str,
    trust_forwarded: bool,
) -> Result<String, UrlError> {
    let host_header = || {
        headers
            .host
            .map(|h| text(h).ok_or(UrlError::Malformed { header: "Host" }))
            .transpose()
            .map(|h| h.or(own_authority))
    };
    let (scheme, authority) = if !trust_forwarded {
        ("http".to_owned(), host_header()?.map(str::to_owned))
    } else if let Some(forwarded) = headers.forwarded {
        let malformed = UrlError::Malformed {
            header: "Forwarded",
        };
        let text = text(forwarded).ok_or(malformed.clone())?;
        let (proto, host) = first_forwarded_element(text).ok_or(malformed)?;
        let scheme = proto.unwrap_or_else(|| "http".to_owned());
        let host = match host {
            Some(host) => Some(host),
            None => host_header()?.map(str::to_owned),
        };
        (scheme, host)
    } else {
        let scheme = first_value(headers.x_forwarded_proto, "X-Forwarded-Proto")?
            .unwrap_or("http")
            .to_owned();
        let host = match first_value(headers.x_forwarded_host, "X-Forwarded-Host")? {
            Some(host) => Some(host),
            None => host_header()?,
        };
        let port = first_value(headers.x_forwarded_port, "X-Forwarded-Port")?;
        let host = match (host, port) {
            (Some(host), Some(port)) => {
                if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(UrlError::Malformed {
                        header: "X-Forwarded-Port",
                    });
                }
                Some(format!("{}:{port}", without_port(host)))
            }
            (host, _) => host.map(str::to_owned),
        };
        (scheme, host)
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(UrlError::Malformed {
            header: if trust_forwarded {
                "the forwarded protocol"
            } else {
                "the scheme"
            },
        });
    }
    let authority = authority.ok_or(UrlError::NoHost)?;
    // A host, an optional port, nothing else (no user info, no path).
    let valid = authority
        .parse::<Authority>()
        .is_ok_and(|a| a.as_str() == authority && !authority.contains('@'));
    if !valid || authority.is_empty() {
        return Err(UrlError::Malformed {
            header: if trust_forwarded {
                "the forwarded host"
            } else {
                "Host"
            },
        });
    }
    Ok(format!("{scheme}://{authority}{path_and_query}"))
}

/// The first comma-separated value of a header, trimmed.
fn first_value<'h>(
    value: Option<&'h [u8]>,
    display: &'static str,
) -> Result<Option<&'h str>, UrlError> {
    value
        .map(|v| {
            text(v)
                .map(|text| text.split(',').next().unwrap_or("").trim())
                .ok_or(UrlError::Malformed { header: display })
        })
        .transpose()
}

/// A header value as text: visible ASCII, spaces and tabs only (as `HeaderValue::to_str`).
fn text(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// A host without its port (IPv6 literals keep their brackets).
fn without_port(host: &str) -> &str {
    let search_from = host.rfind(']').map_or(0, |i| i + 1);
    match host[search_from..].rfind(':') {
        Some(i) => &host[..search_from + i],
        None => host,
    }
}

/// `proto` and `host` of the first element of a `Forwarded` header: the one the proxy nearest
/// the client (here, Twilio) added. `None` when it does not parse.
fn first_forwarded_element(header: &str) -> Option<(Option<String>, Option<String>)> {
    let (mut proto, mut host) = (None, None);
    let mut rest = header.trim_start();
    loop {
        // One pair: token "=" (token / quoted-string).
        let eq = rest.find('=')?;
        let name = rest[..eq].trim();
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return None;
        }
        rest = &rest[eq + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut text = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => text.push(chars.next()?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => text.push(c),
                }
            }
            rest = &quoted[end?..];
            value = text;
        } else {
            let end = rest.find([';', ',']).unwrap_or(rest.len());
            let token = rest[..end].trim();
            if token.is_empty() || !token.bytes().all(is_tchar) {
                return None;
            }
            value = token.to_owned();
            rest = &rest[end..];
        }
        if name.eq_ignore_ascii_case("proto") && proto.is_none() {
            proto = Some(value);
        } else if name.eq_ignore_ascii_case("host") && host.is_none() {
            host = Some(value);
        }
        rest = rest.trim_start();
        match rest.as_bytes().first() {
            None | Some(b',') => return Some((proto, host)),
            Some(b';') => rest = rest[1..].trim_start(),
            Some(_) => return None,
        }
    }
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    use http::HeaderMap;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    http::HeaderName::from_static(n),
                    http::HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    fn url(pairs: &[(&'static str, &str)], trust: bool) -> Result<String, UrlError> {
        request_url(
            &CallbackHeaders::of(&headers(pairs)),
            None,
            "/hook?a=1",
            trust,
        )
    }

    #[test]
    fn untrusted_uses_host_and_http() {
        let h = [("host", "svc:8080"), ("x-forwarded-proto", "https")];
        assert_eq!(url(&h, false).unwrap(), "http://svc:8080/hook?a=1");
        assert_eq!(url(&[], false), Err(UrlError::NoHost));
        assert_eq!(
            request_url(&CallbackHeaders::default(), Some("own:1"), "/", false).unwrap(),
            "http://own:1/"
        );
    }

    #[test]
    fn x_forwarded_headers() {
        let h = [
            ("host", "svc:8080"),
            ("x-forwarded-proto", "https, http"),
            ("x-forwarded-host", "hooks.example.com, proxy2"),
        ];
        assert_eq!(url(&h, true).unwrap(), "https://hooks.example.com/hook?a=1");
        let h = [
            ("host", "svc:8080"),
            ("x-forwarded-proto", "HTTPS"),
            ("x-forwarded-port", "8443"),
        ];
        assert_eq!(url(&h, true).unwrap(), "https://svc:8443/hook?a=1");
        let h = [("host", "[::1]:80"), ("x-forwarded-port", "443")];
        assert_eq!(url(&h, true).unwrap(), "http://[::1]:443/hook?a=1");
        let h = [("host", "svc")];
        assert_eq!(url(&h, true).unwrap(), "http://svc/hook?a=1");
    }

    #[test]
    fn forwarded_header() {
        let h = [
            ("host", "svc:8080"),
            (
                "forwarded",
                r#"for=192.0.2.60;Proto=https;host="hooks.example.com:443", for=10.0.0.1;proto=http;host=svc"#,
            ),
            ("x-forwarded-host", "ignored"),
        ];
        assert_eq!(
            url(&h, true).unwrap(),
            "https://hooks.example.com:443/hook?a=1"
        );
        let h = [
            ("host", "svc:8080"),
            ("forwarded", "for=\"[2001:db8::1]\";proto=https"),
        ];
        assert_eq!(url(&h, true).unwrap(), "https://svc:8080/hook?a=1");
    }

    /// RFC 7239's syntax, strictly: names and bare values are tokens (no space, not empty), and
    /// the first `proto` of the element wins.
    #[test]
    fn forwarded_pairs_are_tokens_and_the_first_proto_wins() {
        let malformed = Err(UrlError::Malformed {
            header: "Forwarded",
        });
        for bad in [
            "pro to=https;host=a.com",
            "=https;host=a.com",
            "proto=;host=a.com",
        ] {
            assert_eq!(
                url(&[("host", "svc"), ("forwarded", bad)], true),
                malformed,
                "{bad}"
            );
        }
        let twice = [("forwarded", "proto=https;proto=http;host=a.com")];
        assert_eq!(url(&twice, true).unwrap(), "https://a.com/hook?a=1");
    }

    /// `X-Forwarded-Port` replaces the port of an IPv6 literal, whose last `:` before the `]`
    /// is not a port.
    #[test]
    fn a_forwarded_port_replaces_only_the_port_of_an_ipv6_host() {
        for host in ["[::]", "[::]:80"] {
            let h = [("x-forwarded-host", host), ("x-forwarded-port", "8443")];
            assert_eq!(
                url(&h, true).unwrap(),
                "http://[::]:8443/hook?a=1",
                "{host}"
            );
        }
    }

    #[test]
    fn what_cannot_be_rebuilt_is_an_error() {
        let cases: [&[(&'static str, &str)]; 8] = [
            &[("forwarded", "proto=https;host")],
            &[("forwarded", "proto=https;host=\"a.com")],
            &[("forwarded", "proto=ftp;host=a.com")],
            &[("forwarded", "host=\"user@a.com\"")],
            &[("x-forwarded-proto", "gopher"), ("host", "a.com")],
            &[("x-forwarded-host", "a.com/path")],
            &[("x-forwarded-port", "x"), ("host", "a.com")],
            &[("x-forwarded-proto", "https")],
        ];
        for h in cases {
            assert!(url(h, true).is_err(), "{h:?}");
        }
        assert_eq!(
            url(&[("x-forwarded-proto", "https")], true),
            Err(UrlError::NoHost)
        );
    }

    #[test]
    fn detects_proxy_headers() {
        assert!(CallbackHeaders::of(&headers(&[("x-forwarded-host", "a")])).has_forwarded());
        assert!(CallbackHeaders::of(&headers(&[("forwarded", "for=a")])).has_forwarded());
        assert!(!CallbackHeaders::of(&headers(&[("host", "a")])).has_forwarded());
    }
}
