//! `squall bench kv`: throughput and latency of the bundled replicated state machines
//! (`raft`, `multi-paxos`) on real node processes, next to squall's own ceiling (the
//! `echo` workload through the same router and the same clients).
//!
//! A **series** is one configuration: algorithm × replicas × where node data lives (the
//! run directory on disk, or a tmpfs) × batching (both algorithms' `batch_ms`: on is the
//! default, off is `batch_ms=0`; `--param` adds tuning to every replicated series, such
//! as `batch_us`). Each series sweeps the offered load upward (`--rates`): every
//! step is one ordinary `squall run` of `lin-kv` (or `echo`) without faults, built by the
//! same [`RunBuilder`] as `squall run`. The sweep stops at the first step whose p99 is
//! above `--p99-limit` or whose served ops/s did not rise by 10% over the best so far.
//! The **knee** is the most ops/s served by a step within the p99 limit; one more run at
//! half the knee's offered rate gives p50/p99 latency under a comfortable load.
//!
//! From each step's run directory the bench reads `history.jsonl` (ops **served**: `ok`
//! and definite failures other than error 11 "no leader", completed after the warm-up;
//! their latency), `metrics.json` (node-to-node messages, from the router's link
//! counters) and the nodes' logs (fsyncs: the bench starts nodes with
//! [`SYNC_COUNT_ENV`], so each prints its count when terminated). While a
//! step runs, a sampler reads `/proc/<pid>/stat` of this process (router, clients and
//! recorder) and of its children (the nodes), so a table row says where the CPU went.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use serde_json::Value;

mod cpu;
pub mod plot;

pub use cpu::CpuUse;

use crate::config::RunBuilder;
use crate::text::parse_duration_ms;
use crate::{results, run, UsageError};

/// The node environment variable that makes a node count its fsyncs and print
/// `squall-node: N fsyncs` when the harness terminates it (the node runtime's
/// `SYNC_COUNT_ENV`).
pub const SYNC_COUNT_ENV: &str = "SQUALL_COUNT_SYNCS";

/// The error code of "no leader known": an op refused before it reached a log is not
/// served.
const UNAVAILABLE: &str = "error 11";

/// `squall bench kv` options.
#[derive(Args, Debug, Clone)]
pub struct BenchKvArgs {
    /// Replicated state machines (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "raft,multi-paxos")]
    pub algorithms: Vec<String>,
    /// Replica counts (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "3,5")]
    pub nodes: Vec<usize>,
    /// Where node data lives: `disk` (the run directory) and/or `tmpfs` (`--tmpfs`).
    #[arg(long, value_delimiter = ',', default_value = "disk,tmpfs")]
    pub storage: Vec<String>,
    /// A tmpfs directory for `--storage tmpfs`.
    #[arg(long, default_value = "/dev/shm")]
    pub tmpfs: PathBuf,
    /// Batching of the algorithms that have a switch: `on`, `off` (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "on,off")]
    pub batching: Vec<String>,
    /// A `key=value` tuning parameter for the replicated series (not echo), e.g.
    /// `batch_us=500`; repeatable. Batching `off` still sets `batch_ms=0` after these.
    #[arg(long = "param")]
    pub params: Vec<String>,
    /// Offered ops/s of the sweep's steps, upward (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "500,1000,2000,4000,8000,16000,32000,64000"
    )]
    pub rates: Vec<f64>,
    /// Client workers (each has one op in flight).
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Keys of the lin-kv workload.
    #[arg(long, default_value_t = 64)]
    pub keys: u64,
    /// How long clients issue ops in each step.
    #[arg(long, default_value = "4s", value_parser = parse_duration_ms)]
    pub step: u64,
    /// The start of each step not measured (a leader is elected in it).
    #[arg(long, default_value = "1s", value_parser = parse_duration_ms)]
    pub warmup: u64,
    /// A step whose p99 latency is above this is past the knee.
    #[arg(long, default_value = "100ms", value_parser = parse_duration_ms)]
    pub p99_limit: u64,
    /// Client op timeout.
    #[arg(long, default_value = "1s", value_parser = parse_duration_ms)]
    pub op_timeout: u64,
    /// Leave out the echo ceiling.
    #[arg(long)]
    pub no_echo: bool,
    /// Seed of the first step (each run adds one).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where the bench directory is created.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
}

/// One step of a sweep: one run at one offered rate.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Offered ops/s.
    pub rate: f64,
    /// Ops served per second after the warm-up.
    pub ops_per_s: f64,
    /// Latency of served ops, p50 (ms).
    pub p50_ms: f64,
    /// p99 (ms).
    pub p99_ms: f64,
    /// Ops served after the warm-up.
    pub served: u64,
    /// Ops refused with error 11 (no leader), whole run.
    pub unavailable: u64,
    /// Ops timed out or with indefinite errors, whole run.
    pub info: u64,
    /// fsyncs of all nodes per served op (whole run; `None`: a node's count was missing).
    pub fsyncs_per_op: Option<f64>,
    /// Node-to-node messages per served op (whole run).
    pub msgs_per_op: f64,
    /// CPU while clients ran.
    pub cpu: CpuUse,
    /// The run's verdict.
    pub verdict: String,
    /// The run directory.
    pub run_dir: PathBuf,
}

/// One configuration swept.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// `raft`, `multi-paxos` or `echo`.
    pub algorithm: String,
    /// Replicas.
    pub nodes: usize,
    /// `disk` or `tmpfs` (`-` for echo, which keeps no data).
    pub storage: String,
    /// `on`, `off`, or `-` where the algorithm has no switch.
    pub batching: String,
    /// The sweep, in order.
    pub steps: Vec<Step>,
    /// Index in `steps` of the knee, if any step was within the p99 limit.
    pub knee: Option<usize>,
    /// The run at half the knee's offered rate.
    pub half: Option<Step>,
    /// Knee ops/s over the same-replica-count echo knee.
    pub ratio_to_echo: Option<f64>,
}

impl Series {
    /// The knee's step.
    pub fn knee_step(&self) -> Option<&Step> {
        self.knee.map(|i| &self.steps[i])
    }

    fn label(&self) -> String {
        match (self.storage.as_str(), self.batching.as_str()) {
            ("-", _) => self.algorithm.clone(),
            (s, "-") => format!("{} {s}", self.algorithm),
            (s, b) => format!("{} {s} batch {b}", self.algorithm),
        }
    }
}

fn check_args(args: &BenchKvArgs) -> Result<(), UsageError> {
    let fail = |m: String| Err(UsageError(m));
    for s in &args.storage {
        if s != "disk" && s != "tmpfs" {
            return fail(format!("--storage '{s}' is not disk or tmpfs"));
        }
    }
    for b in &args.batching {
        if b != "on" && b != "off" {
            return fail(format!("--batching '{b}' is not on or off"));
        }
    }
    for a in &args.algorithms {
        if a != "raft" && a != "multi-paxos" {
            return fail(format!("--algorithms '{a}' is not raft or multi-paxos"));
        }
    }
    if args.rates.is_empty() || args.rates.iter().any(|r| *r <= 0.0) {
        return fail("--rates needs positive values".into());
    }
    if args.nodes.is_empty() || args.clients == 0 || args.keys == 0 {
        return fail("--nodes, --clients and --keys must not be empty or 0".into());
    }
    if args.warmup >= args.step {
        return fail("--warmup must be shorter than --step".into());
    }
    Ok(())
}

/// What one configuration runs with.
struct Config<'a> {
    algorithm: &'a str,
    nodes: usize,
    data_dir: Option<PathBuf>,
    params: Vec<String>,
}

/// Nearest-rank percentile of sorted values.
fn rank(xs: &[u64], pct: f64) -> u64 {
    if xs.is_empty() {
        return 0;
    }
    let i = ((xs.len() as f64 * pct / 100.0).ceil() as usize).clamp(1, xs.len()) - 1;
    xs[i]
}

/// Served ops after `warmup_ns` and their latencies (ns); error-11 refusals and `info`
/// completions over the whole run.
fn served_ops(history: &[Value], warmup_ns: u64) -> (Vec<u64>, u64, u64) {
    let mut invoked: BTreeMap<u64, u64> = BTreeMap::new();
    let mut lat = Vec::new();
    let (mut unavailable, mut info) = (0, 0);
    for ev in history {
        let process = ev.get("process").and_then(Value::as_u64).unwrap_or(0);
        let time = ev.get("time").and_then(Value::as_u64).unwrap_or(0);
        match ev.get("type").and_then(Value::as_str).unwrap_or("") {
            "invoke" => {
                invoked.insert(process, time);
            }
            "info" => info += 1,
            ty @ ("ok" | "fail") => {
                let refused = ty == "fail"
                    && ev
                        .get("error")
                        .and_then(Value::as_str)
                        .is_some_and(|e| e.starts_with(UNAVAILABLE));
                if refused {
                    unavailable += 1;
                    continue;
                }
                if let Some(start) = invoked.remove(&process) {
                    if time >= warmup_ns {
                        lat.push(time.saturating_sub(start));
                    }
                }
            }
            _ => {}
        }
    }
    (lat, unavailable, info)
}

/// Sum of the fsync counts the nodes printed when terminated (every incarnation's log),
/// or `None` if a node printed none.
fn node_fsyncs(run_dir: &Path, nodes: usize) -> Option<u64> {
    let mut total = 0;
    for i in 1..=nodes {
        let log = std::fs::read_to_string(run_dir.join("nodes").join(format!("n{i}.log"))).ok()?;
        let mut seen = false;
        for line in log.lines() {
            if let Some(n) = line
                .strip_prefix("squall-node: ")
                .and_then(|r| r.strip_suffix(" fsyncs"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                total += n;
                seen = true;
            }
        }
        if !seen {
            return None;
        }
    }
    Some(total)
}

/// Node-to-node messages the router delivered (`metrics.json`'s link totals).
fn node_messages(metrics: &Value) -> u64 {
    metrics
        .pointer("/faults/total/delivered")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Runs one step.
async fn run_step(
    args: &BenchKvArgs,
    dir: &Path,
    cfg: &Config<'_>,
    rate: f64,
    seed: u64,
) -> anyhow::Result<Step> {
    let echo = cfg.algorithm == "echo";
    let mut run = RunBuilder {
        workload: if echo { "echo" } else { "lin-kv" }.into(),
        algorithm: (!echo).then(|| cfg.algorithm.to_string()),
        nodes: cfg.nodes,
        clients: args.clients,
        rate,
        instances: (!echo).then_some(args.keys),
        op_timeout_ms: args.op_timeout,
        seed: Some(seed),
        results_dir: dir.join("runs"),
        data_dir: cfg.data_dir.clone(),
        params: cfg.params.clone(),
        node_env: vec![(SYNC_COUNT_ENV.to_string(), "1".into())],
        time_limit_ms: Some(args.step),
        // Long enough for the final reads of every key on every node (a verdict that
        // says more than the bench needs, but an honest one).
        recovery_ms: Some(2_000),
        ..RunBuilder::default()
    };
    run.nemesis.kinds.clear();
    let built = run.build()?;
    let sampler = cpu::Sampler::start();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let outcome = run::run_any(built, rx).await?;
    let cpu = sampler.finish().await;
    let history: Vec<Value> = results::read_jsonl(&outcome.dir.join("history.jsonl"))?;
    let metrics: Value = serde_json::from_slice(&std::fs::read(outcome.dir.join("metrics.json"))?)?;
    let warmup_ns = args.warmup * 1_000_000;
    let (mut lat, unavailable, info) = served_ops(&history, warmup_ns);
    lat.sort_unstable();
    let served = lat.len() as u64;
    let window_s = (args.step - args.warmup) as f64 / 1000.0;
    // Per op over the whole run: the counters cover it all, so every served op counts.
    let (all, _, _) = served_ops(&history, 0);
    let per_op = |x: u64| x as f64 / (all.len().max(1) as f64);
    let ms = |ns: u64| ns as f64 / 1e6;
    Ok(Step {
        rate,
        ops_per_s: served as f64 / window_s,
        p50_ms: ms(rank(&lat, 50.0)),
        p99_ms: ms(rank(&lat, 99.0)),
        served,
        unavailable,
        info,
        fsyncs_per_op: node_fsyncs(&outcome.dir, cfg.nodes).map(per_op),
        msgs_per_op: per_op(node_messages(&metrics)),
        cpu,
        verdict: format!("{:?}", outcome.verdict),
        run_dir: outcome.dir,
    })
}

/// Sweeps one configuration: steps upward until latency breaks, then half the knee.
async fn sweep(
    args: &BenchKvArgs,
    dir: &Path,
    cfg: &Config<'_>,
    seed: &mut u64,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<(Vec<Step>, Option<usize>, Option<Step>)> {
    let limit = args.p99_limit as f64;
    let mut steps: Vec<Step> = Vec::new();
    let mut knee: Option<usize> = None;
    for &rate in &args.rates {
        bar.set_message(format!("{} N={} {rate} ops/s", cfg.algorithm, cfg.nodes));
        *seed += 1;
        let step = run_step(args, dir, cfg, rate, *seed).await?;
        let best = knee.map_or(0.0, |k| steps[k].ops_per_s);
        let within = step.p99_ms <= limit;
        let rising = step.ops_per_s > best * 1.1;
        if within && step.ops_per_s > best {
            knee = Some(steps.len());
        }
        steps.push(step);
        bar.tick();
        if !within || !rising {
            break;
        }
    }
    let half = match knee {
        Some(k) => {
            *seed += 1;
            Some(run_step(args, dir, cfg, steps[k].rate / 2.0, *seed).await?)
        }
        None => None,
    };
    Ok((steps, knee, half))
}

/// The markdown table of the series.
pub fn table(series: &[Series]) -> String {
    let mut out = String::from(
        "| algorithm | N | storage | batching | knee ops/s | offered | p50/p99 ms at half knee | fsyncs/op | msgs/op | CPU harness/nodes (cores) | vs echo |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in series {
        let knee = s.knee_step();
        let f = |x: Option<f64>, p: usize| x.map_or("-".to_string(), |v| format!("{v:.p$}"));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            s.algorithm,
            s.nodes,
            s.storage,
            s.batching,
            f(knee.map(|k| k.ops_per_s), 0),
            f(knee.map(|k| k.rate), 0),
            s.half
                .as_ref()
                .map_or("-".into(), |h| format!("{:.2}/{:.2}", h.p50_ms, h.p99_ms)),
            f(knee.and_then(|k| k.fsyncs_per_op), 2),
            f(knee.map(|k| k.msgs_per_op), 2),
            knee.map_or("-".into(), |k| format!(
                "{:.2}/{:.2}",
                k.cpu.harness_cores, k.cpu.nodes_cores
            )),
            f(s.ratio_to_echo, 2),
        ));
    }
    out
}

/// Every step as CSV, one line per step (`half` marks the half-knee run).
pub fn csv(series: &[Series]) -> String {
    let mut out = String::from(
        "algorithm,nodes,storage,batching,kind,rate,ops_per_s,p50_ms,p99_ms,served,unavailable,info,fsyncs_per_op,msgs_per_op,harness_cores,nodes_cores,verdict\n",
    );
    for s in series {
        let tagged = s
            .steps
            .iter()
            .enumerate()
            .map(|(i, st)| (if Some(i) == s.knee { "knee" } else { "step" }, st))
            .chain(s.half.iter().map(|h| ("half", h)));
        for (kind, st) in tagged {
            out.push_str(&format!(
                "{},{},{},{},{kind},{},{:.1},{:.3},{:.3},{},{},{},{},{:.3},{:.3},{:.3},{}\n",
                s.algorithm,
                s.nodes,
                s.storage,
                s.batching,
                st.rate,
                st.ops_per_s,
                st.p50_ms,
                st.p99_ms,
                st.served,
                st.unavailable,
                st.info,
                st.fsyncs_per_op
                    .map_or(String::new(), |v| format!("{v:.3}")),
                st.msgs_per_op,
                st.cpu.harness_cores,
                st.cpu.nodes_cores,
                st.verdict,
            ));
        }
    }
    out
}

/// Runs the bench: every series, the echo ceilings, the table, CSV, JSON and the plot.
pub async fn bench(args: &BenchKvArgs) -> anyhow::Result<u8> {
    check_args(args)?;
    let since_epoch = std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_secs());
    let stamp = results::utc_stamp(since_epoch);
    let dir = args.results_dir.join(format!("bench-kv-{stamp}"));
    std::fs::create_dir_all(&dir)?;
    let tmpfs = args.tmpfs.join(format!("squall-bench-kv-{stamp}"));
    let loadavg_before = crate::metrics::loadavg();

    let mut plan: Vec<(String, usize, String, String)> = Vec::new();
    for &n in &args.nodes {
        if !args.no_echo {
            plan.push(("echo".into(), n, "-".into(), "-".into()));
        }
        for a in &args.algorithms {
            for st in &args.storage {
                if a == "raft" || a == "multi-paxos" {
                    for b in &args.batching {
                        plan.push((a.clone(), n, st.clone(), b.clone()));
                    }
                } else {
                    plan.push((a.clone(), n, st.clone(), "-".into()));
                }
            }
        }
    }
    let bar = indicatif::ProgressBar::new(plan.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} series {msg}",
        )
        .expect("template is valid"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut seed = args.seed;
    let mut series = Vec::new();
    for (algorithm, nodes, storage, batching) in &plan {
        let data_dir = (storage == "tmpfs").then(|| tmpfs.join(format!("s{}", series.len())));
        let mut params = match algorithm.as_str() {
            "echo" => Vec::new(),
            _ => args.params.clone(),
        };
        if batching == "off" {
            params.retain(|p| !p.starts_with("batch_"));
            params.push("batch_ms=0".to_string());
        }
        let cfg = Config {
            algorithm,
            nodes: *nodes,
            data_dir: data_dir.clone(),
            params,
        };
        let (steps, knee, half) = sweep(args, &dir, &cfg, &mut seed, &bar).await?;
        if let Some(d) = &data_dir {
            let _ = std::fs::remove_dir_all(d);
        }
        series.push(Series {
            algorithm: algorithm.clone(),
            nodes: *nodes,
            storage: storage.clone(),
            batching: batching.clone(),
            steps,
            knee,
            half,
            ratio_to_echo: None,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&tmpfs);
    let echo_knee: BTreeMap<usize, f64> = series
        .iter()
        .filter(|s| s.algorithm == "echo")
        .filter_map(|s| s.knee_step().map(|k| (s.nodes, k.ops_per_s)))
        .collect();
    for s in series.iter_mut().filter(|s| s.algorithm != "echo") {
        s.ratio_to_echo = match (s.knee_step(), echo_knee.get(&s.nodes)) {
            (Some(k), Some(e)) if *e > 0.0 => Some(k.ops_per_s / e),
            _ => None,
        };
    }
    let summary = serde_json::json!({
        "clients": args.clients,
        "keys": args.keys,
        "step_ms": args.step,
        "warmup_ms": args.warmup,
        "p99_limit_ms": args.p99_limit,
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "loadavg_before": loadavg_before,
        "loadavg_after": crate::metrics::loadavg(),
        "series": series,
    });
    results::write_json(&dir.join("kv.json"), &summary)?;
    std::fs::write(dir.join("kv.csv"), csv(&series))?;
    let svg = dir.join("kv.svg");
    std::fs::write(&svg, plot::svg(&series))?;
    let text = table(&series);
    std::fs::write(dir.join("kv.md"), &text)?;
    print!("{text}");
    println!(
        "\n{} clients, {} keys, {} ms steps ({} ms warm-up), p99 limit {} ms; load average before {}, after {}",
        args.clients,
        args.keys,
        args.step,
        args.warmup,
        args.p99_limit,
        summary["loadavg_before"].as_str().unwrap_or("?"),
        summary["loadavg_after"].as_str().unwrap_or("?"),
    );
    println!(
        "plot {}; table {}; steps {}",
        svg.display(),
        dir.join("kv.md").display(),
        dir.join("kv.csv").display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refusals_without_a_leader_are_not_served_and_warmup_ops_not_timed() {
        let ev = |process: u64, ty: &str, time: u64, error: Option<&str>| json!({"process": process, "type": ty, "f": "write", "time": time, "error": error});
        let history = vec![
            ev(1, "invoke", 10, None),
            ev(1, "fail", 20, Some("error 11: no leader known")),
            ev(2, "invoke", 30, None),
            ev(2, "ok", 40, None),
            ev(3, "invoke", 100, None),
            ev(3, "fail", 160, Some("error 22: precondition failed")),
            ev(4, "invoke", 110, None),
            ev(4, "info", 200, Some("timeout")),
            ev(5, "invoke", 120, None),
            ev(5, "ok", 125, None),
        ];
        let (lat, unavailable, info) = served_ops(&history, 50);
        assert_eq!(
            lat,
            vec![60, 5],
            "the cas answered 22 counts, the warm-up op does not"
        );
        assert_eq!((unavailable, info), (1, 1));
    }
}
