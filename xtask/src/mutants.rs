//! `cargo xtask mutants [--in-diff FILE] [-- <cargo-mutants args>]`: cargo-mutants on the code
//! that decides whether a callback is genuine and whether a message is retried, with only the
//! test targets that exercise it, so that a run fits on a 2-core machine.
//!
//! Without arguments: the guarded modules (see [`GUARDED`]). With `src/` files (or globs): those
//! files, with their rules' test targets. With `--in-diff`: the mutants in the
//! diff's changed lines, tested with the union of the test targets of the files it touches
//! (the whole suite for a file no rule names).

/// Which tests catch the mutants of a source file: the first rule whose prefix the path starts
/// with wins. `lib` is the unit tests in `src/`; the others are modules of the one integration
/// test binary (`tests/it/`).
const RULES: &[(&str, &[&str])] = &[
    (
        "src/webhook/verify/forwarded.rs",
        &["lib", "webhook_axum", "webhook_doors"],
    ),
    // The receiving protocol: its framework-free tests (`lib`, under a paused clock) and the
    // table every front door runs.
    ("src/webhook/receiver.rs", &["lib", "webhook_doors"]),
    (
        "src/webhook/redelivery/protocol.rs",
        &["lib", "webhook_doors"],
    ),
    ("src/webhook/rejection.rs", &["lib", "webhook_doors"]),
    (
        "src/webhook/doors/common.rs",
        &["webhook_doors", "webhook_axum_delivery"],
    ),
    (
        "src/webhook/doors/axum.rs",
        &[
            "lib",
            "webhook_axum",
            "webhook_axum_delivery",
            "webhook_redelivery",
            "webhook_doors",
        ],
    ),
    ("src/webhook/doors/tower.rs", &["webhook_doors"]),
    (
        "src/webhook/doors/actix.rs",
        &["webhook_doors", "webhook_python"],
    ),
    (
        "src/webhook/redelivery/",
        &["lib", "webhook_axum_delivery", "redis_store"],
    ),
    ("src/webhook/verify/event.rs", &["lib", "webhook_event"]),
    (
        "src/webhook/",
        &["lib", "webhook_verify", "webhook_signature"],
    ),
    ("src/retry", &["lib", "retries", "request_path"]),
    ("src/flow/", &["lib", "flow_control"]),
];

/// The files a plain `cargo xtask mutants` sweeps: signature verification, and the retry rules
/// with their budget and per-call state (`src/retry/`).
pub const GUARDED: &[&str] = &[
    "src/webhook/verify/signature.rs",
    "src/webhook/verify/params.rs",
    "src/webhook/verify/body.rs",
    "src/webhook/verify/url_variants.rs",
    "src/webhook/verify/settings.rs",
    "src/retry.rs",
    "src/retry/*.rs",
];

/// The tests that cover every file in `files`: the union of their rules' entries, in rule
/// order; `None` (the whole suite) if any file has no rule.
pub fn test_args<'a>(files: impl IntoIterator<Item = &'a str>) -> Option<Vec<&'static str>> {
    let mut targets: Vec<&'static str> = Vec::new();
    for file in files {
        let (_, rule) = RULES.iter().find(|(prefix, _)| file.starts_with(prefix))?;
        for target in *rule {
            if !targets.contains(target) {
                targets.push(target);
            }
        }
    }
    Some(targets)
}

/// The cargo-mutants arguments that build only the unit tests and the integration binary
/// (`--cargo-arg`: the targets limit the build as well as the run).
const TEST_TARGETS: [&str; 3] = ["--cargo-arg=--lib", "--cargo-arg=--test", "--cargo-arg=it"];

/// The libtest filters that run only `tests` (from [`test_args`]): filters select by
/// substring, `::tests::` for the unit tests (every one sits in a `tests` module) and
/// `<module>::` for a module of the integration binary.
fn test_filters(tests: &[&str]) -> Vec<String> {
    tests
        .iter()
        .map(|t| match *t {
            "lib" => "::tests::".to_owned(),
            module => format!("{module}::"),
        })
        .collect()
}

/// Whether every argument names Rust files under `src/` (a path or a cargo-mutants glob).
pub fn are_sources(args: &[&str]) -> bool {
    args.iter()
        .all(|a| a.starts_with("src/") && a.ends_with(".rs"))
}

/// The source files a unified diff changes (its `+++ b/…` lines), `src/` only.
pub fn diff_files(diff: &str) -> Vec<&str> {
    let mut files: Vec<&str> = diff
        .lines()
        .filter_map(|l| l.strip_prefix("+++ b/"))
        .map(str::trim_end)
        .filter(|f| f.starts_with("src/") && f.ends_with(".rs"))
        .collect();
    files.sort_unstable();
    files.dedup();
    files
}

/// The cargo-mutants command line (after `cargo mutants`) for a sweep of `files`, or for the
/// diff in `in_diff` touching `files`; `extra` is passed through.
pub fn command(files: &[&str], in_diff: Option<&str>, extra: &[String]) -> Vec<String> {
    // One job: the machine is shared, and each build is mostly linking. `--gitignore=true`:
    // the copy of the tree skips fuzz/corpus and fuzz/target, which a running fuzzer may be
    // changing and which no build needs. A mutant that loops is cut off after a minute.
    let mut args: Vec<String> = [
        "-j",
        "1",
        "--all-features",
        "--gitignore=true",
        "--timeout",
        "60",
        "--output",
        "target/mutants.out",
    ]
    .map(String::from)
    .to_vec();
    match in_diff {
        Some(diff) => args.extend(["--in-diff".into(), diff.into()]),
        None => {
            for file in files {
                args.extend(["--file".into(), (*file).into()]);
            }
        }
    }
    let tests = test_args(files.iter().copied()).filter(|t| !t.is_empty());
    if tests.is_some() {
        args.extend(TEST_TARGETS.map(String::from));
    }
    args.extend(extra.iter().cloned());
    // After `--`, cargo test's arguments; after a second `--`, the test binaries' (the form
    // cargo-mutants documents in "Passing options to Cargo").
    if let Some(tests) = tests {
        args.extend(["--".into(), "--".into()]);
        args.extend(test_filters(&tests));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_file_gets_the_targets_that_exercise_it() {
        assert_eq!(
            test_args([
                "src/webhook/verify/signature.rs",
                "src/webhook/verify/settings.rs"
            ]),
            Some(vec!["lib", "webhook_verify", "webhook_signature"])
        );
        assert_eq!(
            test_args([
                "src/retry.rs",
                "src/webhook/verify/event.rs",
                "src/retry/state.rs"
            ]),
            Some(vec!["lib", "retries", "request_path", "webhook_event"])
        );
        assert_eq!(
            test_args(["src/retry/budget.rs"]),
            test_args(["src/retry.rs"])
        );
        assert_eq!(test_args(["src/client.rs", "src/retry.rs"]), None);
        assert_eq!(test_args([]), Some(vec![]));
    }

    #[test]
    fn named_files_must_be_sources() {
        assert!(are_sources(&["src/flow/limiter.rs", "src/retry/*.rs"]));
        assert!(!are_sources(&["src/flow/limiter.rs", "--in-diff"]));
        assert!(!are_sources(&["README.md"]));
    }

    #[test]
    fn reads_the_files_of_a_diff() {
        let diff = "diff --git a/src/retry.rs b/src/retry.rs\n--- a/src/retry.rs\n+++ b/src/retry.rs\n@@ -1 +1 @@\n+x\n+++ b/README.md\n+++ b/src/retry.rs\n+++ b/src/flow/limiter.rs\n";
        assert_eq!(
            diff_files(diff),
            vec!["src/flow/limiter.rs", "src/retry.rs"]
        );
    }

    #[test]
    fn the_command_names_files_or_the_diff_then_the_tests() {
        let sweep = command(&["src/webhook/verify/params.rs"], None, &[]);
        assert_eq!(
            sweep.join(" "),
            "-j 1 --all-features --gitignore=true --timeout 60 --output target/mutants.out --file src/webhook/verify/params.rs \
             --cargo-arg=--lib --cargo-arg=--test --cargo-arg=it \
             -- -- ::tests:: webhook_verify:: webhook_signature::"
        );
        let diff = command(
            &["src/client.rs"],
            Some("my.diff"),
            &["--shard".into(), "0/2".into()],
        );
        assert_eq!(
            diff.join(" "),
            "-j 1 --all-features --gitignore=true --timeout 60 --output target/mutants.out --in-diff my.diff --shard 0/2"
        );
    }
}
