//! Project tasks: `cargo xtask codegen [--check]`.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

include!("../../openapi/generate.rs");

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["codegen"] => codegen(false),
        ["codegen", "--check"] => codegen(true),
        _ => {
            eprintln!("usage: cargo xtask codegen [--check]");
            ExitCode::from(2)
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Writes the snapshot of what build.rs generates, or (with `--check`) fails with a diff
/// when the committed snapshot is stale.
fn codegen(check: bool) -> ExitCode {
    let root = root();
    let spec = match std::fs::read_to_string(root.join(SPEC_PATH)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot read {SPEC_PATH}: {e}");
            return ExitCode::from(2);
        }
    };
    let fresh = match generate(&spec) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("generation failed: {e}");
            return ExitCode::from(2);
        }
    };
    let snapshot = root.join(SNAPSHOT_PATH);
    let committed = std::fs::read_to_string(&snapshot).unwrap_or_default();
    if !check {
        if committed != fresh {
            if let Err(e) = std::fs::write(&snapshot, &fresh) {
                eprintln!("cannot write {SNAPSHOT_PATH}: {e}");
                return ExitCode::from(2);
            }
            println!("updated {SNAPSHOT_PATH}");
        } else {
            println!("{SNAPSHOT_PATH} is up to date");
        }
        return ExitCode::SUCCESS;
    }
    if committed == fresh {
        println!("{SNAPSHOT_PATH} is up to date");
        return ExitCode::SUCCESS;
    }
    let diff = similar::TextDiff::from_lines(&committed, &fresh);
    eprint!(
        "{}",
        diff.unified_diff()
            .context_radius(2)
            .header(SNAPSHOT_PATH, "generated from the fragment")
    );
    eprintln!("{SNAPSHOT_PATH} is stale: run `cargo xtask codegen` and commit the result");
    ExitCode::FAILURE
}
