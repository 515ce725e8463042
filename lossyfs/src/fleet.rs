//! What the harness holds: the run's file-system choice ([`FsConfig`]) and, for a lossy
//! run, one helper per node ([`Fleet`]).
//!
//! The supervisor calls four things, in process order: [`Fleet::killed`] when it sends a
//! node SIGKILL, [`Fleet::before_start`] before each start (crash what the killed node
//! never synced, mount on first start), [`Fleet::wipe`] for amnesia, and
//! [`Fleet::stop_all`] at teardown (a node killed and never restarted crashes first;
//! then everything is flushed and unmounted).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::core::{CrashFaults, CrashReport, MetaMode, Stats};
use crate::helper::{Helper, HelperError, HelperOpts};

/// Which file system node data directories are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FsKind {
    /// The backing file system itself: unsynced writes survive a SIGKILL in the page cache.
    #[default]
    Native,
    /// lossyfs; names durable when their directory is fsynced.
    Lossy,
    /// lossyfs; names durable at once, only data lost.
    LossyData,
    /// `squall run`'s default, resolved before a run starts (see [`FsConfig::auto`]):
    /// lossy for a free-running run under every kind of fault when FUSE is usable, else
    /// native. Never what a run records.
    Auto,
}

impl FsKind {
    /// Parses `native`, `lossy`, `lossy-data` or `auto`.
    pub fn parse(s: &str) -> Result<FsKind, String> {
        match s {
            "native" => Ok(FsKind::Native),
            "lossy" => Ok(FsKind::Lossy),
            "lossy-data" => Ok(FsKind::LossyData),
            "auto" => Ok(FsKind::Auto),
            other => Err(format!(
                "unknown file system '{other}' (valid: auto, native, lossy, lossy-data)"
            )),
        }
    }

    /// The name `--fs` takes.
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Native => "native",
            FsKind::Lossy => "lossy",
            FsKind::LossyData => "lossy-data",
            FsKind::Auto => "auto",
        }
    }
}

/// A run's file-system choice, as `run.json` keeps it (a `run.json` without one ran
/// native).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FsConfig {
    /// Which one.
    pub kind: FsKind,
    /// Crash faults (lossy only).
    #[serde(default)]
    pub faults: CrashFaults,
    /// Why `auto` chose `kind` (absent when it was asked for by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<String>,
}

impl FsConfig {
    /// `auto`, to be resolved with [`FsConfig::resolve_auto`].
    pub fn auto() -> FsConfig {
        FsConfig {
            kind: FsKind::Auto,
            ..FsConfig::default()
        }
    }

    /// Resolves `auto`: lossy when `wanted` (the run is free-running under every kind of
    /// fault) and `usable()` (FUSE works here); else native, saying why. Any other
    /// choice is returned as it is.
    pub fn resolve_auto(
        self,
        wanted: Result<(), &str>,
        usable: impl FnOnce() -> Result<(), String>,
    ) -> FsConfig {
        if self.kind != FsKind::Auto {
            return self;
        }
        let (kind, why) = match wanted.map(|()| usable()) {
            Err(why) => (FsKind::Native, format!("auto: {why}")),
            Ok(Err(e)) => (
                FsKind::Native,
                format!("auto: the nemesis is all, but FUSE is not usable here: {e}"),
            ),
            Ok(Ok(())) => (
                FsKind::Lossy,
                "auto: the nemesis is all and FUSE is usable here".to_string(),
            ),
        };
        FsConfig {
            kind,
            chosen: Some(why),
            ..self
        }
    }

    /// Whether node data stays on the backing file system.
    pub fn is_native(&self) -> bool {
        self.kind == FsKind::Native
    }

    /// `auto` wanted the lossy mount but FUSE was not usable: the one line that says why.
    pub fn fell_back(&self) -> Option<&str> {
        self.chosen
            .as_deref()
            .filter(|why| self.is_native() && why.contains("FUSE is not usable"))
    }

    /// What `metrics.json` and `verdict.json` say of the file system: its kind, why
    /// `auto` chose it, and the fleet's counters (`fleet_metrics`, lossy runs only).
    pub fn report(&self, fleet_metrics: Option<Value>) -> Value {
        let mut out = match fleet_metrics {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        out.insert("kind".into(), json!(self.kind.name()));
        if let Some(why) = &self.chosen {
            out.insert("chosen".into(), json!(why));
        }
        Value::Object(out)
    }

    /// The summary's `fs` line.
    pub fn summary_line(&self) -> String {
        match &self.chosen {
            Some(why) => format!("fs        {} ({why})\n", self.kind.name()),
            None => format!("fs        {}\n", self.kind.name()),
        }
    }

    fn meta(&self) -> MetaMode {
        match self.kind {
            FsKind::LossyData => MetaMode::Immediate,
            _ => MetaMode::Posix,
        }
    }
}

/// Every node's helper in a lossy run.
pub struct Fleet {
    opts: HelperOpts,
    kind: FsKind,
    /// Whether the lossy file system was asked for by name (not chosen by `auto`).
    asked_by_name: bool,
    backing_root: PathBuf,
    helpers: BTreeMap<String, Helper>,
    killed: BTreeSet<String>,
    /// Per node, per kill: what was dropped.
    crashes: BTreeMap<String, Vec<CrashReport>>,
    /// Per node: the helper's final counters.
    finals: BTreeMap<String, Stats>,
    errors: Vec<String>,
}

impl Fleet {
    /// A fleet whose backing directories go under `backing_root/<node>`.
    pub fn new(cfg: FsConfig, bin: PathBuf, seed: u64, backing_root: &Path) -> Fleet {
        Fleet {
            opts: HelperOpts {
                bin,
                meta: cfg.meta(),
                faults: cfg.faults,
                seed,
            },
            kind: cfg.kind,
            asked_by_name: cfg.chosen.is_none(),
            backing_root: backing_root.to_path_buf(),
            helpers: BTreeMap::new(),
            killed: BTreeSet::new(),
            crashes: BTreeMap::new(),
            finals: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    /// The supervisor sent `node` SIGKILL.
    pub fn killed(&mut self, node: &str) {
        self.killed.insert(node.to_string());
    }

    fn crash(&mut self, node: &str) -> Result<(), HelperError> {
        if !self.killed.remove(node) {
            return Ok(());
        }
        if let Some(h) = self.helpers.get_mut(node) {
            let report = h.crash()?;
            self.crashes
                .entry(node.to_string())
                .or_default()
                .push(report);
        }
        Ok(())
    }

    /// Before `node` starts with its data in `data_dir` (which exists): drop what a kill
    /// left unsynced, mount on the first start.
    pub fn before_start(&mut self, node: &str, data_dir: &Path) -> Result<(), HelperError> {
        self.crash(node)?;
        if !self.helpers.contains_key(node) {
            let backing = self.backing_root.join(node);
            std::fs::create_dir_all(&backing).map_err(|source| HelperError::Spawn {
                bin: backing.display().to_string(),
                source,
            })?;
            let h = Helper::start(&self.opts, node, &backing, data_dir)?;
            self.helpers.insert(node.to_string(), h);
        }
        Ok(())
    }

    /// Amnesia: `node`'s durable state is emptied (it is dead: crash first).
    pub fn wipe(&mut self, node: &str) -> Result<(), HelperError> {
        self.crash(node)?;
        match self.helpers.get_mut(node) {
            Some(h) => h.wipe(),
            None => Ok(()),
        }
    }

    /// Teardown, once every node is gone: crash the killed ones, flush and unmount all.
    pub fn stop_all(&mut self) {
        let killed: Vec<String> = self.killed.iter().cloned().collect();
        for node in killed {
            if let Err(e) = self.crash(&node) {
                self.errors.push(e.to_string());
            }
        }
        for (node, h) in std::mem::take(&mut self.helpers) {
            match h.stop() {
                Ok(stats) => {
                    self.finals.insert(node, stats);
                }
                Err(e) => self.errors.push(e.to_string()),
            }
        }
    }

    /// Kills and the bytes they dropped, over all nodes.
    fn totals(&self) -> (u64, u64, u64) {
        let all = self.crashes.values().flatten();
        let kills = all.clone().count() as u64;
        let bytes = all.clone().map(|c| c.bytes_dropped).sum();
        let files = all.map(|c| c.files_dropped + c.names_dropped).sum();
        (kills, bytes, files)
    }

    /// For `metrics.json`: per node and kill, what was dropped; fsyncs seen.
    pub fn metrics(&self) -> Value {
        let mut nodes = serde_json::Map::new();
        let ids: BTreeSet<&String> = self.finals.keys().chain(self.crashes.keys()).collect();
        for id in ids {
            let s = self.finals.get(id).cloned().unwrap_or_default();
            let kills = self.crashes.get(id).cloned().unwrap_or_default();
            nodes.insert(
                id.clone(),
                json!({
                    "fsyncs": s.fsyncs,
                    "dir_fsyncs": s.dir_fsyncs,
                    "writes": s.writes,
                    "bytes_written": s.bytes_written,
                    "written_back_bytes": s.written_back_bytes,
                    "flushed_at_stop_bytes": s.flushed_bytes,
                    "bytes_dropped": kills.iter().map(|c| c.bytes_dropped).sum::<u64>(),
                    "files_dropped": kills.iter().map(|c| c.files_dropped).sum::<u64>(),
                    "kills": kills,
                }),
            );
        }
        let (kills, bytes, files) = self.totals();
        json!({
            "kind": self.kind.name(),
            "faults": self.opts.faults,
            "kills": kills,
            "bytes_dropped": bytes,
            "files_dropped": files,
            "nodes": nodes,
            "errors": self.errors,
        })
    }

    /// A warning when nodes were killed but nothing was dropped: the test proved nothing
    /// about missing fsyncs (the node synced everything, or wrote nothing between kills).
    /// Only for a lossy file system asked for by name: under `--fs auto` the mount is a
    /// default that nodes which sync everything (the bundled ones) are expected to pass,
    /// and `metrics.json` still counts what was dropped.
    pub fn warning(&self) -> Option<String> {
        let (kills, bytes, files) = self.totals();
        if !self.errors.is_empty() {
            return Some(format!(
                "the lossy file system had trouble: {}",
                self.errors.join("; ")
            ));
        }
        (self.asked_by_name && kills > 0 && bytes == 0 && files == 0).then(|| {
            format!(
                "--fs {}: nodes were killed {kills} time(s) but the lossy file system dropped nothing (the nodes synced everything they wrote, or wrote nothing between kills)",
                self.kind.name()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_is_lossy_only_when_wanted_and_usable_and_says_why() {
        let usable = || Ok(());
        let lossy = FsConfig::auto().resolve_auto(Ok(()), usable);
        assert_eq!(lossy.kind, FsKind::Lossy);
        assert!(lossy.fell_back().is_none());
        assert_eq!(lossy.report(None)["kind"], "lossy");

        let other = FsConfig::auto().resolve_auto(Err("the nemesis is not all"), || {
            panic!("FUSE is not probed for a run that does not want it")
        });
        assert_eq!(other.kind, FsKind::Native);
        assert!(other.fell_back().is_none());
        assert!(other.summary_line().contains("the nemesis is not all"));

        let missing = FsConfig::auto().resolve_auto(Ok(()), || Err("no /dev/fuse".into()));
        assert_eq!(missing.kind, FsKind::Native);
        assert!(missing
            .fell_back()
            .is_some_and(|w| w.contains("no /dev/fuse")));
        assert!(missing.report(None)["chosen"]
            .as_str()
            .is_some_and(|w| w.contains("no /dev/fuse")));

        let named = FsConfig {
            kind: FsKind::Native,
            ..FsConfig::default()
        };
        assert_eq!(named.clone().resolve_auto(Ok(()), usable), named);
    }
}
