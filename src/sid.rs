//! Typed Twilio SIDs: two-letter prefix + 32 hexadecimal digits, checked on parse.
//!
//! Each SID is 34 ASCII bytes stored inline, so it is `Copy` and costs nothing to clone.

use std::fmt;
use std::str::FromStr;

/// The length of every SID this crate handles.
const SID_LEN: usize = 34;

/// Which kind of SID a value was meant to be; named in [`SidError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SidKind {
    /// An account SID (`AC…`).
    Account,
    /// A call SID (`CA…`).
    Call,
    /// A user-defined message SID (`KX…`).
    Message,
    /// A user-defined message subscription SID (`ZY…`).
    Subscription,
    /// An API key SID (`SK…`).
    ApiKey,
    /// A conference SID (`CF…`).
    Conference,
}

impl SidKind {
    /// The two-letter prefix every SID of this kind starts with.
    pub const fn prefix(self) -> &'static str {
        match self {
            SidKind::Account => "AC",
            SidKind::Call => "CA",
            SidKind::Message => "KX",
            SidKind::Subscription => "ZY",
            SidKind::ApiKey => "SK",
            SidKind::Conference => "CF",
        }
    }

    fn name(self) -> &'static str {
        match self {
            SidKind::Account => "account",
            SidKind::Call => "call",
            SidKind::Message => "message",
            SidKind::Subscription => "subscription",
            SidKind::ApiKey => "API key",
            SidKind::Conference => "conference",
        }
    }
}

/// Why a string is not a valid SID of the expected kind.
///
/// The offending value itself is not repeated: a misplaced secret must not end up in a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SidError {
    kind: SidKind,
    problem: SidProblem,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum SidProblem {
    Length(usize),
    Prefix,
    NotHex(usize),
}

impl SidError {
    /// The kind of SID that was expected.
    pub fn kind(&self) -> SidKind {
        self.kind
    }
}

impl fmt::Display for SidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, prefix) = (self.kind.name(), self.kind.prefix());
        write!(f, "invalid {name} SID: ")?;
        match self.problem {
            SidProblem::Length(n) => write!(
                f,
                "expected {SID_LEN} characters ({prefix} + 32 hex digits), got {n}"
            ),
            SidProblem::Prefix => write!(f, "expected it to start with {prefix:?}"),
            SidProblem::NotHex(at) => {
                write!(f, "character {} is not a hexadecimal digit", at + 1)
            }
        }
    }
}

impl std::error::Error for SidError {}

/// Whether all 32 bytes are ASCII hex digits, eight at a time (a response carries three
/// SIDs; a check per byte showed in profiles). In each byte `x` of an ASCII word, bit 7 of
/// `x + 0x50` is set from `'0'` (0x30) up and of `x + 0x46` from `':'` (0x3A) up; with upper
/// case folded (`l = x | 0x20`), bit 7 of `l + 0x1F` from `'a'` up and of `l + 0x19` from
/// `'g'` up. Every sum stays below 0x100, so nothing carries into the next byte; a word with a
/// non-ASCII byte fails before its sums count.
fn all_hex(digits: &[u8; 32]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x80 * ONES;
    digits.chunks_exact(8).fold(true, |all, chunk| {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let folded = x | (0x20 * ONES);
        // Wrapping: a non-ASCII top byte may carry out of the word, and fails anyway.
        let digit = x.wrapping_add(0x50 * ONES) & !x.wrapping_add(0x46 * ONES);
        let letter = folded.wrapping_add(0x1F * ONES) & !folded.wrapping_add(0x19 * ONES);
        all & (x & HIGH == 0) & ((digit | letter) & HIGH == HIGH)
    })
}

fn parse(kind: SidKind, s: &str) -> Result<[u8; SID_LEN], SidError> {
    // The common case, checked on bytes: 34 ASCII bytes, the prefix, 32 hex digits.
    if let Ok(bytes) = <[u8; SID_LEN]>::try_from(s.as_bytes())
        && bytes[..2] == *kind.prefix().as_bytes()
        && let Some((_, digits)) = bytes.split_first_chunk::<2>()
        && let Ok(digits) = <&[u8; 32]>::try_from(digits)
        && all_hex(digits)
    {
        return Ok(bytes);
    }
    // Otherwise find the first problem, counting characters rather than bytes.
    let err = |problem| SidError { kind, problem };
    let chars = s.chars().count();
    if chars != SID_LEN {
        return Err(err(SidProblem::Length(chars)));
    }
    if !s.starts_with(kind.prefix()) {
        return Err(err(SidProblem::Prefix));
    }
    if let Some(at) = s.chars().skip(2).position(|c| !c.is_ascii_hexdigit()) {
        return Err(err(SidProblem::NotHex(at + 2)));
    }
    // 34 ASCII characters are 34 bytes.
    s.as_bytes()
        .try_into()
        .map_err(|_| err(SidProblem::Length(chars)))
}

macro_rules! sid_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; SID_LEN]);

        impl $name {
            /// The kind of SID this type holds.
            pub const KIND: SidKind = $kind;

            /// The SID as text.
            pub fn as_str(&self) -> &str {
                // Only ASCII is ever stored (checked in `parse`), so this cannot fail.
                std::str::from_utf8(&self.0).unwrap_or_default()
            }
        }

        impl FromStr for $name {
            type Err = SidError;
            fn from_str(s: &str) -> Result<Self, SidError> {
                parse($kind, s).map(Self)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = SidError;
            fn try_from(s: &str) -> Result<Self, SidError> {
                s.parse()
            }
        }

        impl TryFrom<String> for $name {
            type Error = SidError;
            fn try_from(s: String) -> Result<Self, SidError> {
                s.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl IntoSid<$name> for $name {
            fn into_sid(self) -> Result<$name, SidError> {
                Ok(self)
            }
        }

        impl IntoSid<$name> for &$name {
            fn into_sid(self) -> Result<$name, SidError> {
                Ok(*self)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        /// The SID's ASCII bytes (comparing them needs no UTF-8 check, unlike [`as_str`](Self::as_str)).
        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        /// A string of exactly this SID's shape: `pattern` (the one Twilio's OpenAPI description
        /// gives it) and a length of 34, so a validator rejects what `parse` rejects.
        #[cfg(feature = "schemars")]
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn schema_id() -> std::borrow::Cow<'static, str> {
                concat!("twilio_call_messages::", stringify!($name)).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                $kind.json_schema()
            }
        }
    };
}

#[cfg(feature = "schemars")]
impl SidKind {
    /// The JSON Schema of this kind's SIDs.
    fn json_schema(self) -> schemars::Schema {
        let (name, prefix) = (self.name(), self.prefix());
        schemars::json_schema!({
            "type": "string",
            "description": format!("A Twilio {name} SID: {prefix} + 32 hexadecimal digits."),
            "pattern": format!("^{prefix}[0-9a-fA-F]{{32}}$"),
            "minLength": SID_LEN,
            "maxLength": SID_LEN,
            "examples": [format!("{prefix}{}", "a".repeat(SID_LEN - 2))],
        })
    }
}

sid_type!(
    /// An account SID, `AC` + 32 hex digits: the account that owns the call.
    AccountSid,
    SidKind::Account
);
sid_type!(
    /// A call SID, `CA` + 32 hex digits: one leg of a call. For a call your Voice SDK user
    /// placed, their leg is the parent call's; for a call they accepted, the child call's
    /// (`.to_client()` on a send finds it for you).
    CallSid,
    SidKind::Call
);
sid_type!(
    /// A conference SID, `CF` + 32 hex digits.
    ConferenceSid,
    SidKind::Conference
);
sid_type!(
    /// A user-defined message SID, `KX` + 32 hex digits.
    MessageSid,
    SidKind::Message
);
sid_type!(
    /// A user-defined message subscription SID, `ZY` + 32 hex digits.
    SubscriptionSid,
    SidKind::Subscription
);
sid_type!(
    /// An API key SID, `SK` + 32 hex digits: the user name of API-key authentication.
    ApiKeySid,
    SidKind::ApiKey
);

/// A SID argument given as a typed SID (by value or reference) or as text; text is checked
/// before anything is sent. Implemented for `S`, `&S`, `&str`, `String` and `&String` for every
/// SID type.
pub trait IntoSid<S> {
    /// Parses (or copies) the SID.
    fn into_sid(self) -> Result<S, SidError>;
}

impl<S: FromStr<Err = SidError>> IntoSid<S> for &str {
    fn into_sid(self) -> Result<S, SidError> {
        self.parse()
    }
}

impl<S: FromStr<Err = SidError>> IntoSid<S> for String {
    fn into_sid(self) -> Result<S, SidError> {
        self.parse()
    }
}

impl<S: FromStr<Err = SidError>> IntoSid<S> for &String {
    fn into_sid(self) -> Result<S, SidError> {
        self.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: &str = "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    /// The word-at-a-time check agrees with `is_ascii_hexdigit` for every byte in every place.
    #[test]
    fn all_hex_agrees_with_the_standard_library_byte_by_byte() {
        for place in 0..32 {
            for byte in 0..=255u8 {
                let mut digits = *b"0123456789abcdefABCDEF0123456789";
                digits[place] = byte;
                assert_eq!(
                    all_hex(&digits),
                    byte.is_ascii_hexdigit(),
                    "{byte:#04x} at {place}"
                );
            }
        }
    }

    #[test]
    fn parses_and_displays() {
        let sid: CallSid = CALL.parse().unwrap();
        assert_eq!(sid.to_string(), CALL);
        assert_eq!(format!("{sid:?}"), format!("CallSid({CALL})"));
        let upper: AccountSid = "AC0123456789ABCDEF0123456789abcdef".parse().unwrap();
        assert_eq!(upper.as_str(), "AC0123456789ABCDEF0123456789abcdef");
    }

    #[test]
    fn errors_name_the_kind_and_the_problem() {
        let cases: [(&str, &str); 5] = [
            (
                "",
                "invalid call SID: expected 34 characters (CA + 32 hex digits), got 0",
            ),
            (
                "CA123",
                "invalid call SID: expected 34 characters (CA + 32 hex digits), got 5",
            ),
            (
                "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "invalid call SID: expected it to start with \"CA\"",
            ),
            (
                "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaz",
                "invalid call SID: character 34 is not a hexadecimal digit",
            ),
            (
                "CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaé",
                "invalid call SID: character 34 is not a hexadecimal digit",
            ),
        ];
        for (input, message) in cases {
            let err = input.parse::<CallSid>().unwrap_err();
            assert_eq!(err.kind(), SidKind::Call);
            assert_eq!(err.to_string(), message, "input {input:?}");
        }
        let err = "KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            .parse::<SubscriptionSid>()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid subscription SID: expected it to start with \"ZY\""
        );
    }

    #[test]
    fn serde_round_trip_and_rejects_bad_values() {
        let sid: MessageSid =
            serde_json::from_str("\"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"").unwrap();
        assert_eq!(
            serde_json::to_string(&sid).unwrap(),
            "\"KXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""
        );
        let err = serde_json::from_str::<MessageSid>("\"KX1\"").unwrap_err();
        assert!(err.to_string().contains("invalid message SID"), "{err}");
    }

    #[test]
    fn into_sid_accepts_text_and_typed() {
        let typed: CallSid = CALL.parse().unwrap();
        let via = |arg: &dyn Fn() -> Result<CallSid, SidError>| arg();
        assert_eq!(via(&|| (&typed).into_sid()).unwrap(), typed);
        assert_eq!(via(&|| typed.into_sid()).unwrap(), typed);
        assert_eq!(via(&|| CALL.into_sid()).unwrap(), typed);
        assert_eq!(via(&|| (&CALL.to_string()).into_sid()).unwrap(), typed);
        assert_eq!(via(&|| CALL.to_string().into_sid()).unwrap(), typed);
        assert!(via(&|| String::from("CA1").into_sid()).is_err());
        assert!(via(&|| "CA1".into_sid()).is_err());
    }
}
