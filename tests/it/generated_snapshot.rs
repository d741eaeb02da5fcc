//! The committed snapshot `openapi/generated.rs` must be exactly what build.rs generated for
//! this build; `cargo xtask codegen` refreshes it.

#[test]
fn snapshot_matches_what_build_rs_generated() {
    let built = include_str!(concat!(env!("OUT_DIR"), "/generated.rs"));
    let committed = include_str!("../../openapi/generated.rs");
    assert!(
        built == committed,
        "openapi/generated.rs is stale: run `cargo xtask codegen` and commit the result"
    );
    assert!(
        committed.starts_with("// @generated"),
        "the snapshot says it is generated"
    );
}
