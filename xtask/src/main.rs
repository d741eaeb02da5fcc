//! Project tasks: `cargo xtask codegen [--check]`, `cargo xtask spec diff <upstream.json>`,
//! `cargo xtask spec lint`, `cargo xtask build-cost [features]`, `cargo xtask module-cycles`. The `spec` commands live in the library (src/lib.rs).
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use xtask::{build_cost, module_cycles, spec_diff, spec_lint};

include!("../../openapi/generate.rs");

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["codegen"] => codegen(false),
        ["codegen", "--check"] => codegen(true),
        ["spec", "diff", upstream] => {
            report(spec_diff::run(&root().join(SPEC_PATH), Path::new(upstream)))
        }
        ["spec", "diff", upstream, fragment] => {
            report(spec_diff::run(Path::new(fragment), Path::new(upstream)))
        }
        ["build-cost"] => print_cost(build_cost::run(&root(), None)),
        ["build-cost", features] => print_cost(build_cost::run(&root(), Some(features))),
        ["spec", "lint"] => report(spec_lint::run(&root().join(SPEC_PATH))),
        ["module-cycles"] => report(module_cycles::run(&root())),
        ["module-cycles", crate_root] => report(module_cycles::run(Path::new(crate_root))),
        ["spec", "lint", fragment] => report(spec_lint::run(Path::new(fragment))),
        _ => {
            eprintln!("usage: cargo xtask codegen [--check]");
            eprintln!(
                "       cargo xtask spec diff <upstream twilio_api_v2010.json> [<fragment.yaml>]"
            );
            eprintln!("       cargo xtask spec lint [<fragment.yaml>]");
            eprintln!("       cargo xtask build-cost [<comma-separated SDK features>]");
            eprintln!("       cargo xtask module-cycles [<crate root>]");
            ExitCode::from(2)
        }
    }
}

/// Prints what a `spec` command found (to stderr when the input could not be read) and exits
/// with its code.
fn report((lines, code): (Vec<String>, u8)) -> ExitCode {
    for line in &lines {
        if code == 2 {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    ExitCode::from(code)
}

fn print_cost(result: Result<Vec<String>, String>) -> ExitCode {
    match result {
        Ok(lines) => {
            lines.iter().for_each(|l| println!("{l}"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
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
