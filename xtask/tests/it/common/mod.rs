// Shared by the xtask test files (each includes it with `mod common;`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the SDK package).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The real fragment.
pub fn real_fragment() -> PathBuf {
    workspace_root().join("openapi/call-messages.yaml")
}

/// A file under `xtask/tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs the real `xtask` binary: (exit code, stdout lines, stderr lines).
pub fn xtask(args: &[&str]) -> (i32, Vec<String>, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("xtask runs");
    let lines = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    (
        out.status.code().expect("an exit code"),
        lines(&out.stdout),
        lines(&out.stderr),
    )
}
