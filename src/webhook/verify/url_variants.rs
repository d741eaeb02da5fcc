//! The URLs a signature may have been made over, in the order twilio-node 6.2 tries them
//! (`lib/webhooks/webhooks.js`, `validateRequest`):
//!
//! 1. the URL as received without its port, then with the scheme's default port if it had none
//!    (twilio-python 9.13 `remove_port`/`add_port` try the same two: Twilio's back end is
//!    inconsistent about ports);
//! 2. only if those fail, the URL as normalized by a WHATWG URL parser (`new URL()`; here the
//!    `url` crate, which implements the same standard) without and with the port, then both of
//!    those with the query string re-encoded the way Node's legacy `querystring` module does,
//!    "for back ends that signed an escaped form" (e.g. `%7C` for `|`).
//!
//! Like both libraries, "without the port" removes any port, not only the default one.

use std::borrow::Cow;

/// Step 1: the URL as received, without and with the port (equal strings are not repeated),
/// each built only when the previous one did not match.
pub(crate) fn as_received(url: &str) -> impl Iterator<Item = Cow<'_, str>> + Clone {
    let mut step = 0;
    std::iter::from_fn(move || {
        step += 1;
        match step {
            1 => Some(remove_port(url)),
            // Adding a port changes a URL only when it has none, so then it differs from step 1;
            // when it has one, step 1 removed it and adding gives the URL back, also different.
            2 => Some(add_port(url)).filter(|with| *with != remove_port(url)),
            _ => None,
        }
    })
}

/// Step 2: the normalized forms; empty when the URL does not parse (twilio-node throws there).
pub(crate) fn normalized(url: &str) -> Vec<String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Vec::new();
    };
    let normalized = parsed.as_str();
    let without = remove_port(normalized).into_owned();
    let with = add_port(normalized).into_owned();
    let legacy_without = legacy_querystring(&without);
    let legacy_with = legacy_querystring(&with);
    vec![without, with, legacy_without, legacy_with]
}

/// `scheme://`, user info with its `@`, host, `:port` (may be empty), and the rest.
struct Parts<'a> {
    scheme: &'a str,
    user_info: &'a str,
    host: &'a str,
    port: &'a str,
    rest: &'a str,
}

/// Splits without normalizing, so the path and query keep the characters Twilio signed.
fn split(url: &str) -> Option<Parts<'_>> {
    // `[a-z][a-z0-9+.-]*://`, case-insensitively.
    let colon = url.find("://")?;
    let scheme_name = &url[..colon];
    let mut chars = scheme_name.chars();
    if !chars.next()?.is_ascii_alphabetic()
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
    {
        return None;
    }
    let scheme = &url[..colon + 3];
    let after = &url[colon + 3..];
    let authority_len = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(authority_len);
    let user_info_len = authority.rfind('@').map_or(0, |at| at + 1);
    let (user_info, host_and_port) = authority.split_at(user_info_len);
    // A colon starts the port only after an IPv6 literal's closing bracket.
    let search_from = host_and_port.rfind(']').map_or(0, |i| i + 1);
    let port_start = host_and_port[search_from..]
        .find(':')
        .map_or(host_and_port.len(), |i| search_from + i);
    let (host, port) = host_and_port.split_at(port_start);
    Some(Parts {
        scheme,
        user_info,
        host,
        port,
        rest,
    })
}

fn remove_port(url: &str) -> Cow<'_, str> {
    match split(url) {
        Some(p) if !p.port.is_empty() => {
            Cow::Owned([p.scheme, p.user_info, p.host, p.rest].concat())
        }
        _ => Cow::Borrowed(url),
    }
}

fn add_port(url: &str) -> Cow<'_, str> {
    match split(url) {
        Some(p) if p.port.is_empty() => {
            let port = if p.scheme.eq_ignore_ascii_case("https://") {
                ":443"
            } else {
                ":80"
            };
            Cow::Owned([p.scheme, p.user_info, p.host, port, p.rest].concat())
        }
        _ => Cow::Borrowed(url),
    }
}

/// The URL with everything after the first `?` parsed and printed again by Node's legacy
/// `querystring` (`parse` then `stringify`), whose behaviour this reproduces: at most 1000
/// `&`-separated pieces, empty ones skipped; `+` is a space; valid `%XX` decoded, invalid ones
/// kept, invalid UTF-8 replaced; repeated names grouped at their first appearance, names that
/// are array indices first in numeric order (JavaScript's own key order); each name and value
/// escaped like `encodeURIComponent`. Checked against Node in this module's tests
/// (`legacy_querystring_like_node`).
fn legacy_querystring(url: &str) -> String {
    let Some(query_start) = url.find('?') else {
        return url.to_owned();
    };
    let query = &url[query_start + 1..];
    if query.is_empty() {
        return url.to_owned();
    }
    let mut fields: Vec<(String, Vec<String>)> = Vec::new();
    for piece in query.split('&').take(1000).filter(|p| !p.is_empty()) {
        // One piece, decoded as a form pair: `+` is a space, valid `%XX` decoded, invalid ones
        // kept, invalid UTF-8 replaced; a piece without `=` has an empty value.
        let Some((name, value)) = url::form_urlencoded::parse(piece.as_bytes()).next() else {
            continue;
        };
        let (name, value) = (name.into_owned(), value.into_owned());
        match fields.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => fields.push((name, vec![value])),
        }
    }
    // Stable: other names keep their first-appearance order.
    fields.sort_by_key(|(name, _)| array_index(name).map_or((1, 0), |i| (0, i)));
    let mut out = String::with_capacity(url.len() + 16);
    out.push_str(&url[..=query_start]);
    let mut first = true;
    for (name, values) in &fields {
        for value in values {
            if !first {
                out.push('&');
            }
            first = false;
            escape_into(name, &mut out);
            out.push('=');
            escape_into(value, &mut out);
        }
    }
    out
}

/// A JavaScript array index: a canonical decimal below 2^32 - 1.
fn array_index(name: &str) -> Option<u64> {
    if name.is_empty() || (name.len() > 1 && name.starts_with('0')) {
        return None;
    }
    if !name.bytes().all(|b| b.is_ascii_digit()) || name.len() > 10 {
        return None;
    }
    name.parse::<u64>()
        .ok()
        .filter(|i| *i < u64::from(u32::MAX))
}

/// `querystring.escape`: everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )` as `%XX` of UTF-8.
fn escape_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_like_twilio_node() {
        let cases = [
            (
                "https://a.com/p?q=1",
                "https://a.com/p?q=1",
                "https://a.com:443/p?q=1",
            ),
            (
                "https://a.com:443/p",
                "https://a.com/p",
                "https://a.com:443/p",
            ),
            ("HTTP://a.com", "HTTP://a.com", "HTTP://a.com:80"),
            (
                "https://a.com:8443/",
                "https://a.com/",
                "https://a.com:8443/",
            ),
            (
                "https://u:p@a.com/x",
                "https://u:p@a.com/x",
                "https://u:p@a.com:443/x",
            ),
            (
                "https://[::1]:443/x",
                "https://[::1]/x",
                "https://[::1]:443/x",
            ),
            ("https://[::1]/x", "https://[::1]/x", "https://[::1]:443/x"),
            // A literal ending in a colon: the port starts after the bracket, not inside it.
            ("https://[::]/x", "https://[::]/x", "https://[::]:443/x"),
            (
                "https://[::]:8443/x",
                "https://[::]/x",
                "https://[::]:8443/x",
            ),
            ("https://a.com:/x", "https://a.com/x", "https://a.com:/x"),
            ("ftp://a.com/", "ftp://a.com/", "ftp://a.com:80/"),
            ("not a url", "not a url", "not a url"),
            ("", "", ""),
            ("1ttp://a.com", "1ttp://a.com", "1ttp://a.com"),
        ];
        for (url, without, with) in cases {
            assert_eq!(
                (&*remove_port(url), &*add_port(url)),
                (without, with),
                "{url}"
            );
        }
    }

    #[test]
    fn legacy_querystring_like_node() {
        // Inputs and outputs printed by Node 22's `querystring.stringify(querystring.parse(q))`.
        let cases = [
            ("a=1&&b=2", "a=1&b=2"),
            ("=x&b", "=x&b="),
            ("a&a=&a=1", "a=&a=&a=1"),
            (
                "b=1&2=x&1=y&a=3&01=z&4294967295=q&4294967294=r",
                "1=y&2=x&4294967294=r&b=1&a=3&01=z&4294967295=q",
            ),
            ("x=%zz&y=%E2%82", "x=%25zz&y=%EF%BF%BD"),
            ("k=a+b%20c", "k=a%20b%20c"),
            ("x='|~!*()é", "x='%7C~!*()%C3%A9"),
            ("a=1#frag", "a=1%23frag"),
            ("&", ""),
            ("a=%27", "a='"),
            ("a==b", "a=%3Db"),
            ("%61=1&a=2", "a=1&a=2"),
            // "0" is an array index (JavaScript orders it first); "00" is not.
            ("b=1&00=y&0=x", "0=x&b=1&00=y"),
            // "+5" is not an index either, although Rust's integer parser would read it.
            ("b=1&%2B5=x&5=y", "5=y&b=1&%2B5=x"),
        ];
        for (query, expected) in cases {
            let url = format!("https://a.com/?{query}");
            assert_eq!(
                legacy_querystring(&url),
                format!("https://a.com/?{expected}"),
                "{query}"
            );
        }
        assert_eq!(legacy_querystring("https://a.com/?"), "https://a.com/?");
        assert_eq!(legacy_querystring("https://a.com/"), "https://a.com/");
        let many: Vec<String> = (0..1005).map(|i| format!("k{i}=1")).collect();
        let url = format!("https://a.com/?&&{}", many.join("&"));
        assert_eq!(legacy_querystring(&url).split('&').count(), 998);
    }

    #[test]
    fn normalized_like_whatwg() {
        assert_eq!(
            normalized("https://A.COM:443/a b/../c?x=it's|a b#f g")[0],
            "https://a.com/c?x=it%27s|a%20b#f%20g"
        );
        assert!(normalized("no scheme").is_empty());
    }
}
