//! `squall bench rounds`: how many Paxos rounds a decision takes on real node processes,
//! as the number of contending proposers, the backoff strategy and message loss vary.
//!
//! Each cell of the grid (nodes × proposers k × backoff × drop rate) is one ordinary
//! `squall run` of the write-once workload with `--algorithm paxos --contention k`, built
//! and checked by the same [`RunBuilder`] as `squall run`, with no faults but, for a
//! drop rate above 0, one `link_faults` drop event on every node-to-node link for the whole
//! run. From the run directory the bench reads:
//!
//! - `reports.jsonl`: the acceptors' `accepted` reports give the ground truth
//!   ([`workloads::consensus::ground_truth_rounds`]): the round in which a majority
//!   first accepted one value, and when; next to it the rounds the winning proposer counted;
//! - `history.jsonl`: the first `propose` invoke of each instance, from which decision
//!   latency is measured (until chosen, and until the first proposer learned it, both at
//!   the nodes' own `mono_ns` stamps of their reports);
//! - `metrics.json`: node-to-node messages by type, per decision.
//!
//! Latency is also given in round trips: a routed ping-pong between two node processes
//! with idle gaps ([`RTT_BASIS`]), calibrated before the grid next to the direct and
//! back-to-back ones. One fsync where node data lives is measured too: three sit on a
//! decision's path, and `--data-dir` can move node data to a tmpfs.
//!
//! **Concurrency of a group.** The write-once workload hands the k proposals of a group
//! to consecutive client ops; clients are open-loop at `--rate` over all clients. The rate
//! defaults far above what a cell serves, so every client is behind its schedule and issues
//! its next op as soon as the previous one completes: the k proposals of a group start
//! within the time it takes the previous decision to reach the k clients, which is what
//! makes them contend. `late_ops` in the JSON counts ops issued behind schedule.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Serialize;

mod analyze;
mod calibrate;
pub mod plot;

use analyze::hist_us;
pub use analyze::{analyze_run, RunStats};
pub use calibrate::IDLE_GAP;
use calibrate::{calibrate, calibrate_fsync};

use crate::config::{read_plan_file, RunBuilder};
use crate::metrics::loadavg;
use crate::text::parse_duration_ms;
use crate::{results, run, UsageError};

/// `squall bench rounds` options.
#[derive(Args, Debug, Clone)]
pub struct BenchRoundsArgs {
    /// Cluster sizes (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "3,5")]
    pub nodes: Vec<usize>,
    /// Contending proposers per instance, k (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,5,8")]
    pub proposers: Vec<u64>,
    /// Backoff strategies: exp-random, fixed, none (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "exp-random,fixed,none")]
    pub backoff: Vec<String>,
    /// Drop probabilities of node-to-node messages for the whole run (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0,0.05")]
    pub drop: Vec<f64>,
    /// How long clients issue ops in each cell.
    #[arg(long, default_value = "5s", value_parser = parse_duration_ms)]
    pub time_limit: u64,
    /// Offered ops/s per cell over all clients (open loop; the default saturates, so a
    /// group's proposals start together; see the module docs).
    #[arg(long, default_value_t = 5000.0)]
    pub rate: f64,
    /// Client workers per cell [default: k].
    #[arg(long)]
    pub clients: Option<usize>,
    /// Instances per cell (proposals wrap around to decided ones after the last).
    #[arg(long, default_value_t = 1000)]
    pub instances: u64,
    /// Client op timeout.
    #[arg(long, default_value = "2s", value_parser = parse_duration_ms)]
    pub op_timeout: u64,
    /// Quiet window after each cell in which ops must complete.
    #[arg(long, default_value = "2s", value_parser = parse_duration_ms)]
    pub recovery_time: u64,
    /// Extra `--param key=value` for paxos in every cell (repeatable).
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Seed of the first cell (each cell adds its index).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Round trips in the loopback calibration.
    #[arg(long, default_value_t = 5_000)]
    pub pings: u64,
    /// Put node data directories here instead of in each cell's run directory (see
    /// `squall run --data-dir`); e.g. /dev/shm to take the disk's fsync out.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where the bench directory is created.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// Also write the cells as a JSON array here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// One calibration ping-pong between two node processes.
#[derive(Debug, Clone, Serialize)]
pub struct RoundTrip {
    /// `direct-busy`, `routed-busy` or `routed-idle`.
    pub name: String,
    /// Through a router, as node messages go in a run.
    pub routed: bool,
    /// Idle time between round trips (0: back to back, so the CPUs never sleep).
    pub gap_ms: f64,
    /// Round trips measured.
    pub samples: usize,
    /// Median (µs).
    pub p50_us: f64,
    /// 99th percentile (µs).
    pub p99_us: f64,
}

/// What one durable write costs where the nodes keep their data: 64 bytes appended and
/// `fdatasync`ed, as the node's log does.
#[derive(Debug, Clone, Serialize)]
pub struct SyncCost {
    /// The directory measured.
    pub dir: PathBuf,
    /// Syncs measured.
    pub samples: usize,
    /// Median (µs).
    pub p50_us: f64,
    /// 99th percentile (µs).
    pub p99_us: f64,
}

/// The loopback round trips latencies are expressed in.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// The round trip the `*_rtt` columns divide by ([`RTT_BASIS`]).
    pub basis: String,
    /// Its median (µs).
    pub rtt_p50_us: f64,
    /// Its 99th percentile (µs).
    pub rtt_p99_us: f64,
    /// Every ping-pong measured: direct and routed, back to back and with idle gaps.
    pub round_trips: Vec<RoundTrip>,
    /// One fsync where node data lives: Paxos has three on a decision's critical path
    /// (the proposer's ballot, the acceptors' promise and acceptance).
    pub fsync: SyncCost,
    /// `/proc/loadavg` before the calibration.
    pub loadavg_before: String,
    /// `/proc/loadavg` after the grid.
    pub loadavg_after: String,
    /// CPUs available.
    pub cpus: usize,
}

/// One cell of the grid.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// Cluster size.
    pub nodes: usize,
    /// Contending proposers per instance.
    pub proposers: u64,
    /// Backoff strategy.
    pub backoff: String,
    /// Drop probability on node-to-node links.
    pub drop: f64,
    /// Client workers.
    pub clients: usize,
    /// Offered ops/s.
    pub rate: f64,
    /// Instances chosen (ground truth), i.e. samples.
    pub decisions: u64,
    /// Instances proposed to whose value no majority accepted.
    pub undecided: u64,
    /// Ground-truth rounds to decision: mean.
    pub rounds_mean: f64,
    /// p50.
    pub rounds_p50: u64,
    /// p99.
    pub rounds_p99: u64,
    /// max.
    pub rounds_max: u64,
    /// Rounds the winning proposer counted: mean.
    pub winner_rounds_mean: f64,
    /// p50.
    pub winner_rounds_p50: u64,
    /// p99.
    pub winner_rounds_p99: u64,
    /// max.
    pub winner_rounds_max: u64,
    /// Decisions whose winner counted a different number of rounds than the ground truth.
    pub winner_rounds_differ: u64,
    /// Distinct ballots started per decision.
    pub ballots_per_decision: f64,
    /// First propose invoke until a proposer had durably started its first ballot (the
    /// node's stamp): the hop to the proposer and its fsync, p50 (µs).
    pub ballot_p50_us: f64,
    /// First propose invoke until chosen: p50 (µs).
    pub latency_p50_us: f64,
    /// p99 (µs).
    pub latency_p99_us: f64,
    /// p50 in calibrated round trips.
    pub latency_p50_rtt: f64,
    /// p99 in calibrated round trips.
    pub latency_p99_rtt: f64,
    /// First propose invoke until the first proposer learns it: p50 (µs).
    pub learned_p50_us: f64,
    /// p99 (µs).
    pub learned_p99_us: f64,
    /// p50 in round trips.
    pub learned_p50_rtt: f64,
    /// p99 in round trips.
    pub learned_p99_rtt: f64,
    /// Node-to-node messages of the consensus protocol per decision: every type but
    /// [`READ_TRAFFIC`], which reads cause, not decisions.
    pub msgs_per_decision: f64,
    /// Node-to-node messages per decision, by type (read traffic included).
    pub msgs_by_type: BTreeMap<String, f64>,
    /// Client ops, and how many were issued behind their open-loop schedule.
    pub ops: u64,
    /// Ops issued late.
    pub late_ops: u64,
    /// The run's verdict.
    pub verdict: String,
    /// The run directory.
    pub run_dir: PathBuf,
}

/// The whole output: calibration and cells.
#[derive(Debug, Clone, Serialize)]
pub struct Output {
    /// Round trip calibration and CPU load.
    pub calibration: Calibration,
    /// The cells.
    pub cells: Vec<Cell>,
}

/// Message types a node sends to answer a client `read` of a key it has not learned
/// (every final read of an instance never proposed to is one broadcast).
pub const READ_TRAFFIC: &[&str] = &["learn"];

/// The calibration the `*_rtt` columns are in.
pub const RTT_BASIS: &str = "routed-idle";

/// Nearest-rank percentile of sorted values.
fn rank(xs: &[u64], pct: f64) -> u64 {
    if xs.is_empty() {
        return 0;
    }
    let i = ((xs.len() as f64 * pct / 100.0).ceil() as usize).clamp(1, xs.len()) - 1;
    xs[i]
}

fn mean(xs: &[u64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64
}

/// Runs one cell and returns its row.
async fn run_cell(
    args: &BenchRoundsArgs,
    bench_dir: &Path,
    idx: usize,
    (nodes, k, backoff, drop): (usize, u64, &str, f64),
    rtt_us: f64,
) -> anyhow::Result<Cell> {
    let clients = args.clients.unwrap_or(k as usize).max(k as usize);
    let seed = args.seed + idx as u64;
    let runs = bench_dir.join("runs");
    // Rounds are measured on fresh instances raced for by k proposers: no late
    // proposals to decided ones.
    let mut run = RunBuilder {
        workload: "write-once".into(),
        algorithm: Some("paxos".into()),
        nodes,
        clients,
        contention: k,
        late_percent: 0,
        rate: args.rate,
        instances: Some(args.instances),
        op_timeout_ms: args.op_timeout,
        seed: Some(seed),
        results_dir: runs,
        data_dir: args.data_dir.clone(),
        params: std::iter::once(format!("backoff={backoff}"))
            .chain(args.params.iter().cloned())
            .collect(),
        ..RunBuilder::default()
    };
    if drop > 0.0 {
        let ids: Vec<String> = (1..=nodes).map(|i| format!("n{i}")).collect();
        let schedule = serde_json::json!({
            "seed": seed,
            "nodes": ids,
            "time_limit_ms": args.time_limit,
            "recovery_ms": args.recovery_time,
            "events": [{"id": 1, "at_ms": 0, "action": "link_faults", "links": "all", "drop": drop}],
        });
        let path = bench_dir.join(format!("schedule-{idx}.json"));
        results::write_json(&path, &schedule)?;
        run.plan = Some(read_plan_file(path)?);
    } else {
        run.nemesis.kinds.clear();
        run.time_limit_ms = Some(args.time_limit);
        run.recovery_ms = Some(args.recovery_time);
    }
    let cfg = run.build()?;
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let outcome = run::run_any(cfg, rx).await?;
    let s = analyze_run(&outcome.dir, nodes)?;

    let mut rounds = s.rounds.clone();
    rounds.sort_unstable();
    let mut winners = s.winner_rounds.clone();
    winners.sort_unstable();
    let decisions = rounds.len() as u64;
    let per = |x: u64| {
        if decisions == 0 {
            0.0
        } else {
            x as f64 / decisions as f64
        }
    };
    let (lat50, lat99) = hist_us(&s.chosen_ns);
    let (ballot50, _) = hist_us(&s.ballot_ns);
    let (learn50, learn99) = hist_us(&s.learned_ns);
    let rtt = |us: f64| if rtt_us > 0.0 { us / rtt_us } else { 0.0 };
    let total_msgs: u64 = s
        .msgs
        .iter()
        .filter(|(t, _)| !READ_TRAFFIC.contains(&t.as_str()))
        .map(|(_, n)| n)
        .sum();
    Ok(Cell {
        nodes,
        proposers: k,
        backoff: backoff.to_string(),
        drop,
        clients,
        rate: args.rate,
        decisions,
        undecided: s.undecided,
        rounds_mean: mean(&rounds),
        rounds_p50: rank(&rounds, 50.0),
        rounds_p99: rank(&rounds, 99.0),
        rounds_max: rounds.last().copied().unwrap_or(0),
        winner_rounds_mean: mean(&winners),
        winner_rounds_p50: rank(&winners, 50.0),
        winner_rounds_p99: rank(&winners, 99.0),
        winner_rounds_max: winners.last().copied().unwrap_or(0),
        winner_rounds_differ: s.differ,
        ballots_per_decision: per(s.ballots),
        ballot_p50_us: ballot50,
        latency_p50_us: lat50,
        latency_p99_us: lat99,
        latency_p50_rtt: rtt(lat50),
        latency_p99_rtt: rtt(lat99),
        learned_p50_us: learn50,
        learned_p99_us: learn99,
        learned_p50_rtt: rtt(learn50),
        learned_p99_rtt: rtt(learn99),
        msgs_per_decision: per(total_msgs),
        msgs_by_type: s.msgs.iter().map(|(t, &n)| (t.clone(), per(n))).collect(),
        ops: s.ops,
        late_ops: s.late_ops,
        verdict: format!("{:?}", outcome.verdict),
        run_dir: outcome.dir,
    })
}

fn check_args(args: &BenchRoundsArgs) -> Result<(), UsageError> {
    let fail = |m: String| Err(UsageError(m));
    if args.nodes.is_empty() || args.proposers.is_empty() || args.backoff.is_empty() {
        return fail("--nodes, --proposers and --backoff need at least one value each".into());
    }
    for b in &args.backoff {
        if !["exp-random", "fixed", "none"].contains(&b.as_str()) {
            return fail(format!(
                "--backoff '{b}' is not one of exp-random, fixed, none"
            ));
        }
    }
    for &d in &args.drop {
        if !(0.0..1.0).contains(&d) {
            return fail(format!("--drop {d} is not a probability below 1"));
        }
    }
    if args.proposers.contains(&0) {
        return fail("--proposers must be at least 1".into());
    }
    Ok(())
}

/// The markdown table of the cells.
pub fn table(cells: &[Cell]) -> String {
    let mut out = String::new();
    out.push_str("| N | k | backoff | drop | decisions | rounds mean | p50 | p99 | max | winner counted mean/p99 | ballots/decision | chosen p50/p99 µs | chosen p50/p99 RTT | learned p50/p99 RTT | msgs/decision |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for c in cells {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.2} | {} | {} | {} | {:.2}/{} | {:.2} | {:.0}/{:.0} | {:.1}/{:.1} | {:.1}/{:.1} | {:.1} |\n",
            c.nodes,
            c.proposers,
            c.backoff,
            c.drop,
            c.decisions,
            c.rounds_mean,
            c.rounds_p50,
            c.rounds_p99,
            c.rounds_max,
            c.winner_rounds_mean,
            c.winner_rounds_p99,
            c.ballots_per_decision,
            c.latency_p50_us,
            c.latency_p99_us,
            c.latency_p50_rtt,
            c.latency_p99_rtt,
            c.learned_p50_rtt,
            c.learned_p99_rtt,
            c.msgs_per_decision,
        ));
    }
    out
}

/// Runs the grid, prints the table, writes JSON and the plot.
pub async fn bench(args: &BenchRoundsArgs) -> anyhow::Result<u8> {
    check_args(args)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = args
        .results_dir
        .join(format!("bench-rounds-{}", results::utc_stamp(now)));
    std::fs::create_dir_all(&dir)?;
    let loadavg_before = loadavg();
    let round_trips = calibrate(&dir, args.pings).await?;
    for r in &round_trips {
        eprintln!(
            "bench rounds: {} round trip p50 {:.1} µs, p99 {:.1} µs",
            r.name, r.p50_us, r.p99_us
        );
    }
    eprintln!("bench rounds: load average {loadavg_before}");
    let sync_dir = args.data_dir.clone().unwrap_or_else(|| dir.clone());
    let fsync = calibrate_fsync(&sync_dir, 500)?;
    eprintln!(
        "bench rounds: fsync in {}: p50 {:.1} µs, p99 {:.1} µs",
        sync_dir.display(),
        fsync.p50_us,
        fsync.p99_us
    );
    let basis = round_trips
        .iter()
        .find(|r| r.name == RTT_BASIS)
        .expect("the basis is calibrated");
    let (rtt_p50_us, rtt_p99_us) = (basis.p50_us, basis.p99_us);

    let mut grid = Vec::new();
    for &d in &args.drop {
        for &n in &args.nodes {
            for b in &args.backoff {
                for &k in &args.proposers {
                    grid.push((n, k, b.clone(), d));
                }
            }
        }
    }
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(grid.len() as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} cells (eta {eta}) {msg}",
        )
        .expect("template is valid"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut cells = Vec::new();
    for (idx, (n, k, b, d)) in grid.iter().enumerate() {
        bar.set_message(format!("N={n} k={k} {b} drop={d}"));
        let cell = run_cell(args, &dir, idx, (*n, *k, b, *d), rtt_p50_us).await?;
        cells.push(cell);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let out = Output {
        calibration: Calibration {
            basis: RTT_BASIS.to_string(),
            rtt_p50_us,
            rtt_p99_us,
            round_trips,
            fsync,
            loadavg_before,
            loadavg_after: loadavg(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
        cells,
    };
    results::write_json(&dir.join("rounds.json"), &out)?;
    if let Some(path) = &args.json {
        results::write_json(path, &out.cells)?;
    }
    let svg = dir.join("rounds.svg");
    std::fs::write(&svg, plot::svg(&out.cells))?;
    print!("{}", table(&out.cells));
    println!();
    for r in &out.calibration.round_trips {
        println!(
            "round trip {}{}: p50 {:.1} µs, p99 {:.1} µs",
            r.name,
            if r.name == RTT_BASIS {
                " (the RTT unit above)"
            } else {
                ""
            },
            r.p50_us,
            r.p99_us
        );
    }
    let f = &out.calibration.fsync;
    println!(
        "fsync in {}: p50 {:.1} µs, p99 {:.1} µs",
        f.dir.display(),
        f.p50_us,
        f.p99_us
    );
    println!(
        "{} CPUs; load average before {}, after {}",
        out.calibration.cpus, out.calibration.loadavg_before, out.calibration.loadavg_after
    );
    println!(
        "plot {}; cells {}",
        svg.display(),
        dir.join("rounds.json").display()
    );
    Ok(0)
}
