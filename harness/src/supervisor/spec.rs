//! What the supervisor starts ([`NodeSpec`]) and what it records of each process: exits,
//! fault events and per-node counters.

use std::path::PathBuf;

use serde::Serialize;

use crate::router::Gate;

/// What is needed to start one node process.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// `n1`...
    pub id: String,
    /// Program and arguments (no shell).
    pub argv: Vec<String>,
    /// Extra environment (`SQUALL_*`).
    pub env: Vec<(String, String)>,
    /// The node's durable directory, kept across restarts.
    pub data_dir: PathBuf,
    /// Where stdout and stderr go (appended across restarts).
    pub log_path: PathBuf,
    /// The gate the node must pass, and the address it connects as there.
    pub admission: Option<(Gate, String)>,
    /// `Some(dir)`: start the node in working directory `dir` with no environment but
    /// `env` and the supervisor's `SQUALL_*` (lockstep's clean environment); `None`: it
    /// inherits the harness's environment and working directory, plus `env`.
    pub clean_env_in: Option<PathBuf>,
}

impl NodeSpec {
    /// The node connects through `gate` as its own id.
    pub fn admitted_by(self, gate: &Gate) -> NodeSpec {
        let id = self.id.clone();
        self.admitted_as(gate, &id)
    }

    /// The node connects through `gate` as `node` (when its process id is another).
    pub fn admitted_as(mut self, gate: &Gate, node: &str) -> NodeSpec {
        self.admission = Some((gate.clone(), node.to_string()));
        self
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExitInfo {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal number, if a signal ended it.
    pub signal: Option<i32>,
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit code {c}"),
            (_, Some(s)) => write!(f, "signal {s}"),
            _ => write!(f, "unknown status"),
        }
    }
}

/// A process exit, as observed by a waiter thread.
#[derive(Debug, Clone)]
pub struct ExitEvent {
    /// The node.
    pub node: String,
    /// Which start of the node this was (0 first).
    pub incarnation: u64,
    /// Its status.
    pub status: ExitInfo,
}

/// One thing the supervisor did or saw, for `metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ProcRecord {
    /// Microseconds since the run started.
    pub at_us: u64,
    /// The node.
    pub node: String,
    /// `spawn`, `kill`, `pause`, `resume`, `term`, `exit`, `wipe`.
    pub what: String,
    /// For exits: the status and whether the supervisor caused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Per-node counters of process faults.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcCounters {
    /// SIGKILLs sent by the nemesis.
    pub kills: u64,
    /// Restarts after a kill.
    pub restarts: u64,
    /// SIGSTOPs sent.
    pub pauses: u64,
    /// SIGCONTs sent after a pause.
    pub resumes: u64,
    /// Exits the supervisor did not cause.
    pub unexpected_exits: u64,
    /// Every exit status observed.
    pub exits: Vec<ExitInfo>,
}
