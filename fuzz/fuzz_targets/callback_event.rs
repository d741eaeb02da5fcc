//! Any callback body, JSON or form, parses to an event or a typed error, without panicking;
//! an event serialized (Twilio's field names, every value a string) reads back as the same
//! event, from JSON and from a form, as the type's documentation promises.
#![no_main]
use libfuzzer_sys::fuzz_target;
use twilio_call_messages::CallMessageEvent;

fuzz_target!(|data: &[u8]| {
    for content_type in [
        None,
        Some("application/json"),
        Some("application/x-www-form-urlencoded"),
        Some("application/vnd.twilio+json; charset=utf-8"),
    ] {
        match CallMessageEvent::parse(content_type, data) {
            Ok(event) => {
                let _ = (
                    format!("{event:?}"),
                    event.content_as::<serde_json::Value>(),
                );
                let json = serde_json::to_vec(&event).expect("an event serializes");
                assert_eq!(CallMessageEvent::from_json(&json).as_ref(), Ok(&event));
                let typed: CallMessageEvent =
                    serde_json::from_slice(&json).expect("what it writes, Deserialize reads");
                assert_eq!(typed, event);
                let form = serde_urlencoded::to_string(&event).expect("every value is text");
                assert_eq!(CallMessageEvent::from_form(form.as_bytes()), Ok(event));
            }
            // Every error names its field, or says the body is not JSON.
            Err(error) => {
                let _ = (error.to_string(), error.field());
            }
        }
    }
});
