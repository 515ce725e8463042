//! The entry point of `scripts/bench-lockstep.sh` (ignored in normal test runs): seeds
//! per minute per core of lockstep runs. Settings come from the environment:
//!
//! - `SQUALL_BENCH_SEEDS` (default 200), `SQUALL_BENCH_FIRST_SEED` (1),
//!   `SQUALL_BENCH_JOBS` (twice the number of cores: a lockstep run waits on its nodes'
//!   fsyncs, and a second run per core fills that time);
//! - `SQUALL_BENCH_RUN`: `squall run` flags (default: five-node write-once paxos, 3 s);
//! - `SQUALL_BENCH_NEMESIS`: fault kinds (default `partition,kill,drop,delay`),
//!   `SQUALL_BENCH_INTERVAL_MS` (500), `SQUALL_BENCH_RECOVERY_MS` (1000);
//! - `SQUALL_BENCH_DATA_DIR`: where the nodes keep their data (`--data-dir`; default: in
//!   each run directory, so on the disk the results are on);
//! - `SQUALL_BENCH_KEEP=1` keeps the run directories, in `SQUALL_BENCH_RESULTS` (default:
//!   a temporary directory removed at the end); `SQUALL_BENCH_OUT` writes the report
//!   there as JSON too.

use clap::Parser;
use harness::cli::{Cli, Command};
use harness::lockstep::bench::{bench, pingpong, BenchOpts};
use harness::nemesis::{FaultKind, NemesisOpts};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

/// The machine's load averages, as `/proc/loadavg` gives them (`?` elsewhere).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

#[test]
#[ignore = "a benchmark: run scripts/bench-lockstep.sh"]
fn bench_lockstep() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let results = std::env::var("SQUALL_BENCH_RESULTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| tmp.path().to_path_buf());
    let run_flags = env_or(
        "SQUALL_BENCH_RUN",
        "--workload write-once --algorithm paxos --nodes 5 --time-limit 3s",
    );
    let mut argv = vec!["squall".to_string(), "run".to_string()];
    argv.extend(shlex::split(&run_flags).expect("SQUALL_BENCH_RUN splits into flags"));
    argv.extend(["--results-dir".to_string(), results.display().to_string()]);
    let data_dir = std::env::var("SQUALL_BENCH_DATA_DIR").ok();
    if let Some(d) = &data_dir {
        argv.extend(["--data-dir".to_string(), d.clone()]);
    }
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let Command::Run(args) = cli.command else {
        panic!("not a run command")
    };
    let base = args.validate().unwrap_or_else(|e| panic!("{}", e.0));
    let kinds = FaultKind::parse_list(&env_or("SQUALL_BENCH_NEMESIS", "partition,kill,drop,delay"))
        .unwrap_or_else(|e| panic!("{e}"));
    let nemesis = NemesisOpts {
        kinds,
        interval_ms: env_num("SQUALL_BENCH_INTERVAL_MS", 500),
        recovery_ms: env_num("SQUALL_BENCH_RECOVERY_MS", 1_000),
        ..NemesisOpts::default()
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let opts = BenchOpts {
        base: base.clone(),
        nemesis: nemesis.clone(),
        first_seed: env_num("SQUALL_BENCH_FIRST_SEED", 1),
        seeds: env_num("SQUALL_BENCH_SEEDS", 200),
        jobs: env_num("SQUALL_BENCH_JOBS", 2 * cores) as usize,
        keep: std::env::var("SQUALL_BENCH_KEEP").is_ok_and(|v| v == "1"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let load_before = loadavg();
    let report = rt.block_on(bench(opts)).expect("bench");
    let kinds: Vec<&str> = nemesis.kinds.iter().map(|k| k.name()).collect();
    println!(
        "config    {} ({} nodes, {} ms virtual + {} ms recovery, rate {}/s, {} instances), faults {}",
        run_flags,
        base.nodes,
        base.time_limit_ms,
        nemesis.recovery_ms,
        base.rate,
        base.instances,
        kinds.join(",")
    );
    println!(
        "runs      {} seeds, {} at a time, on {} cores; node data {}",
        report.runs,
        report.jobs,
        cores,
        match &data_dir {
            Some(d) => format!("in {d}"),
            None => format!("in the run directories, under {}", results.display()),
        }
    );
    println!(
        "wall      {:.1} s: {:.0} seeds/min, {:.0} seeds/min per core",
        report.wall_s, report.seeds_per_min, report.seeds_per_min_per_core_wall
    );
    println!(
        "cpu       {:.1} s (harness and nodes): {:.0} seeds per CPU-minute",
        report.cpu_s, report.seeds_per_cpu_min
    );
    println!(
        "steps     {} ({:.0} per CPU-second), {} ops, {} distinct traces",
        report.steps, report.steps_per_cpu_s, report.ops, report.distinct_traces
    );
    println!(
        "verdicts  {:?}{}",
        report.verdicts,
        if report.not_valid.is_empty() {
            String::new()
        } else {
            format!(" (not valid: seeds {:?})", report.not_valid)
        }
    );
    // The floor, in the same run: a loopback round trip of a step's size (the mean trace
    // bytes per step is close to a delivered line plus its answer).
    let floor = pingpong(env_num("SQUALL_BENCH_PINGPONGS", 200_000), 256).expect("ping-pong");
    let ratio = |a: f64, b: f64| if b > 0.0 { 100.0 * a / b } else { 0.0 };
    println!(
        "floor     loopback ping-pong: {:.0} round trips per CPU-second, {:.0} per wall second; \
         steps reach {:.0}% of it per CPU-second",
        floor.per_cpu_s,
        floor.per_wall_s,
        ratio(report.steps_per_cpu_s, floor.per_cpu_s)
    );
    println!(
        "load      {} before, {} after (1, 5, 15 min)",
        load_before,
        loadavg()
    );
    if let Ok(out) = std::env::var("SQUALL_BENCH_OUT") {
        let json = serde_json::to_string_pretty(&report).expect("report serialises");
        std::fs::write(&out, json + "\n").unwrap_or_else(|e| panic!("write {out}: {e}"));
    }
}
