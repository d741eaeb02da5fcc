//! `cargo xtask build-cost [features]`: what depending on this crate costs a downstream
//! service's clean build. Builds a minimal service (reqwest, tokio, serde) twice in fresh
//! target directories, without and with the SDK, and prints the marginal seconds and the crates
//! the SDK adds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const MAIN_RS: &str = r#"#[derive(serde::Serialize, serde::Deserialize)]
struct Ping { n: u32 }

#[tokio::main]
async fn main() {
    let client = reqwest::Client::new();
    let body = serde_json::to_string(&Ping { n: 1 }).unwrap();
    let _ = client.post("http://127.0.0.1:9/").body(body);
    println!("built");
}
"#;

/// Runs the measurement; `sdk_features` is `None` for the default features.
pub fn run(root: &Path, sdk_features: Option<&str>) -> Result<Vec<String>, String> {
    let work = std::env::temp_dir().join(format!("build-cost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let baseline = service(&work, "baseline", None)?;
    let sdk_dep = match sdk_features {
        None => format!(
            "twilio-call-messages = {{ path = {:?} }}",
            root.display().to_string()
        ),
        Some(f) => format!(
            "twilio-call-messages = {{ path = {:?}, default-features = false, features = [{}] }}",
            root.display().to_string(),
            f.split(',')
                .map(|f| format!("{:?}", f.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let with_sdk = service(&work, "with-sdk", Some(&sdk_dep))?;

    let base_secs = build(&baseline)?;
    let sdk_secs = build(&with_sdk)?;
    let base_crates = crates(&baseline)?;
    let sdk_crates = crates(&with_sdk)?;
    let added: Vec<&String> = sdk_crates.difference(&base_crates).collect();
    let _ = std::fs::remove_dir_all(&work);

    let mut lines = vec![
        format!("features: {}", sdk_features.unwrap_or("default")),
        format!(
            "baseline (reqwest, tokio, serde): {base_secs:.1} s, {} crates",
            base_crates.len()
        ),
        format!(
            "with twilio-call-messages:        {sdk_secs:.1} s, {} crates",
            sdk_crates.len()
        ),
        format!(
            "marginal: {:.1} s, {} crates added:",
            sdk_secs - base_secs,
            added.len()
        ),
    ];
    lines.extend(added.iter().map(|c| format!("  {c}")));
    Ok(lines)
}

fn service(work: &Path, name: &str, extra: Option<&str>) -> Result<PathBuf, String> {
    let dir = work.join(name);
    std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
reqwest = "0.13"
tokio = {{ version = "1", features = ["macros", "rt-multi-thread"] }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"
{}

[workspace]
"#,
        extra.unwrap_or("")
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("src/main.rs"), MAIN_RS).map_err(|e| e.to_string())?;
    // Resolve (and download) before timing, so the network is not measured.
    cargo(&dir, &["fetch", "--quiet"])?;
    Ok(dir)
}

/// A clean `cargo build` (dev profile) in its own target directory, in seconds.
fn build(dir: &Path) -> Result<f64, String> {
    let started = Instant::now();
    cargo(dir, &["build", "--quiet"])?;
    Ok(started.elapsed().as_secs_f64())
}

/// The crates compiled for the service: `name vX.Y.Z`, one each.
fn crates(dir: &Path) -> Result<BTreeSet<String>, String> {
    let out = cargo(
        dir,
        &[
            "tree",
            "--prefix",
            "none",
            "-e",
            "normal,build",
            "--no-dedupe",
        ],
    )?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some(format!("{} {}", words.next()?, words.next()?))
        })
        .filter(|c| !c.starts_with("baseline ") && !c.starts_with("with-sdk "))
        .collect())
}

fn cargo(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .map_err(|e| format!("cargo {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "cargo {} failed in {}:\n{}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
