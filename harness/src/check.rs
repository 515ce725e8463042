//! `squall check` and `squall bench checker`: the linearizability checker on stored
//! histories (squall's own, Jepsen logs, EDN), through the `lincheck` crate. A squall
//! `history.jsonl` inside its run directory is judged by the run's own checkers instead
//! ([`crate::rejudge`]), so `squall check` gives the run's own verdict.

use std::path::PathBuf;

use clap::Args;
use lincheck::bench::{Family, FamilyConfig};
use lincheck::{CheckOptions, Format, ModelKind};

use crate::UsageError;

/// `squall check` options.
#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// History files: squall `history.jsonl`, Jepsen log lines, or EDN op maps.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Input format (detected from each file when absent): squall, jepsen-log, edn.
    #[arg(long)]
    pub format: Option<String>,
    /// Model: register, cas-register, kv, kv-strings, write-once (default by format).
    #[arg(long)]
    pub model: Option<String>,
    /// Print the explanation (minimal failing window) of invalid histories.
    #[arg(long, short)]
    pub verbose: bool,
    /// Worker threads (0 = every core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Give up with `unknown` after this long per file.
    #[arg(long, default_value = "5m", value_parser = crate::text::parse_duration_ms)]
    pub budget: u64,
}

/// `squall bench checker` options.
#[derive(Args, Debug, Clone)]
pub struct BenchCheckerArgs {
    /// Checks per history; the median is reported.
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// Porcupine's test data directory (with expected.tsv).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Instead of the corpus, generate and check a family of histories full of
    /// crashed ops: crashed-writes, crashed-proposes, kv, kv-strings.
    #[arg(long)]
    pub family: Option<String>,
    /// Sizes for --family, comma-separated (crashed ops, or ops for kv and kv-strings).
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<u64>,
    /// Keys of the kv and kv-strings families.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Percent of info ops in the kv and kv-strings families (default 5 and 2).
    #[arg(long)]
    pub info_percent: Option<f64>,
    /// Worker threads for --family (0 = every core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Give up with `unknown` after this long per --family history.
    #[arg(long, default_value = "60s", value_parser = crate::text::parse_duration_ms)]
    pub budget: u64,
    /// RNG seed of the kv and kv-strings families.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs `squall check`; returns the exit code of the worst outcome (a file that cannot
/// be read or checked prints an `error` line and counts as 254; the others are still
/// checked).
pub fn check(args: &CheckArgs) -> anyhow::Result<u8> {
    let format = match &args.format {
        Some(f) => Some(f.parse::<Format>().map_err(|e| UsageError(e.to_string()))?),
        None => None,
    };
    let model = match &args.model {
        Some(m) => Some(
            m.parse::<ModelKind>()
                .map_err(|e| UsageError(e.to_string()))?,
        ),
        None => None,
    };
    let opts = CheckOptions {
        threads: args.threads,
        time_ms_max: Some(args.budget),
        verbose: args.verbose,
        minimize: true,
        ..CheckOptions::default()
    };
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let mut worst = 0;
    for file in &args.files {
        if let Some(what) = not_a_history(file) {
            writeln!(out, "{}\terror\t{what}", file.display())?;
            worst = lincheck::cmd::worse(worst, lincheck::cmd::EXIT_ERROR);
            continue;
        }
        // A run's own history is judged by the run's own rules, unless a format or
        // model asks for lincheck alone.
        let run_dir = match (format, model) {
            (None, None) => crate::rejudge::run_dir_of(file),
            _ => None,
        };
        let code = match run_dir {
            Some(dir) => check_run_history(file, &dir, args.verbose, &mut out)?,
            None => lincheck::cmd::check_files(
                std::slice::from_ref(file),
                format,
                model,
                &opts,
                &mut out,
            )
            .map_err(|e| UsageError(format!("{e:#}")))?,
        };
        worst = lincheck::cmd::worse(worst, code);
    }
    Ok(worst as u8)
}

/// What `path` is, when it is plainly not a history: a directory (a run directory holds
/// `history.jsonl`), a device or a socket, an empty file.
fn not_a_history(path: &std::path::Path) -> Option<String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot read: {e}")),
    };
    let t = meta.file_type();
    if t.is_dir() {
        let hint = if path.join("history.jsonl").is_file() {
            format!("; its history is {}", path.join("history.jsonl").display())
        } else {
            String::new()
        };
        return Some(format!("is a directory, not a history file{hint}"));
    }
    use std::os::unix::fs::FileTypeExt as _;
    // A FIFO is read as a file: `squall check <(zcat history.jsonl.gz)`.
    let kind = if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        return (t.is_file() && meta.len() == 0).then(|| "is empty: no history to check".into());
    };
    Some(format!("is {kind}, not a history file"))
}

/// Judges `file`, the history of the run in `dir`, as the run did; prints the line
/// lincheck prints for a file (path, verdict, milliseconds) and, verbose, the reason.
fn check_run_history(
    file: &std::path::Path,
    dir: &std::path::Path,
    verbose: bool,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<i32> {
    let started = std::time::Instant::now();
    let judged = match crate::rejudge::rejudge(dir) {
        Ok(j) => j,
        Err(e) => {
            let message = format!("{e:#}").replace('\n', " ");
            writeln!(out, "{}\terror\t{message}", file.display())?;
            return Ok(lincheck::cmd::EXIT_ERROR);
        }
    };
    writeln!(
        out,
        "{}\t{}\t{:.3}",
        file.display(),
        judged.verdict.word().to_lowercase(),
        started.elapsed().as_secs_f64() * 1000.0
    )?;
    if verbose {
        writeln!(out, "{} (the run's checkers)", judged.reason)?;
    }
    if let Some(recorded) = judged.recorded.filter(|r| *r != judged.verdict) {
        writeln!(
            out,
            "{}\tnote\tverdict.json says {}: the run directory was changed, or judged by another version",
            file.display(),
            recorded.word().to_lowercase()
        )?;
    }
    Ok(i32::from(judged.verdict.exit_code()))
}

/// Runs the checker benchmark (or one --family) and prints its table.
pub fn bench(args: &BenchCheckerArgs) -> anyhow::Result<u8> {
    if let Some(name) = &args.family {
        let family: Family = name.parse().map_err(UsageError)?;
        let default_info = match family {
            Family::KvStrings => 2.0,
            _ => 5.0,
        };
        let cfg = FamilyConfig {
            family,
            sizes: if args.sizes.is_empty() {
                family.default_sizes()
            } else {
                args.sizes.clone()
            },
            keys: args.keys,
            info_fraction: args.info_percent.unwrap_or(default_info) / 100.0,
            threads: args.threads,
            time_ms_max: args.budget,
            seed: args.seed,
        };
        let mut out = std::io::stdout().lock();
        lincheck::bench::run_family(&cfg, &mut out)?;
        return Ok(0);
    }
    let mut cfg = lincheck::bench::BenchConfig {
        runs: args.runs,
        ..Default::default()
    };
    if let Some(d) = &args.data {
        cfg.data_dir = d.clone();
    }
    let mut out = std::io::stdout().lock();
    lincheck::bench::run(&cfg, &mut out)?;
    Ok(0)
}
