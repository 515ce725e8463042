//! Where the CPU goes during a step: this process (router, client workers, history
//! recorder) against its child processes (the nodes), from `/proc/<pid>/stat`.
//!
//! A task samples every [`SAMPLE_MS`] while the step runs. A child's CPU is the most it
//! was seen to have used (a process's counters only grow, and vanish when it exits);
//! this process's is the growth from the first sample to the last one at which a child
//! was alive, so the checking that follows the run is not counted.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Sampling period.
pub const SAMPLE_MS: u64 = 200;

/// CPU used while nodes ran, in cores (CPU seconds per wall second).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuUse {
    /// Wall seconds between the first sample and the last one with a node alive.
    pub seconds: f64,
    /// This process: router, clients, recorder.
    pub harness_cores: f64,
    /// Every node process together.
    pub nodes_cores: f64,
    /// The busiest node process.
    pub busiest_node_cores: f64,
}

/// `(ppid, utime + stime in ticks)` from the text of a `/proc/<pid>/stat`.
fn parse_stat(stat: &str) -> Option<(u32, u64)> {
    // The command name (field 2) may hold spaces and parentheses: fields resume after
    // the last ')'. From there: state, ppid, ..., utime is the 12th, stime the 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system and has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU ticks of this process, and of each child process now alive.
fn sample(me: u32) -> (u64, BTreeMap<u32, u64>) {
    let own = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat(&s))
        .map_or(0, |(_, t)| t);
    let mut children = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            if let Some((ppid, ticks)) = parse_stat(&stat) {
                if ppid == me {
                    children.insert(pid, ticks);
                }
            }
        }
    }
    (own, children)
}

/// A running sampler.
pub struct Sampler {
    stop: watch::Sender<bool>,
    handle: JoinHandle<CpuUse>,
}

impl Sampler {
    /// Starts sampling.
    pub fn start() -> Sampler {
        let (stop, mut stopped) = watch::channel(false);
        let handle = tokio::spawn(async move {
            let me = std::process::id();
            let start = Instant::now();
            let (own0, _) = sample(me);
            let mut own_last = own0;
            let mut last_alive = start;
            let mut most: BTreeMap<u32, u64> = BTreeMap::new();
            let mut tick = tokio::time::interval(Duration::from_millis(SAMPLE_MS));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let (own, children) = sample(me);
                if children.is_empty() {
                    continue;
                }
                own_last = own;
                last_alive = Instant::now();
                for (pid, t) in children {
                    let m = most.entry(pid).or_insert(0);
                    *m = (*m).max(t);
                }
            }
            let hz = ticks_per_second();
            let seconds = last_alive.duration_since(start).as_secs_f64().max(1e-3);
            let cores = |ticks: u64| ticks as f64 / hz / seconds;
            CpuUse {
                seconds,
                harness_cores: cores(own_last.saturating_sub(own0)),
                nodes_cores: cores(most.values().sum()),
                busiest_node_cores: cores(most.values().copied().max().unwrap_or(0)),
            }
        });
        Sampler { stop, handle }
    }

    /// Stops sampling and returns what was used.
    pub async fn finish(self) -> CpuUse {
        let _ = self.stop.send(true);
        self.handle.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_a_command_name_with_spaces_and_parens() {
        let stat =
            "4242 (squall node (x)) S 17 4242 4242 0 -1 4194560 100 0 0 0 35 7 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat(stat), Some((17, 42)));
    }
}
