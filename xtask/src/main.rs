//! Project tasks: `cargo xtask codegen [--check]`, `cargo xtask spec diff <upstream.json>`,
//! `cargo xtask spec lint`, `cargo xtask build-cost [features]`, `cargo xtask screenshot`, `cargo xtask module-cycles`,
//! `cargo xtask mutants [--in-diff FILE | src/…rs...] [-- <cargo-mutants args>]`. The `spec` commands live
//! in the library (src/lib.rs).
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use xtask::{build_cost, module_cycles, mutants, spec_diff, spec_lint};

include!("../../openapi/generate.rs");

fn excerpts(list: &str) -> Vec<&Path> {
    list.split(',').map(Path::new).collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["codegen"] => codegen(false),
        ["codegen", "--check"] => codegen(true),
        // Several excerpts of the upstream file: comma-separated, read as one description.
        ["spec", "diff", upstream] => report(spec_diff::run_many(
            &root().join(SPEC_PATH),
            &excerpts(upstream),
        )),
        ["spec", "diff", upstream, fragment] => report(spec_diff::run_many(
            Path::new(fragment),
            &excerpts(upstream),
        )),
        ["build-cost"] => print_cost(build_cost::run(&root(), None)),
        ["build-cost", features] => print_cost(build_cost::run(&root(), Some(features))),
        ["spec", "lint"] => report(spec_lint::run(&root().join(SPEC_PATH))),
        ["module-cycles"] => report(module_cycles::run(&root())),
        ["module-cycles", crate_root] => report(module_cycles::run(Path::new(crate_root))),
        ["spec", "lint", fragment] => report(spec_lint::run(Path::new(fragment))),
        ["mutants", rest @ ..] => run_mutants(rest),
        ["screenshot"] => screenshot(),
        _ => {
            eprintln!("usage: cargo xtask codegen [--check]");
            eprintln!(
                "       cargo xtask spec diff <upstream twilio_api_v2010.json[,<another excerpt>...]> [<fragment.yaml>]"
            );
            eprintln!("       cargo xtask spec lint [<fragment.yaml>]");
            eprintln!("       cargo xtask build-cost [<comma-separated SDK features>]");
            eprintln!("       cargo xtask module-cycles [<crate root>]");
            eprintln!("       {MUTANTS_USAGE}");
            eprintln!("       cargo xtask screenshot");
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

/// Where the README's picture of the emulator's page lives.
const SCREENSHOT: &str = "docs/emulator-page.png";

/// Regenerates the README's picture of the emulator's page: the emulator's browser test, which
/// drives the page in chromium, writes it. CI=true makes a missing browser an error rather
/// than a skip.
fn screenshot() -> ExitCode {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(root())
        .args([
            "test",
            "-p",
            "twilio-call-messages-emulator",
            "--test",
            "it",
            "browser::",
        ])
        .env("EMULATOR_PAGE_SCREENSHOT", root().join(SCREENSHOT))
        .env("CI", "true")
        .status();
    match status {
        Ok(s) if s.success() => {
            println!("wrote {SCREENSHOT}");
            ExitCode::SUCCESS
        }
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("cannot run cargo: {e}");
            ExitCode::from(2)
        }
    }
}

const MUTANTS_USAGE: &str =
    "cargo xtask mutants [--in-diff <FILE> | <src/…rs>...] [-- <cargo-mutants args>]";

/// Runs cargo-mutants on the guarded modules, the named files, or a diff, with the test
/// targets that matter.
fn run_mutants(args: &[&str]) -> ExitCode {
    let (ours, extra) = match args.iter().position(|a| *a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &[][..]),
    };
    let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    let root = root();
    let diff_text;
    let (files, in_diff) = match ours {
        [] => (mutants::GUARDED.to_vec(), None),
        ["--in-diff", file] => {
            diff_text = match std::fs::read_to_string(file) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("cannot read {file}: {e}");
                    return ExitCode::from(2);
                }
            };
            (mutants::diff_files(&diff_text), Some(*file))
        }
        // Named files (or `src/…/*.rs` globs, as cargo-mutants takes them): a sweep of those.
        files if mutants::are_sources(files) => (files.to_vec(), None),
        _ => {
            eprintln!("{MUTANTS_USAGE}");
            return ExitCode::from(2);
        }
    };
    let args = mutants::command(&files, in_diff, &extra);
    println!("cargo mutants {}", args.join(" "));
    // A build directory of its own that stays warm between runs (cargo-mutants builds each
    // mutant in a copy of the tree; the dependencies are the same every time), and no debug
    // info: each mutant's build is mostly linking.
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .arg("mutants")
        .args(&args)
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", root.join("target/mutants"))
        .env("CARGO_PROFILE_DEV_DEBUG", "0")
        .env("CARGO_PROFILE_TEST_DEBUG", "0")
        .status();
    match status {
        // cargo-mutants: 0 all caught, 2 some missed, 3 timeouts, 4 the baseline failed.
        Ok(status) => ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("cannot run cargo mutants ({e}): cargo install cargo-mutants --locked");
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
