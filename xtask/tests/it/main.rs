//! The xtask tests: one test binary, a module per command (`spec diff`, `spec lint`); `common`
//! runs the xtask binary and finds the fixtures.

mod common;

mod spec_diff;
mod spec_lint;
