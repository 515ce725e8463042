//! `squall-node`: runs one bundled algorithm as a node process.

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use clap::Parser;
use node::registry;
use node::runtime::{self, Launch};

/// Runs a bundled algorithm as a squall node. The harness starts it with SQUALL_NODE_ID,
/// SQUALL_ROUTER, SQUALL_DATA_DIR and SQUALL_SEED in the environment.
#[derive(Parser, Debug)]
#[command(name = "squall-node", version)]
struct Args {
    /// The algorithm to run (see --list-json).
    #[arg(long, default_value = "echo")]
    algorithm: String,
    /// Switch on a mutant (repeatable).
    #[arg(long = "bug")]
    bugs: Vec<String>,
    /// Tuning parameter key=value (repeatable).
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Print the bundled algorithms as JSON and exit.
    #[arg(long)]
    list_json: bool,
    /// Benchmark peer instead of an algorithm: `ping` or `pong` (used by `squall bench router`).
    #[arg(long, hide = true)]
    bench: Option<String>,
    /// Bench: talk directly over TCP at this address (pong listens, ping connects).
    #[arg(long, hide = true)]
    direct: Option<String>,
    /// Bench: the peer node id when going through the router.
    #[arg(long, hide = true, default_value = "n2")]
    peer: String,
    /// Bench: pings in flight.
    #[arg(long, hide = true, default_value_t = 1)]
    window: u64,
    /// Bench: round trips to make.
    #[arg(long, hide = true, default_value_t = u64::MAX)]
    count: u64,
    /// Bench: longest measurement, in ms.
    #[arg(long, hide = true, default_value_t = 5_000)]
    duration_ms: u64,
    /// Bench: idle time after each answered ping, in µs.
    #[arg(long, hide = true, default_value_t = 0)]
    gap_us: u64,
    /// Bench: where the pinger writes its result.
    #[arg(long, hide = true)]
    out: Option<std::path::PathBuf>,
}

fn run_bench(args: &Args, mode: &str) -> anyhow::Result<()> {
    use node::bench::{self, Link};
    let link = match &args.direct {
        Some(addr) => Link::Direct(addr.clone()),
        None => Link::Routed {
            router: std::env::var("SQUALL_ROUTER")?,
            id: std::env::var("SQUALL_NODE_ID")?,
            peer: args.peer.clone(),
        },
    };
    match mode {
        "pong" => bench::pong(&link),
        "ping" => {
            let out = args
                .out
                .clone()
                .ok_or_else(|| anyhow::anyhow!("--bench ping needs --out"))?;
            let duration = std::time::Duration::from_millis(args.duration_ms);
            let gap = std::time::Duration::from_micros(args.gap_us);
            bench::ping(&link, args.window, args.count, duration, gap, out)
        }
        other => anyhow::bail!("unknown bench mode '{other}' (valid: ping, pong)"),
    }
}

fn parse_param(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("--param takes key=value, got '{raw}'"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list_json {
        return match runtime::print_list_json(&registry::listing()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("squall-node: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(mode) = args.bench.clone() {
        return match run_bench(&args, &mode) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("squall-node: bench: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let bugs: BTreeSet<String> = args.bugs.into_iter().collect();
    let params: BTreeMap<String, String> = args.params.into_iter().collect();
    let result = Launch::from_env(bugs, params).and_then(|l| registry::run(&args.algorithm, l));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("squall-node: {e:#}");
            ExitCode::from(2)
        }
    }
}
