//! The harness's handle on one node's helper process ([`crate::serve`]).
//!
//! The helper runs in its own process group (a Ctrl-C at the terminal reaches the harness,
//! which stops it in order) and without `PR_SET_PDEATHSIG`: when the harness dies however
//! it dies, the helper reads the end of its stdin, unmounts and flushes.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::core::{CrashFaults, CrashReport, MetaMode, Stats};

/// How long a command may take before the helper is taken for hung.
const REPLY_WAIT: Duration = Duration::from_secs(30);
/// How long the helper has to exit after its stdin closes.
const EXIT_WAIT: Duration = Duration::from_secs(15);

/// Trouble with a helper.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// It could not be started.
    #[error("cannot start {bin}: {source}")]
    Spawn {
        /// The helper binary.
        bin: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// It said no (mount failed, backing trouble).
    #[error("lossyfs at {mount}: {message}")]
    Refused {
        /// The mount point.
        mount: String,
        /// What it said.
        message: String,
    },
    /// It stopped answering.
    #[error("lossyfs at {mount}: the helper did not answer ({what})")]
    Gone {
        /// The mount point.
        mount: String,
        /// What was waited for.
        what: String,
    },
}

/// How every node's mount is served.
#[derive(Debug, Clone)]
pub struct HelperOpts {
    /// The `squall-lossyfs` binary.
    pub bin: PathBuf,
    /// When names become durable.
    pub meta: MetaMode,
    /// What survives a crash.
    pub faults: CrashFaults,
    /// The run seed.
    pub seed: u64,
}

/// One node's running helper.
pub struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    replies: mpsc::Receiver<String>,
    mountpoint: PathBuf,
}

impl Helper {
    /// Starts a helper serving `backing` at `mountpoint` and waits until it is mounted.
    pub fn start(
        opts: &HelperOpts,
        node: &str,
        backing: &Path,
        mountpoint: &Path,
    ) -> Result<Helper, HelperError> {
        let mut cmd = Command::new(&opts.bin);
        cmd.arg("--backing")
            .arg(backing)
            .arg("--mount")
            .arg(mountpoint)
            .args(["--seed", &opts.seed.to_string(), "--node", node]);
        if opts.meta == MetaMode::Immediate {
            cmd.args(["--meta", "immediate"]);
        }
        if opts.faults.torn_write {
            cmd.args(["--fault", "torn-write"]);
        }
        if opts.faults.reorder_unsynced {
            cmd.args(["--fault", "reorder-unsynced"]);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: setpgid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| HelperError::Spawn {
            bin: opts.bin.display().to_string(),
            source,
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let (tx, replies) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("lossyfs-{node}"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(|source| HelperError::Spawn {
                bin: opts.bin.display().to_string(),
                source,
            })?;
        let mut h = Helper {
            child,
            stdin,
            replies,
            mountpoint: mountpoint.to_path_buf(),
        };
        h.reply("the mount")?;
        Ok(h)
    }

    /// The mount point.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    fn reply(&mut self, what: &str) -> Result<Value, HelperError> {
        let gone = || HelperError::Gone {
            mount: self.mountpoint.display().to_string(),
            what: what.to_string(),
        };
        let line = self.replies.recv_timeout(REPLY_WAIT).map_err(|_| gone())?;
        let v: Value = serde_json::from_str(&line).map_err(|_| gone())?;
        if let Some(msg) = v.get("error").and_then(Value::as_str) {
            return Err(HelperError::Refused {
                mount: self.mountpoint.display().to_string(),
                message: msg.to_string(),
            });
        }
        Ok(v)
    }

    fn command(&mut self, cmd: &str) -> Result<Value, HelperError> {
        let sent = self
            .stdin
            .as_mut()
            .map(|s| writeln!(s, "{cmd}").and_then(|()| s.flush()));
        if !matches!(sent, Some(Ok(()))) {
            return Err(HelperError::Gone {
                mount: self.mountpoint.display().to_string(),
                what: cmd.to_string(),
            });
        }
        self.reply(cmd)
    }

    /// The node was killed: drop what it never synced. Call only once it is dead.
    pub fn crash(&mut self) -> Result<CrashReport, HelperError> {
        let v = self.command("crash")?;
        Ok(serde_json::from_value(v["crash"].clone()).unwrap_or_default())
    }

    /// Amnesia: empty the node's durable state.
    pub fn wipe(&mut self) -> Result<(), HelperError> {
        self.command("wipe").map(|_| ())
    }

    /// Counters so far.
    pub fn stats(&mut self) -> Result<Stats, HelperError> {
        let v = self.command("stats")?;
        Ok(serde_json::from_value(v["stats"].clone()).unwrap_or_default())
    }

    /// A clean stop: flush, unmount, wait for the helper to exit.
    pub fn stop(mut self) -> Result<Stats, HelperError> {
        let v = self.command("stop");
        self.wait_exit();
        let v = v?;
        Ok(serde_json::from_value(v["stats"].clone()).unwrap_or_default())
    }

    fn wait_exit(&mut self) {
        self.stdin.take();
        let deadline = Instant::now() + EXIT_WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = crate::mount::unmount_path(&self.mountpoint);
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            self.wait_exit();
        }
    }
}

/// Finds `squall-lossyfs`: `SQUALL_LOSSYFS_BIN`, next to the running binary, or one level
/// up (test binaries live in `target/<profile>/deps`).
pub fn find_bin() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("SQUALL_LOSSYFS_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut candidates = vec![exe.with_file_name("squall-lossyfs")];
    if let Some(parent) = exe.parent().and_then(|p| p.parent()) {
        candidates.push(parent.join("squall-lossyfs"));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        format!(
            "cannot find squall-lossyfs next to {}; build it with `cargo build -p lossyfs` or set SQUALL_LOSSYFS_BIN",
            exe.display()
        )
    })
}
