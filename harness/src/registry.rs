//! The node registry: where the bundled `squall-node` is, and what algorithms, workloads
//! and mutants it serves (`squall-node --list-json`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Reads the node registry from `squall-node --list-json`.
pub fn node_registry(node_bin: &Path) -> anyhow::Result<Vec<AlgoInfo>> {
    let out = std::process::Command::new(node_bin)
        .arg("--list-json")
        .output()
        .with_context(|| format!("run {} --list-json", node_bin.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} --list-json failed: {}",
        node_bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// One algorithm as `squall-node --list-json` describes it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AlgoInfo {
    /// Name.
    pub name: String,
    /// One line.
    pub summary: String,
    /// Workloads served.
    pub workloads: Vec<String>,
    /// Mutants.
    pub bugs: Vec<String>,
    /// The guarantee a multicast algorithm claims (`fifo`, `total`, `none+reliable`, ..).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<String>,
}

/// Finds `squall-node`: `$SQUALL_NODE_BIN`, else next to this executable.
pub fn find_node_bin() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("SQUALL_NODE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let mut candidates = vec![exe.with_file_name("squall-node")];
    // Test binaries live one level down, in target/<profile>/deps.
    if let Some(parent) = exe.parent().and_then(|p| p.parent()) {
        candidates.push(parent.join("squall-node"));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("cannot find squall-node next to {}; build it with `cargo build --release` or set SQUALL_NODE_BIN", exe.display()))
}

/// Finds the `squall` binary, whose `stdio-bridge` mode runs `--stdio` nodes: this
/// executable if it is `squall`, else `$SQUALL_BIN`, else next to this executable (test
/// binaries live one level down, in target/<profile>/deps).
pub fn find_squall_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    if exe.file_name().is_some_and(|n| n == "squall") {
        return Ok(exe);
    }
    if let Ok(p) = std::env::var("SQUALL_BIN") {
        return Ok(PathBuf::from(p));
    }
    let mut candidates = vec![exe.with_file_name("squall")];
    if let Some(parent) = exe.parent().and_then(|p| p.parent()) {
        candidates.push(parent.join("squall"));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        anyhow::anyhow!(
            "cannot find squall next to {} for the stdio bridge; build it or set SQUALL_BIN",
            exe.display()
        )
    })
}

/// Resolves a program name as `execvp` would: a path if it contains `/`, else via `$PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| executable(p))
}
