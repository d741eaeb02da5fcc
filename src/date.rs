//! Dates. Twilio writes RFC 2822 (`Wed, 18 Dec 2019 20:02:01 +0000`), which no generator
//! understands by itself: the fragment's `Rfc2822DateTime` schema is mapped onto
//! [`Rfc2822DateTime`] here. The serde and schemars helpers for the public types' dates live
//! here too: [`rfc2822`] for Twilio's wire types (`CallMessageEvent`), RFC 3339 (time's own
//! `time::serde::rfc3339`, described by [`Rfc3339`]) for the SDK's results.

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

/// `#[serde(with = "crate::date::rfc2822")]` for an `OffsetDateTime` that travels as Twilio
/// writes it, through [`Rfc2822DateTime`]'s own (de)serializer.
pub(crate) mod rfc2822 {
    use time::OffsetDateTime;

    use super::Rfc2822DateTime;

    pub(crate) fn serialize<S: serde::Serializer>(
        at: &OffsetDateTime,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&Rfc2822DateTime(*at), s)
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<OffsetDateTime, D::Error> {
        <Rfc2822DateTime as serde::Deserialize>::deserialize(d).map(|date| date.0)
    }
}

/// The shape of the dates Twilio writes and [`format`] produces: optional day of the week, day,
/// month, four-digit year, time with optional seconds, numeric zone. For schemas only: parsing
/// is `time`'s RFC 2822 parser.
#[cfg(feature = "schemars")]
pub(crate) const RFC2822_PATTERN: &str = concat!(
    r"^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?",
    r"(?:0?[1-9]|[12][0-9]|3[01]) ",
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ",
    r"[0-9]{4} ",
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::(?:[0-5][0-9]|60))? ",
    r"[+-](?:[01][0-9]|2[0-3])[0-5][0-9]$",
);

/// A string in RFC 2822 form. `format` is the name Twilio's own OpenAPI description gives these
/// dates (`date-time-rfc-2822`; validators ignore formats they do not know), `pattern` makes it
/// checkable.
#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Rfc2822DateTime {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Rfc2822DateTime".into()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        concat!(module_path!(), "::Rfc2822DateTime").into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time-rfc-2822",
            "pattern": RFC2822_PATTERN,
            "examples": ["Wed, 18 Dec 2019 20:02:01 +0000"],
        })
    }
}

/// The schema of an `OffsetDateTime` serialized with `time::serde::rfc3339`: JSON Schema's own
/// `date-time` format (RFC 3339), which validators check. Never constructed.
#[cfg(feature = "schemars")]
pub(crate) enum Rfc3339 {}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Rfc3339 {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DateTime".into()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        concat!(module_path!(), "::Rfc3339").into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "examples": ["2019-12-18T20:02:01Z"],
        })
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

    #[test]
    fn rfc2822_module_round_trips() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct At(#[serde(with = "rfc2822")] OffsetDateTime);
        let at: At = serde_json::from_str("\"Wed, 18 Dec 2019 21:02:01 +0100\"").unwrap();
        assert_eq!(at.0.unix_timestamp(), 1_576_699_321);
        // The offset is kept: the date is written back as it came.
        assert_eq!(
            serde_json::to_string(&at).unwrap(),
            "\"Wed, 18 Dec 2019 21:02:01 +0100\""
        );
        assert!(serde_json::from_str::<At>("\"2019-12-18T20:02:01Z\"").is_err());
    }
}
