//! The supervisor: the only code that starts or signals processes.
//!
//! Every node runs in its own process group (so a signal reaches anything it forks) with
//! `PR_SET_PDEATHSIG = SIGKILL`, so it dies with the harness even when the harness is
//! SIGKILLed. `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, so all
//! forks happen on one dedicated spawner thread that lives as long as the process. Each
//! child has a waiter thread that reaps it and reports its exit status; an exit the
//! supervisor did not cause is recorded as unexpected and the run goes on.
//!
//! Nothing a run starts outlives it ([`leftovers`]): the harness is a child subreaper,
//! every process group the run ever started is SIGKILLed at teardown (a group outlives
//! its leader), orphans carrying the run's mark are killed and reaped, and a watchdog
//! process kills the groups when the harness dies without a teardown (SIGKILL).
//!
//! A node admitted through a [`Gate`](crate::router::Gate) gets the run's secret in `SQUALL_TOKEN`, and the
//! gate learns each incarnation before its process exists, so the listener admits exactly
//! the process squall started last (see [`crate::router::gate`]).

pub mod leftovers;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::{mpsc, oneshot};

mod spec;

pub use spec::{ExitEvent, ExitInfo, NodeSpec, ProcCounters, ProcRecord};

#[derive(Debug)]
struct NodeProc {
    spec: NodeSpec,
    pid: Option<i32>,
    incarnation: u64,
    paused: bool,
    expect_exit: bool,
    /// Crashed for good: never restarted.
    crashed: bool,
    counters: ProcCounters,
}

type SpawnReply = oneshot::Sender<std::io::Result<std::process::Child>>;

/// Owns every node process of a run.
pub struct Supervisor {
    nodes: BTreeMap<String, NodeProc>,
    spawn_tx: std_mpsc::Sender<(Command, SpawnReply)>,
    exit_tx: mpsc::UnboundedSender<ExitEvent>,
    exit_rx: mpsc::UnboundedReceiver<ExitEvent>,
    records: Vec<ProcRecord>,
    start: std::time::Instant,
    /// Every process group a node was started in (a node's pid at each start).
    groups: BTreeSet<i32>,
    /// `SQUALL_SUPERVISOR=<value>`, inherited by everything the nodes start.
    mark: String,
    watchdog: Option<leftovers::Watchdog>,
    /// `--fs lossy`: each node's data directory is a lossyfs mount.
    fs: Option<lossyfs::fleet::Fleet>,
}

/// Distinguishes the supervisors of one process (`squall soak --jobs`).
static SUPERVISORS: AtomicU64 = AtomicU64::new(0);

/// Why a node could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The program does not exist or is not executable.
    #[error("cannot start node command '{program}': {source}")]
    Program {
        /// The program name.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Log file or data directory trouble.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn spawner_thread(rx: std_mpsc::Receiver<(Command, SpawnReply)>) {
    // This thread forks every child; it must outlive them all (PR_SET_PDEATHSIG).
    for (mut cmd, reply) in rx {
        let _ = reply.send(cmd.spawn());
    }
}

impl Supervisor {
    /// A supervisor with no processes yet.
    pub fn new(start: std::time::Instant) -> Supervisor {
        // Unbounded by design: the supervisor awaits each spawn's reply before it sends
        // another, so the channel never holds more than one request.
        let (spawn_tx, spawn_rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("squall-spawner".into())
            .spawn(move || spawner_thread(spawn_rx))
            .expect("spawn the spawner thread");
        // Unbounded by design: one event per process exit, and exits are bounded by the
        // starts the supervisor itself made.
        let (exit_tx, exit_rx) = mpsc::unbounded_channel();
        if let Err(e) = leftovers::become_subreaper() {
            tracing::warn!(error = %e, "cannot become a child subreaper; orphans may survive");
        }
        let mark = format!(
            "{}.{}",
            std::process::id(),
            SUPERVISORS.fetch_add(1, Ordering::Relaxed)
        );
        Supervisor {
            nodes: BTreeMap::new(),
            spawn_tx,
            exit_tx,
            exit_rx,
            records: Vec::new(),
            start,
            groups: BTreeSet::new(),
            mark,
            watchdog: leftovers::Watchdog::start(),
            fs: None,
        }
    }

    /// Puts every node's data directory on a lossyfs mount from now on.
    pub fn set_fs(&mut self, fleet: lossyfs::fleet::Fleet) {
        self.fs = Some(fleet);
    }

    /// The lossy file system's counters and its warning, once torn down.
    pub fn fs_report(&self) -> Option<(serde_json::Value, Option<String>)> {
        self.fs.as_ref().map(|f| (f.metrics(), f.warning()))
    }

    fn record(&mut self, node: &str, what: &str, detail: Option<String>) {
        let at_us = self.start.elapsed().as_micros() as u64;
        self.records.push(ProcRecord {
            at_us,
            node: node.into(),
            what: what.into(),
            detail,
        });
    }

    /// Starts a node for the first time.
    pub async fn spawn(&mut self, spec: NodeSpec) -> Result<(), SpawnError> {
        let id = spec.id.clone();
        self.nodes.insert(
            id.clone(),
            NodeProc {
                spec,
                pid: None,
                incarnation: 0,
                paused: false,
                expect_exit: false,
                crashed: false,
                counters: ProcCounters::default(),
            },
        );
        self.start_process(&id).await
    }

    async fn start_process(&mut self, id: &str) -> Result<(), SpawnError> {
        let node = self.nodes.get(id).expect("known node");
        let spec = node.spec.clone();
        let incarnation = node.incarnation;
        std::fs::create_dir_all(&spec.data_dir).map_err(|source| SpawnError::Io {
            path: spec.data_dir.display().to_string(),
            source,
        })?;
        if let Some(fs) = &mut self.fs {
            // What a kill left unsynced is dropped before the node starts again.
            fs.before_start(id, &spec.data_dir)
                .map_err(|e| SpawnError::Program {
                    program: "squall-lossyfs".into(),
                    source: std::io::Error::other(e.to_string()),
                })?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .map_err(|source| SpawnError::Io {
                path: spec.log_path.display().to_string(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| SpawnError::Io {
            path: spec.log_path.display().to_string(),
            source,
        })?;
        let mut cmd = Command::new(&spec.argv[0]);
        if let Some(dir) = &spec.clean_env_in {
            cmd.env_clear().current_dir(dir);
        }
        cmd.args(&spec.argv[1..])
            .envs(spec.env.iter().cloned())
            .env("SQUALL_INCARNATION", incarnation.to_string())
            .env("SQUALL_SUPERVISOR", &self.mark)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        if let Some((gate, as_node)) = &spec.admission {
            // Before the process exists, so its hello cannot arrive first.
            gate.spawned(as_node, incarnation);
            cmd.env("SQUALL_TOKEN", gate.token());
        }
        let parent = std::process::id();
        // SAFETY: only async-signal-safe libc calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // The harness may have died between fork and prctl.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let (tx, rx) = oneshot::channel();
        self.spawn_tx.send((cmd, tx)).expect("spawner thread alive");
        let child = rx
            .await
            .expect("spawner answers")
            .map_err(|source| SpawnError::Program {
                program: spec.argv[0].clone(),
                source,
            })?;
        let pid = child.id() as i32;
        // setpgid(0, 0) ran before exec: the group id is the pid.
        self.groups.insert(pid);
        if let Some(w) = &self.watchdog {
            w.watch(pid);
        }
        let exit_tx = self.exit_tx.clone();
        let node_id = id.to_string();
        std::thread::Builder::new()
            .name(format!("reap-{node_id}"))
            .spawn(move || {
                let mut child = child;
                let status = match child.wait() {
                    Ok(s) => ExitInfo {
                        code: s.code(),
                        signal: s.signal(),
                    },
                    Err(_) => ExitInfo {
                        code: None,
                        signal: None,
                    },
                };
                let _ = exit_tx.send(ExitEvent {
                    node: node_id,
                    incarnation,
                    status,
                });
            })
            .expect("spawn a reaper thread");
        let node = self.nodes.get_mut(id).expect("known node");
        node.pid = Some(pid);
        node.paused = false;
        node.expect_exit = false;
        self.record(
            id,
            "spawn",
            Some(format!("pid {pid}, incarnation {incarnation}")),
        );
        Ok(())
    }

    fn signal(&mut self, id: &str, sig: Signal) -> bool {
        let Some(pid) = self.nodes.get(id).and_then(|n| n.pid) else {
            return false;
        };
        killpg(Pid::from_raw(pid), sig).is_ok()
    }

    /// SIGKILLs a node (its whole process group). Returns false if it was not running.
    pub fn kill(&mut self, id: &str) -> bool {
        if let Some(n) = self.nodes.get_mut(id) {
            n.expect_exit = true;
        }
        let sent = self.signal(id, Signal::SIGKILL);
        if sent {
            if let Some(fs) = &mut self.fs {
                fs.killed(id);
            }
            self.nodes.get_mut(id).expect("known").counters.kills += 1;
            self.record(id, "kill", None);
        }
        sent
    }

    /// SIGKILLs a node for good: [`Supervisor::restart`] refuses it from now on.
    pub fn crash(&mut self, id: &str) -> bool {
        let killed = self.kill(id);
        if killed {
            self.nodes.get_mut(id).expect("known").crashed = true;
            self.record(id, "crash", None);
        }
        killed
    }

    /// Starts a killed node again with the same data dir (or a wiped one: amnesia).
    pub async fn restart(&mut self, id: &str, amnesia: bool) -> Result<bool, SpawnError> {
        let Some(node) = self.nodes.get_mut(id) else {
            return Ok(false);
        };
        if node.pid.is_some() || node.crashed {
            return Ok(false);
        }
        node.incarnation += 1;
        node.counters.restarts += 1;
        if amnesia {
            let dir = node.spec.data_dir.clone();
            match &mut self.fs {
                Some(fs) => fs.wipe(id).map_err(|e| SpawnError::Io {
                    path: dir.display().to_string(),
                    source: std::io::Error::other(e.to_string()),
                })?,
                None => {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
            self.record(id, "wipe", Some(dir.display().to_string()));
        }
        self.start_process(id).await?;
        Ok(true)
    }

    /// SIGSTOPs a node.
    pub fn pause(&mut self, id: &str) -> bool {
        let sent = self.signal(id, Signal::SIGSTOP);
        if sent {
            let n = self.nodes.get_mut(id).expect("known");
            n.paused = true;
            n.counters.pauses += 1;
            self.record(id, "pause", None);
        }
        sent
    }

    /// SIGCONTs a paused node.
    pub fn resume(&mut self, id: &str) -> bool {
        if !self.nodes.get(id).is_some_and(|n| n.paused) {
            return false;
        }
        let sent = self.signal(id, Signal::SIGCONT);
        let n = self.nodes.get_mut(id).expect("known");
        n.paused = false;
        if sent {
            n.counters.resumes += 1;
            self.record(id, "resume", None);
        }
        sent
    }

    /// Whether a node process is currently running (possibly paused).
    pub fn is_running(&self, id: &str) -> bool {
        self.nodes.get(id).is_some_and(|n| n.pid.is_some())
    }

    /// The pid of a node's current process, if it runs.
    pub fn pid(&self, id: &str) -> Option<i32> {
        self.nodes.get(id).and_then(|n| n.pid)
    }

    /// Nodes squall killed (not crashed for good) that have exited and not been restarted.
    pub fn killed(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.pid.is_none() && n.expect_exit && !n.crashed)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Nodes squall signalled to exit that have not been reaped yet.
    pub fn dying(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.pid.is_some() && n.expect_exit)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Nodes currently stopped by SIGSTOP.
    pub fn paused(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.paused)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Ids of nodes currently running.
    pub fn running(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.pid.is_some())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Waits for the next process exit. Returns whether the supervisor caused it.
    pub async fn next_exit(&mut self) -> Option<(ExitEvent, bool)> {
        let ev = self.exit_rx.recv().await?;
        Some(self.note_exit(ev))
    }

    /// Takes an exit if one is ready.
    pub fn try_next_exit(&mut self) -> Option<(ExitEvent, bool)> {
        let ev = self.exit_rx.try_recv().ok()?;
        Some(self.note_exit(ev))
    }

    fn note_exit(&mut self, ev: ExitEvent) -> (ExitEvent, bool) {
        let mut expected = true;
        if let Some(n) = self.nodes.get_mut(&ev.node) {
            if n.incarnation == ev.incarnation {
                n.pid = None;
                n.paused = false;
                expected = n.expect_exit;
                if !expected {
                    n.counters.unexpected_exits += 1;
                }
            }
            n.counters.exits.push(ev.status.clone());
        }
        let detail = format!(
            "{} ({})",
            ev.status,
            if expected {
                "caused by squall"
            } else {
                "unexpected"
            }
        );
        self.record(&ev.node, "exit", Some(detail));
        // Children the node left behind that have exited since are zombies of ours now.
        self.reap_orphans(false);
        (ev, expected)
    }

    /// Stops everything: SIGCONT the paused, SIGTERM every group the run started (a node
    /// that exited may have left children in its group), wait up to `grace`, SIGKILL
    /// every group, reap every node, then kill and reap the orphans that belong to the
    /// run (see [`leftovers`]).
    pub async fn teardown(&mut self, grace: Duration) {
        let ids: Vec<String> = self.running();
        for id in &ids {
            if let Some(n) = self.nodes.get_mut(id) {
                n.expect_exit = true;
            }
            if self.nodes[id].paused {
                self.signal(id, Signal::SIGCONT);
            }
            self.record(id, "term", None);
        }
        leftovers::signal_groups(&self.groups, Signal::SIGCONT);
        leftovers::signal_groups(&self.groups, Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        while !self.running().is_empty() {
            match tokio::time::timeout_at(deadline, self.exit_rx.recv()).await {
                Ok(Some(ev)) => {
                    self.note_exit(ev);
                }
                Ok(None) => break,
                Err(_) => break,
            }
        }
        leftovers::kill_groups(&self.groups);
        while !self.running().is_empty() {
            match tokio::time::timeout(Duration::from_secs(10), self.exit_rx.recv()).await {
                Ok(Some(ev)) => {
                    self.note_exit(ev);
                }
                _ => break,
            }
        }
        if let Some(fs) = &mut self.fs {
            // Nodes killed and never restarted lose what they never synced; the rest is
            // flushed, and every mount goes.
            fs.stop_all();
        }
        self.reap_orphans(true);
    }

    /// Kills (or, not `kill_them`, only reaps the exited) orphans that belong to this run.
    fn reap_orphans(&self, kill_them: bool) -> usize {
        let mut skip: Vec<i32> = self.nodes.values().filter_map(|n| n.pid).collect();
        skip.extend(self.watchdog.as_ref().map(leftovers::Watchdog::pid));
        let mark = format!("SQUALL_SUPERVISOR={}", self.mark);
        leftovers::reap_orphans(&self.groups, mark.as_bytes(), &skip, kill_them)
    }

    /// Per-node process-fault counters.
    pub fn counters(&self) -> BTreeMap<String, ProcCounters> {
        self.nodes
            .iter()
            .map(|(id, n)| (id.clone(), n.counters.clone()))
            .collect()
    }

    /// Everything the supervisor did and saw, in order.
    pub fn records(&self) -> &[ProcRecord] {
        &self.records
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Last line of defence: nothing outlives the supervisor.
        for n in self.nodes.values() {
            if let Some(pid) = n.pid {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGCONT);
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        leftovers::kill_groups(&self.groups);
        self.reap_orphans(true);
        // Dropping the watchdog closes its pipe; it kills the groups once more and exits.
    }
}
