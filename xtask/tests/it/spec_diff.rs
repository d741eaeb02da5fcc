//! `cargo xtask spec diff`: each fixture is a small upstream-shaped description compared with
//! `fixtures/fragment.yaml` (a frozen copy of the fragment, so that these tests exercise the
//! diff, not the current state of the fragment). `in_sync.json` is the upstream excerpt in
//! `openapi/upstream/` without descriptions, examples, headers and security (and one
//! description reworded, which must not count); every other fixture changes one thing in it.
//! `broken-fragment.yaml` (for the lint tests) is `fragment.yaml` with five problems.

use crate::common;

use common::{fixture, real_fragment, workspace_root, xtask};
use xtask::spec_diff;

fn diff(upstream: &str) -> (Vec<String>, u8) {
    spec_diff::run(&fixture("fragment.yaml"), &fixture(upstream))
}

const IN_SYNC: &str = "in sync: all 3 operations of the fragment match upstream";
const ONE_DIFFERENCE: &str = "drift: 1 difference between the fragment and upstream";

#[test]
fn in_sync() {
    assert_eq!(diff("in_sync.json"), (vec![IN_SYNC.to_owned()], 0));
}

#[test]
fn field_added_upstream() {
    let expected = [
        "CreateUserDefinedMessage: form field StatusCallback: upstream optional string (format uri), ours absent",
        ONE_DIFFERENCE,
    ];
    assert_eq!(
        diff("field_added.json"),
        (expected.map(String::from).to_vec(), 1)
    );
}

#[test]
fn field_removed_upstream() {
    let expected = [
        "CreateUserDefinedMessage: form field IdempotencyKey: upstream absent, ours optional string",
        ONE_DIFFERENCE,
    ];
    assert_eq!(
        diff("field_removed.json"),
        (expected.map(String::from).to_vec(), 1)
    );
}

#[test]
fn field_became_optional_upstream() {
    let expected = [
        "CreateUserDefinedMessageSubscription: form field Callback: required: upstream no, ours yes",
        ONE_DIFFERENCE,
    ];
    assert_eq!(
        diff("field_optional.json"),
        (expected.map(String::from).to_vec(), 1)
    );
}

#[test]
fn enum_value_added_upstream() {
    let expected = [
        "CreateUserDefinedMessageSubscription: form field Method: enum: upstream [GET, POST, PUT], ours [GET, POST]",
        ONE_DIFFERENCE,
    ];
    assert_eq!(
        diff("enum_value_added.json"),
        (expected.map(String::from).to_vec(), 1)
    );
}

#[test]
fn response_property_added_upstream() {
    let expected = [
        "CreateUserDefinedMessage: response 201 property uri: upstream optional string, ours absent",
        ONE_DIFFERENCE,
    ];
    assert_eq!(
        diff("response_property_added.json"),
        (expected.map(String::from).to_vec(), 1)
    );
}

#[test]
fn operation_added_upstream_on_a_covered_path() {
    let expected = [
        "GET /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/UserDefinedMessageSubscriptions/{Sid}.json: \
         upstream operation FetchUserDefinedMessageSubscription is not in the fragment",
        ONE_DIFFERENCE,
    ];
    assert_eq!(
        diff("operation_added.json"),
        (expected.map(String::from).to_vec(), 1)
    );
}

#[test]
fn malformed_upstream_is_unreadable() {
    let path = fixture("malformed.json");
    let expected = format!(
        "{} is not valid JSON: EOF while parsing a value at line 29 column 0",
        path.display()
    );
    assert_eq!(diff("malformed.json"), (vec![expected], 2));
}

#[test]
fn missing_upstream_is_unreadable() {
    let (lines, code) = diff("no-such-file.json");
    assert_eq!(code, 2);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with(&format!(
            "cannot read {}: ",
            fixture("no-such-file.json").display()
        )),
        "{lines:?}"
    );
}

#[test]
fn json_without_paths_is_an_error() {
    let ours = serde_json::json!({"paths": {}});
    let upstream = serde_json::json!({"openapi": "3.0.1"});
    assert_eq!(
        spec_diff::diff(&ours, "fragment.yaml", &upstream, "upstream.json"),
        Err("upstream.json: not an OpenAPI document: no \"paths\" object".to_owned())
    );
}

#[test]
fn binary_exit_codes() {
    let fragment = fixture("fragment.yaml");
    let fragment = fragment.to_str().expect("a UTF-8 path");
    let run = |name: &str| {
        xtask(&[
            "spec",
            "diff",
            fixture(name).to_str().expect("a UTF-8 path"),
            fragment,
        ])
    };

    let (code, out, err) = run("in_sync.json");
    assert_eq!((code, out, err), (0, vec![IN_SYNC.to_owned()], vec![]));

    let (code, out, err) = run("enum_value_added.json");
    assert_eq!(code, 1, "{err:?}");
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[1], ONE_DIFFERENCE);

    let (code, out, err) = run("malformed.json");
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out:?}");
    assert!(
        err[0].ends_with(
            "malformed.json is not valid JSON: EOF while parsing a value at line 29 column 0"
        ),
        "{err:?}"
    );

    let (code, _, err) = xtask(&["spec", "diff"]);
    assert_eq!(code, 2);
    assert!(err[0].starts_with("usage:"), "{err:?}");
}

/// The real fragment against the unedited upstream excerpt committed in `openapi/upstream/`.
#[test]
fn real_fragment_is_in_sync_with_the_reference_excerpts() {
    let excerpts = [
        workspace_root().join("openapi/upstream/twilio_api_v2010.user_defined_messages.json"),
        workspace_root().join("openapi/upstream/twilio_api_v2010.calls_conferences.json"),
    ];
    for excerpt in &excerpts {
        assert!(excerpt.exists(), "{} is committed", excerpt.display());
    }
    let excerpts: Vec<&std::path::Path> = excerpts.iter().map(|p| p.as_path()).collect();
    let (lines, code) = spec_diff::run_many(&real_fragment(), &excerpts);
    assert_eq!(code, 0, "{lines:#?}");
    assert!(lines[0].starts_with("in sync: all "), "{lines:?}");
}

/// What the fragment leaves out on purpose it declares (`x-not-sent`, `x-not-read`); anything
/// else upstream has is still a difference, and a stale declaration is one too. A response
/// enum ours reads as a plain string is lenient on purpose.
#[test]
fn declared_omissions_and_lenient_response_enums() {
    let upstream = serde_json::json!({"paths": {"/calls": {"get": {
        "operationId": "ListCall",
        "parameters": [
            {"name": "To", "in": "query", "schema": {"type": "string"}},
            {"name": "StartTime", "in": "query", "schema": {"type": "string"}},
            {"name": "EndTime", "in": "query", "schema": {"type": "string"}}
        ],
        "responses": {"200": {"content": {"application/json": {"schema": {
            "type": "object",
            "properties": {
                "sid": {"type": "string"},
                "to_formatted": {"type": "string"},
                "price": {"type": "string"},
                "status": {"type": "string", "enum": ["queued", "ringing"]}
            }
        }}}}}
    }}}});
    let ours = |not_sent: serde_json::Value, not_read: serde_json::Value| {
        serde_json::json!({"paths": {"/calls": {"get": {
            "operationId": "ListCall",
            "x-not-sent": not_sent,
            "parameters": [{"name": "To", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": {"content": {"application/json": {"schema": {
                "type": "object",
                "x-not-read": not_read,
                "properties": {"sid": {"type": "string"}, "status": {"type": "string"}}
            }}}}}
        }}}})
    };
    let lines = |ours: &serde_json::Value| {
        spec_diff::diff(ours, "fragment.yaml", &upstream, "upstream.json").unwrap()
    };
    let all = ours(
        serde_json::json!(["StartTime", "EndTime"]),
        serde_json::json!(["to_formatted", "price"]),
    );
    assert_eq!(lines(&all), Vec::<String>::new());
    let partial = ours(
        serde_json::json!(["StartTime", "Nope"]),
        serde_json::json!(["to_formatted", "gone"]),
    );
    assert_eq!(
        lines(&partial),
        [
            "ListCall: x-not-sent names Nope, which is not an optional upstream parameter",
            "ListCall: query parameter EndTime: upstream optional string, ours absent",
            "ListCall: response 200: x-not-read names gone, which upstream does not have",
            "ListCall: response 200 property price: upstream optional string, ours absent",
        ]
    );
}
