//! Any callback body, JSON or form, parses to an event or a typed error, without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use twilio_call_messages::CallMessageEvent;

fuzz_target!(|data: &[u8]| {
    for content_type in [None, Some("application/json"), Some("application/x-www-form-urlencoded")] {
        if let Ok(event) = CallMessageEvent::parse(content_type, data) {
            let _ = (format!("{event:?}"), event.content_as::<serde_json::Value>());
        }
    }
    let _ = CallMessageEvent::from_json(data);
    let _ = CallMessageEvent::from_form(data);
});
