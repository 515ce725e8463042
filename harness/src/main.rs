//! `squall`: the binary. Parses the command line, maps every outcome to an exit code:
//! 0 valid, 1 invalid, 2 unknown, 254 usage or configuration error, 255 internal error.

use std::process::ExitCode;

use clap::Parser;
use harness::cli::{BenchCmd, Cli, Command};
use harness::{exit, registry, run, UsageError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => exit::USAGE,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if let Command::StdioBridge { argv } = &cli.command {
        // Plain threads, no runtime: the bridge is one more process per node.
        return match harness::stdio::bridge(argv) {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(255)),
            Err(e) => {
                eprintln!("squall stdio-bridge: {e}");
                ExitCode::from(exit::INTERNAL)
            }
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SQUALL_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("squall: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    let result = rt.block_on(dispatch(cli));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if let Some(u) = e.downcast_ref::<UsageError>() {
                eprintln!("squall: {u}");
                ExitCode::from(exit::USAGE)
            } else {
                eprintln!("squall: internal error: {e:#}");
                ExitCode::from(exit::INTERNAL)
            }
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Run(args) => run_cfg(args.validate()?).await.map(|(code, _)| code),
        Command::Test(args) => {
            let cfg = args.validate()?;
            if args.latency.is_some() && cfg.mode == harness::config::RunMode::Free {
                eprintln!("squall: --latency applies to lockstep runs; free-running runs use loopback's own");
            }
            let (code, dir) = run_cfg(cfg).await?;
            if args.log_stderr {
                eprint!("{}", harness::maelstrom::node_logs(&dir));
            }
            Ok(code)
        }
        Command::List => {
            println!("Workloads:");
            for (name, what) in workloads::WORKLOADS {
                println!("  {name:<20} {what}");
            }
            println!("\nAlgorithms (--algorithm; mutants with --bug):");
            let bin = registry::find_node_bin().map_err(|e| UsageError(e.to_string()))?;
            for a in registry::node_registry(&bin)? {
                println!("  {:<20} {}", a.name, a.summary);
                println!("  {:<20} workloads: {}", "", a.workloads.join(", "));
                if !a.bugs.is_empty() {
                    println!("  {:<20} bugs: {}", "", a.bugs.join(", "));
                }
            }
            Ok(0)
        }
        Command::Bench(BenchCmd::Router(args)) => harness::bench::router(&args).await,
        Command::Bench(BenchCmd::Checker(args)) => harness::check::bench(&args),
        Command::Bench(BenchCmd::Rounds(args)) => harness::rounds::bench(&args).await,
        Command::Check(args) => harness::check::check(&args),
        Command::Replay(args) => harness::replay::replay(&args).await,
        Command::Shrink(args) => harness::shrink::shrink(&args).await,
        Command::Report(args) => harness::report::report_cmd(&args),
        Command::Soak(args) => harness::soak::soak(&args).await,
        Command::Summary(args) => harness::soak::merge::summary(&args),
        Command::Plan(args) => harness::plan::plan_cmd(&args),
        Command::StdioBridge { .. } => unreachable!("handled before the runtime starts"),
    }
}

/// Runs one configuration to its verdict, Ctrl-C and SIGTERM ending it early; returns the
/// exit code and the run directory.
async fn run_cfg(cfg: harness::config::RunConfig) -> anyhow::Result<(u8, std::path::PathBuf)> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        // SIGTERM (a scheduler, `kill`, `timeout`) means what Ctrl-C means: stop
        // and write what was recorded, then tear every node down.
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let name = tokio::select! {
            r = tokio::signal::ctrl_c() => r.is_ok().then_some("interrupted"),
            () = terminated => Some("terminated"),
        };
        if let Some(name) = name {
            eprintln!("squall: {name}; stopping clients and writing what was recorded");
            let _ = tx.send(true);
        }
        // Keep the sender alive so receivers do not see a closed channel.
        std::future::pending::<()>().await;
    });
    let outcome = run::run_any(cfg, rx).await?;
    print!("{}", outcome.summary);
    Ok((outcome.verdict.exit_code(), outcome.dir))
}
