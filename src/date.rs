//! Twilio's RFC 2822 dates (`Wed, 18 Dec 2019 20:02:01 +0000`), which no generator understands
//! by itself. The fragment's `Rfc2822DateTime` schema is mapped onto [`Rfc2822DateTime`] here.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// An RFC 2822 date as Twilio writes it. Crate-internal: the public API hands out
/// [`OffsetDateTime`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc2822DateTime(pub OffsetDateTime);

/// Parses an RFC 2822 date.
pub(crate) fn parse(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(text.trim(), &Rfc2822)
}

/// Formats a date the way Twilio does.
pub(crate) fn format(at: OffsetDateTime) -> String {
    // Every OffsetDateTime with a year in 1900..=9999 formats; others are not Twilio dates.
    at.format(&Rfc2822).unwrap_or_else(|_| at.to_string())
}

impl fmt::Display for Rfc2822DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl serde::Serialize for Rfc2822DateTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Rfc2822DateTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse(&text)
            .map(Self)
            .map_err(|e| serde::de::Error::custom(format_args!("expected an RFC 2822 date: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_twilio_dates() {
        let at = parse("Wed, 18 Dec 2019 20:02:01 +0000").unwrap();
        assert_eq!(at.unix_timestamp(), 1_576_699_321);
        assert_eq!(format(at), "Wed, 18 Dec 2019 20:02:01 +0000");
        let shifted = parse("Wed, 18 Dec 2019 21:02:01 +0100").unwrap();
        assert_eq!(shifted, at);
    }

    #[test]
    fn rejects_other_formats() {
        assert!(parse("2019-12-18T20:02:01Z").is_err());
        assert!(serde_json::from_str::<Rfc2822DateTime>("\"yesterday\"").is_err());
    }
}
