//! The `tracejoin` command: `check-config` and `explain` (docs/cli.md). Native only: on
//! wasm32 the crate is the filter, and this binary is an empty stub so that
//! `cargo clippy --all-targets --target wasm32-wasip1` still builds every target.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    tracejoin::cli::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}
