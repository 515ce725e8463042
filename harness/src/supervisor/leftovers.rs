//! Nothing a run started outlives it: process groups, a child subreaper, and a watchdog.
//!
//! A node may fork. Its children share its process group, so signalling the group reaches
//! them, even after the node (the group leader) is gone: a group lives while any member
//! does. The harness is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so a grandchild whose
//! node exited becomes the harness's own child instead of init's; at teardown every group
//! the run ever started is SIGKILLed and every orphan that carries the run's mark
//! (`SQUALL_SUPERVISOR` in its environment, inherited from the node) is killed and reaped,
//! which also catches a grandchild that left the group with `setsid`.
//!
//! When the harness itself is SIGKILLed nothing of it runs. Nodes die by
//! `PR_SET_PDEATHSIG`; their descendants are killed by the [`Watchdog`], a process forked
//! at supervisor start that only reads process-group ids from a pipe and, when the pipe
//! reaches end of file (the harness exited, however it exited), SIGKILLs every group it
//! was told about. The one thing that escapes it is a descendant that called `setsid`
//! (or `setpgid`) *and* outlived a SIGKILLed harness: it is in no group the watchdog
//! knows, and init, not the harness, inherits it.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// How many process groups the watchdog remembers; when full it forgets groups that
/// have no member left.
const WATCHDOG_GROUPS_MAX: usize = 4096;

/// The watchdog's process name (`comm`, at most 15 bytes).
pub const WATCHDOG_NAME: &std::ffi::CStr = c"squall-watchdog";

/// Makes this process a child subreaper: orphaned descendants are reparented to it.
/// Idempotent; a failure (an old kernel) only weakens cleanup, so it is returned, not fatal.
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A forked process that SIGKILLs the run's process groups when the harness goes away.
#[derive(Debug)]
pub struct Watchdog {
    pid: i32,
    tx: Option<OwnedFd>,
}

impl Watchdog {
    /// Forks the watchdog. `None` if fork or pipe fails (cleanup then relies on teardown).
    pub fn start() -> Option<Watchdog> {
        let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        let rx_fd = rx.as_raw_fd();
        let tx_fd = tx.as_raw_fd();
        // SAFETY: the child runs only async-signal-safe calls (signal, dup2, close, read,
        // kill, _exit) on a stack buffer; it never returns into Rust code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return None;
        }
        if pid == 0 {
            unsafe { watchdog_main(rx_fd, tx_fd) }
        }
        drop(rx);
        Some(Watchdog { pid, tx: Some(tx) })
    }

    /// The watchdog's pid (a child of this process that [`Drop`] reaps).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Tells the watchdog about a new process group.
    pub fn watch(&self, pgid: i32) {
        if let Some(tx) = &self.tx {
            let bytes = pgid.to_ne_bytes();
            // A 4-byte write to a pipe is atomic; a full pipe (the watchdog is gone) must
            // not block the run, and errors only weaken cleanup.
            // SAFETY: writing 4 bytes from a live buffer to an owned fd.
            let _ = unsafe { libc::write(tx.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // End of file: the watchdog kills what is left of the groups, then exits.
        self.tx = None;
        let _ = nix::sys::wait::waitpid(Pid::from_raw(self.pid), None);
    }
}

/// The watchdog's whole life. Async-signal-safe only: it runs in a fork of a
/// multi-threaded process.
unsafe fn watchdog_main(rx: i32, tx: i32) -> ! {
    // Named, so that `ps` (and tests counting a run's children) can tell it from nodes.
    libc::prctl(libc::PR_SET_NAME, WATCHDOG_NAME.as_ptr(), 0, 0, 0);
    // Ctrl-C reaches the whole foreground group; the harness decides what a signal means.
    libc::signal(libc::SIGINT, libc::SIG_IGN);
    libc::signal(libc::SIGTERM, libc::SIG_IGN);
    libc::signal(libc::SIGHUP, libc::SIG_IGN);
    libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    // Keep only the read end: other descriptors (the listener, results files, the write
    // end of this very pipe) must not be held open by the watchdog.
    if libc::dup2(rx, 0) < 0 {
        libc::_exit(1);
    }
    let _ = tx;
    if libc::syscall(libc::SYS_close_range, 1u32, u32::MAX, 0u32) != 0 {
        for fd in 1..65_536 {
            libc::close(fd);
        }
    }
    let mut groups = [0i32; WATCHDOG_GROUPS_MAX];
    let mut len = 0usize;
    let mut buf = [0u8; 4];
    let mut have = 0usize;
    loop {
        let n = libc::read(0, buf.as_mut_ptr().add(have).cast(), 4 - have);
        if n < 0 && *libc::__errno_location() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        have += n as usize;
        if have < 4 {
            continue;
        }
        have = 0;
        let pgid = i32::from_ne_bytes(buf);
        if len == WATCHDOG_GROUPS_MAX {
            // Forget groups with no member left.
            let mut kept = 0;
            for i in 0..len {
                if libc::kill(-groups[i], 0) == 0 {
                    groups[kept] = groups[i];
                    kept += 1;
                }
            }
            len = kept;
        }
        if len < WATCHDOG_GROUPS_MAX {
            groups[len] = pgid;
            len += 1;
        }
    }
    for &g in &groups[..len] {
        if g > 1 {
            libc::kill(-g, libc::SIGCONT);
            libc::kill(-g, libc::SIGKILL);
        }
    }
    libc::_exit(0)
}

/// SIGKILLs every group in `groups` (a group with no member left is skipped by the
/// kernel: ESRCH).
pub fn kill_groups(groups: &BTreeSet<i32>) {
    for &g in groups {
        let _ = killpg(Pid::from_raw(g), Signal::SIGCONT);
        let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
    }
}

/// Sends `sig` to every group in `groups`.
pub fn signal_groups(groups: &BTreeSet<i32>, sig: Signal) {
    for &g in groups {
        let _ = killpg(Pid::from_raw(g), sig);
    }
}

/// This process's children (every thread's), from `/proc`.
fn children() -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The process group of `pid`, from `/proc/<pid>/stat` (works for zombies too).
fn pgrp_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// Whether `pid`'s environment holds `mark` (`NAME=value`). Unreadable (a zombie) is no.
fn carries(pid: i32, mark: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|kv| kv == mark))
        .unwrap_or(false)
}

/// Kills (when `kill_them`) and reaps this process's children that belong to the run:
/// in one of its `groups`, or carrying its `mark`. `skip` are children owned by someone
/// else here (node processes a waiter thread reaps, the watchdog). Returns how many
/// belonging children were found.
pub fn reap_orphans(groups: &BTreeSet<i32>, mark: &[u8], skip: &[i32], kill_them: bool) -> usize {
    let mut found = 0;
    for pid in children() {
        if skip.contains(&pid) {
            continue;
        }
        let ours = pgrp_of(pid).is_some_and(|g| groups.contains(&g)) || carries(pid, mark);
        if !ours {
            continue;
        }
        found += 1;
        let flags = if kill_them {
            let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            // SIGKILLed: it is gone in moments, and waiting keeps its mark readable
            // until the end (a zombie's environment cannot be read).
            None
        } else {
            Some(nix::sys::wait::WaitPidFlag::WNOHANG)
        };
        let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), flags);
    }
    found
}
