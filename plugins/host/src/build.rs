//! Builds plugin crates into components, for the tests and the benchmark (users follow
//! docs/plugins.md, which runs the same cargo command).

use std::path::{Path, PathBuf};

/// The target plugins are built for: WASI preview 2, whose linker emits a component.
pub const PLUGIN_TARGET: &str = "wasm32-wasip2";

/// The directory of a plugin crate in this repository (`examples/page-category`,
/// `tests/misbehaving`), relative to `plugins/`.
pub fn plugin_crate_dir(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

/// Why a plugin crate did not build. Retrying does not help until the cause is fixed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot run cargo: {0}")]
    Cargo(std::io::Error),
    #[error("cargo build --target {PLUGIN_TARGET} of {crate_dir} failed (is the target installed? `rustup target add {PLUGIN_TARGET}`):\n{stderr}")]
    Failed { crate_dir: String, stderr: String },
    #[error("{0} has no package name")]
    NoName(String),
}

/// Builds the crate in release mode for [`PLUGIN_TARGET`] and returns the component's path.
/// The build goes to `CLICKSTREAM_PLUGIN_TARGET_DIR`, else `plugins` beside the running
/// cargo's target directory, so repeated test runs reuse it. Cargo runs in the crate's
/// directory, as docs/plugins.md has users run it, so that the crate's `.cargo/config.toml`
/// (its compiler flags) applies.
pub fn build_plugin_crate(crate_dir: &Path) -> Result<PathBuf, BuildError> {
    let target_dir = std::path::absolute(plugin_target_dir()).map_err(BuildError::Cargo)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .current_dir(crate_dir)
        .args(["build", "--release", "--quiet", "--target", PLUGIN_TARGET, "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        // The workspace's flags (e.g. for the native linker) do not apply to WebAssembly.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .map_err(BuildError::Cargo)?;
    if !output.status.success() {
        return Err(BuildError::Failed { crate_dir: crate_dir.display().to_string(), stderr: String::from_utf8_lossy(&output.stderr).into_owned() });
    }
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).map_err(BuildError::Cargo)?;
    let name = manifest
        .lines()
        .find_map(|line| line.strip_prefix("name = \"").and_then(|rest| rest.strip_suffix('"')))
        .ok_or_else(|| BuildError::NoName(crate_dir.display().to_string()))?;
    Ok(target_dir.join(PLUGIN_TARGET).join("release").join(format!("{}.wasm", name.replace('-', "_"))))
}

fn plugin_target_dir() -> PathBuf {
    if let Ok(directory) = std::env::var("CLICKSTREAM_PLUGIN_TARGET_DIR") {
        return PathBuf::from(directory);
    }
    match std::env::var("CARGO_TARGET_DIR") {
        Ok(directory) => PathBuf::from(directory).join("plugins"),
        Err(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins"),
    }
}
