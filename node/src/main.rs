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
}

fn parse_param(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("--param takes key=value, got '{raw}'"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list_json {
        return match runtime::print_list_json(&registry::algorithms()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("squall-node: {e:#}");
                ExitCode::FAILURE
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
