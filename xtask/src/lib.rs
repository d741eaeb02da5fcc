//! The library half of `cargo xtask`: the `spec` commands and the module-cycle check, as functions the tests can call.
//! `main.rs` parses the command line and prints what these return.

pub mod build_cost;
pub mod example_schema;
pub mod module_cycles;
pub mod mutants;
pub mod oas;
pub mod spec_diff;
pub mod spec_lint;
