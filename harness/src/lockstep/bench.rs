//! How many seeds per minute lockstep runs get through, in wall time and per core.
//!
//! [`bench`] runs one configuration over consecutive seeds, `jobs` runs at a time, each
//! with the schedule [`expand`](crate::nemesis::expand()) draws from its seed. It measures
//! wall time and the CPU time of the harness and of every node process it started
//! (`getrusage` of the process and of its reaped children), so "per core" is honest
//! whatever the machine's load: seeds per CPU-minute.
//!
//! [`pingpong`] is the floor a step is measured against: a line of a step's size sent
//! over a loopback TCP connection and one line back, blocking reads on both sides, the
//! peer on a thread of this process. A lockstep step is such a round trip plus what the
//! harness and the node do with the lines.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::RunConfig;
use crate::nemesis::{expand, NemesisOpts};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOpts {
    /// The run configuration; its seed is replaced by each seed in turn.
    pub base: RunConfig,
    /// The nemesis options every seed's schedule is expanded from.
    pub nemesis: NemesisOpts,
    /// The first seed.
    pub first_seed: u64,
    /// How many seeds.
    pub seeds: u64,
    /// Runs at a time.
    pub jobs: usize,
    /// Keep each run's directory (otherwise it is removed once read).
    pub keep: bool,
}

/// The measurement.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Runs completed.
    pub runs: u64,
    /// Runs at a time.
    pub jobs: usize,
    /// Wall-clock seconds for all runs.
    pub wall_s: f64,
    /// CPU seconds of the harness and all node processes.
    pub cpu_s: f64,
    /// Seeds per wall-clock minute.
    pub seeds_per_min: f64,
    /// Seeds per wall-clock minute divided by the cores used (`min(jobs, cores)`).
    pub seeds_per_min_per_core_wall: f64,
    /// Seeds per CPU-minute: what one fully used core gets through.
    pub seeds_per_cpu_min: f64,
    /// Verdicts by kind.
    pub verdicts: BTreeMap<String, u64>,
    /// Steps delivered over all runs.
    pub steps: u64,
    /// Steps per CPU-second.
    pub steps_per_cpu_s: f64,
    /// Client ops recorded over all runs.
    pub ops: u64,
    /// Different trace hashes seen (as many as runs, unless seeds collide).
    pub distinct_traces: usize,
    /// Seeds whose verdict was not valid.
    pub not_valid: Vec<u64>,
}

/// CPU seconds used by this process and its reaped children so far.
pub fn cpu_seconds() -> f64 {
    let mut total = 0.0;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage writes one rusage struct, which we own.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut usage) } == 0 {
            for t in [usage.ru_utime, usage.ru_stime] {
                total += t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            }
        }
    }
    total
}

/// Runs `opts.seeds` lockstep runs and measures them.
pub async fn bench(opts: BenchOpts) -> anyhow::Result<BenchReport> {
    opts.nemesis
        .validate()
        .map_err(|e| crate::UsageError(e.to_string()))?;
    let jobs = opts.jobs.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (_tx, rx) = watch::channel(false);
    let cpu0 = cpu_seconds();
    let wall0 = Instant::now();
    let mut set = JoinSet::new();
    let mut next = 0u64;
    let mut report = BenchReport {
        runs: 0,
        jobs,
        wall_s: 0.0,
        cpu_s: 0.0,
        seeds_per_min: 0.0,
        seeds_per_min_per_core_wall: 0.0,
        seeds_per_cpu_min: 0.0,
        verdicts: BTreeMap::new(),
        steps: 0,
        steps_per_cpu_s: 0.0,
        ops: 0,
        distinct_traces: 0,
        not_valid: Vec::new(),
    };
    let mut hashes = BTreeSet::new();
    loop {
        while set.len() < jobs && next < opts.seeds {
            let seed = opts.first_seed.wrapping_add(next);
            next += 1;
            let mut cfg = opts.base.clone();
            cfg.seed = seed;
            let schedule = expand(seed, &opts.nemesis, &cfg.node_ids(), cfg.time_limit_ms);
            schedule
                .validate()
                .map_err(|e| anyhow::anyhow!("seed {seed}: expanded schedule: {e}"))?;
            let rx = rx.clone();
            set.spawn(async move { (seed, super::run_lockstep(cfg, schedule, rx).await) });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (seed, outcome) = joined?;
        let outcome = outcome?;
        let verdict: serde_json::Value =
            crate::results::read_json(&outcome.dir.join("verdict.json")).unwrap_or_default();
        let metrics: serde_json::Value =
            crate::results::read_json(&outcome.dir.join("metrics.json")).unwrap_or_default();
        let kind = verdict["verdict"].as_str().unwrap_or("?").to_string();
        if kind != "valid" {
            report.not_valid.push(seed);
        }
        *report.verdicts.entry(kind).or_default() += 1;
        hashes.insert(verdict["trace_hash"].as_str().unwrap_or("").to_string());
        report.steps += metrics["steps"]["total"].as_u64().unwrap_or(0);
        report.ops += metrics["ops"]["total"].as_u64().unwrap_or(0);
        report.runs += 1;
        if !opts.keep {
            let _ = std::fs::remove_dir_all(&outcome.dir);
        }
    }
    report.not_valid.sort_unstable();
    report.distinct_traces = hashes.len();
    report.wall_s = wall0.elapsed().as_secs_f64();
    report.cpu_s = cpu_seconds() - cpu0;
    let runs = report.runs as f64;
    report.seeds_per_min = runs / (report.wall_s / 60.0);
    report.seeds_per_min_per_core_wall = report.seeds_per_min / jobs.min(cores) as f64;
    if report.cpu_s > 0.0 {
        report.seeds_per_cpu_min = runs / (report.cpu_s / 60.0);
        report.steps_per_cpu_s = report.steps as f64 / report.cpu_s;
    }
    Ok(report)
}

/// A loopback ping-pong: round trips per wall second and per CPU second.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PingPong {
    /// Round trips made.
    pub round_trips: u64,
    /// Round trips per wall-clock second.
    pub per_wall_s: f64,
    /// Round trips per CPU second (both sides).
    pub per_cpu_s: f64,
}

/// Sends `round_trips` lines of `line_bytes` (at most 64 KiB) to a peer thread over
/// loopback TCP and reads each echo before the next, as the lockstep loop does with a
/// node.
pub fn pingpong(round_trips: u64, line_bytes: usize) -> std::io::Result<PingPong> {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let peer = std::thread::spawn(move || -> std::io::Result<()> {
        let (stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut out = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            out.write_all(&line)?;
        }
    });
    let stream = std::net::TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut ping = vec![b'x'; line_bytes.clamp(1, 65_536)];
    *ping.last_mut().expect("not empty") = b'\n';
    let mut pong = Vec::with_capacity(ping.len());
    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    for _ in 0..round_trips {
        out.write_all(&ping)?;
        pong.clear();
        reader.read_until(b'\n', &mut pong)?;
    }
    let (wall, cpu) = (wall0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    drop(out);
    drop(reader);
    peer.join()
        .map_err(|_| std::io::Error::other("the ping-pong peer panicked"))??;
    let rate = |s: f64| if s > 0.0 { round_trips as f64 / s } else { 0.0 };
    Ok(PingPong {
        round_trips,
        per_wall_s: rate(wall),
        per_cpu_s: rate(cpu),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn pingpong_makes_every_round_trip() {
        let p = super::pingpong(200, 300).expect("loopback ping-pong");
        assert_eq!(p.round_trips, 200);
        assert!(p.per_wall_s > 0.0);
    }
}
