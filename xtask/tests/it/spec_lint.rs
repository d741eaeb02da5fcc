//! `cargo xtask spec lint`: the real fragment passes; a broken copy fails with one line per
//! problem.

use crate::common;

use common::{fixture, real_fragment, xtask};
use xtask::spec_lint;

const PASSED: &str = "lint passed: 7 operations, 6 examples checked";
/// The frozen copy (`tests/fixtures/fragment.yaml`) has the three call-message operations only.
const FROZEN_PASSED: &str = "lint passed: 3 operations, 6 examples checked";

#[test]
fn real_fragment_passes() {
    assert_eq!(
        spec_lint::run(&real_fragment()),
        (vec![PASSED.to_owned()], 0)
    );
}

#[test]
fn frozen_copy_passes() {
    assert_eq!(
        spec_lint::run(&fixture("fragment.yaml")),
        (vec![FROZEN_PASSED.to_owned()], 0)
    );
}

const BROKEN: [&str; 6] = [
    "header comment: no upstream commit (a 40-hex commit after \"at commit\")",
    "operationId CreateUserDefinedMessageSubscription is used by 2 operations: \
     POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/UserDefinedMessageSubscriptions.json, \
     DELETE /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/UserDefinedMessageSubscriptions/{Sid}.json",
    "components.schemas.CallSid: pattern is ^CB[0-9a-fA-F]{32}$, expected ^CA[0-9a-fA-F]{32}$",
    "CreateUserDefinedMessage: request example: IdempotencyKey: a form field is a string, found 1",
    "CreateUserDefinedMessage: response 201 example: date_created: \"2019-12-18T20:02:01Z\" \
     is not a \"date-time-rfc-2822\"",
    "5 problems in the fragment",
];

#[test]
fn broken_copy_fails() {
    assert_eq!(
        spec_lint::run(&fixture("broken-fragment.yaml")),
        (BROKEN.map(String::from).to_vec(), 1)
    );
}

#[test]
fn binary_exit_codes() {
    assert_eq!(
        xtask(&["spec", "lint"]),
        (0, vec![PASSED.to_owned()], vec![])
    );
    let broken = fixture("broken-fragment.yaml");
    let (code, out, _) = xtask(&["spec", "lint", broken.to_str().expect("a UTF-8 path")]);
    assert_eq!((code, out), (1, BROKEN.map(String::from).to_vec()));
}

#[test]
fn other_problems() {
    let text = std::fs::read_to_string(fixture("fragment.yaml")).expect("the fixture");
    let lint = |text: &str| spec_lint::lint(text).problems;

    let no_id = text.replace(
        "      operationId: DeleteUserDefinedMessageSubscription\n",
        "",
    );
    assert_eq!(
        lint(&no_id),
        [
            "DELETE /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}/UserDefinedMessageSubscriptions/{Sid}.json: no operationId"
        ]
    );

    let short = text.replacen(
        "    MessageSid:\n      type: string\n      minLength: 34",
        "    MessageSid:\n      type: string\n      minLength: 3",
        1,
    );
    assert_eq!(
        lint(&short),
        ["components.schemas.MessageSid: minLength is 3, expected 34"]
    );

    let long_commit = text.replace(
        "d50069b44ea8cd23141385bdb6db48f16ff75bb5",
        "d50069b44ea8cd23141385bdb6db48f16ff75bb5a",
    );
    assert_eq!(
        lint(&long_commit),
        ["header comment: no upstream commit (a 40-hex commit after \"at commit\")"]
    );

    let not_openapi = text.replace("  version: \"2010-04-01\"\n", "");
    let problems = lint(&not_openapi);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("not an OpenAPI 3.0 document: "),
        "{problems:?}"
    );

    let missing_content = text.replacen("              Content: '{\"key\":\"value\"}'\n", "", 1);
    assert_eq!(
        lint(&missing_content),
        ["CreateUserDefinedMessage: request example: \"Content\" is a required property"]
    );

    let bad_error_example = text.replace(
        "            code: 20404\n",
        "            code: not-a-number\n",
    );
    assert_eq!(
        lint(&bad_error_example),
        ["components.responses.Error example: code: \"not-a-number\" is not of type \"integer\""]
    );

    // What the real validator adds: enums, formats, nullable, types inside form fields.
    let bad_examples = text
        .replace(
            "              Method: POST\n",
            "              Method: PUT\n",
        )
        .replace(
            "              Callback: http://www.example.com\n",
            "              Callback: not a url\n",
        )
        .replacen(
            "                call_sid: CAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
            "                call_sid: null\n", // allowed: the property is nullable
            1,
        )
        .replacen(
            "                sid: ZYaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
            "                sid: 7\n",
            1,
        );
    assert_eq!(
        lint(&bad_examples),
        [
            "CreateUserDefinedMessageSubscription: request example: Callback: \"not a url\" is not a \"uri\"",
            "CreateUserDefinedMessageSubscription: request example: Method: \"PUT\" is not one of \"GET\" or \"POST\"",
            "CreateUserDefinedMessageSubscription: response 201 example: sid: 7 is not of type \"string\"",
        ]
    );

    assert_eq!(
        spec_lint::header_commit(&text).as_deref(),
        Some("d50069b44ea8cd23141385bdb6db48f16ff75bb5")
    );
}

#[test]
fn unreadable_fragment() {
    let (lines, code) = spec_lint::run(&fixture("no-such-file.yaml"));
    assert_eq!(code, 2);
    assert!(lines[0].starts_with("cannot read "), "{lines:?}");
}
