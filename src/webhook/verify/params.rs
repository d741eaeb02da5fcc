//! The parameters a signature covers, and the text they add to the signed string.
//!
//! Twilio signs the URL followed by the request's parameters: names sorted, each name's
//! distinct values sorted, each written as `name` then `value` with no separator and no
//! encoding (twilio-python 9.13 `RequestValidator.compute_signature`, twilio-node 6.2
//! `getExpectedTwilioSignature`). The parameters are a form body's fields, or the top-level
//! fields of a JSON object body: twilio-node's `validateExpressRequest` signs whatever
//! `express.json()` or `express.urlencoded()` parsed, and Twilio's Voice SDK end-to-end relay
//! receives call-message callbacks that way.

use std::borrow::Cow;

/// One parameter, borrowed from the body where it needed no decoding.
pub(crate) type Param<'a> = (Cow<'a, str>, Cow<'a, str>);

/// The fields of an `application/x-www-form-urlencoded` body (`+` is a space, invalid UTF-8 is
/// replaced, as every form parser the helper libraries rely on does).
pub(crate) fn form_params(body: &[u8]) -> Vec<Param<'_>> {
    url::form_urlencoded::parse(body).collect()
}

/// The text the parameters add to the signed string.
pub(crate) fn canonical(mut params: Vec<Param<'_>>) -> Vec<u8> {
    // Sorting pairs orders names, then each name's values; dropping equal neighbours keeps
    // each distinct value once.
    params.sort_unstable();
    params.dedup();
    // `concat` sizes the one allocation itself: no length sum of our own to get wrong.
    params
        .iter()
        .flat_map(|(name, value)| [name.as_bytes(), value.as_bytes()])
        .collect::<Vec<&[u8]>>()
        .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(params: Vec<Param<'_>>) -> String {
        String::from_utf8(canonical(params)).unwrap()
    }

    #[test]
    fn canonical_sorts_and_dedupes() {
        let params = [("b", "2"), ("a", "z"), ("a", "y"), ("a", "z"), ("ab", "")]
            .map(|(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v)));
        assert_eq!(text(params.to_vec()), "ayazabb2");
    }

    #[test]
    fn form_fields_are_decoded() {
        let params = form_params(b"b=x+y&a=%7B%22k%22%3A1%7D&c");
        assert_eq!(text(params), r#"a{"k":1}bx yc"#);
    }
}
