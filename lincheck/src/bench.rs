//! The checker benchmark: Porcupine's corpus (102 etcd logs, 6 kv files) single-threaded,
//! then a generated key-value history on every core. Prints a markdown table and
//! returns the numbers.
//!
//! Times are medians over `runs` checks of the same parsed history (parsing excluded,
//! no minimizing, like Porcupine's `CheckOperations`). Peak memory is the process's
//! `VmHWM` from `/proc/self/status`: the high-water mark of the whole process (parsed
//! histories, the generator, the allocator's slack), not of the checker alone.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::check::{check, CheckOptions};
use crate::cmd::read_history;
use crate::generate::{
    crashed_proposes, crashed_writes, generate_kv, generate_kv_strings, GenConfig,
};
use crate::model::ModelKind;
use crate::History;

/// What to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchConfig {
    /// Porcupine's `test_data` copy (with `expected.tsv`); skipped if absent.
    pub data_dir: PathBuf,
    /// Checks per history; the median is reported.
    pub runs: usize,
    /// The generated history.
    pub generated: GenConfig,
    /// Threads for the generated history (0 = every core).
    pub generated_threads: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            data_dir: default_data_dir(),
            runs: 7,
            generated: GenConfig {
                n_ops: 100_000,
                n_keys: 1000,
                info_fraction: 0.05,
                seed: 1,
                concurrency: 16,
                values: 16,
            },
            generated_threads: 0,
        }
    }
}

/// `shared/data/porcupine-test-data` beside the workspace.
pub fn default_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/porcupine-test-data")
}

/// One benchmarked history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    /// File name, or `generated`.
    pub name: String,
    /// Ops in the history.
    pub ops: usize,
    /// The verdict.
    pub verdict: String,
    /// The expected verdict, where known.
    pub expected: Option<String>,
    /// Median check time, milliseconds.
    pub check_ms: f64,
    /// States explored.
    pub states: u64,
}

/// The benchmark's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Every history.
    pub rows: Vec<BenchRow>,
    /// Median over runs of the total time for all etcd logs, milliseconds.
    pub etcd_total_ms: f64,
    /// Median over runs of the total time for all kv files, milliseconds.
    pub kv_total_ms: f64,
    /// Whether every corpus verdict equals `expected.tsv` (true if the corpus is absent).
    pub verdicts_match: bool,
    /// Whether the corpus was found.
    pub corpus_found: bool,
    /// `VmHWM` of the whole process at the end, KiB (0 where unavailable).
    pub peak_rss_kib: u64,
}

/// Runs the benchmark, printing a markdown table to `out`.
pub fn run(cfg: &BenchConfig, out: &mut dyn Write) -> anyhow::Result<BenchReport> {
    let runs = cfg.runs.max(1);
    let single = CheckOptions {
        threads: 1,
        minimize: false,
        ..CheckOptions::default()
    };
    let mut rows = Vec::new();
    let mut etcd_total_ms = 0.0;
    let mut kv_total_ms = 0.0;
    let expected_path = cfg.data_dir.join("expected.tsv");
    let corpus_found = expected_path.exists();
    if corpus_found {
        let expected = std::fs::read_to_string(&expected_path)
            .with_context(|| format!("reading {}", expected_path.display()))?;
        let mut etcd = Vec::new();
        let mut kv = Vec::new();
        for line in expected.lines().skip(1) {
            let mut fields = line.split('\t');
            let (Some(file), Some(linearizable)) = (fields.next(), fields.next()) else {
                continue;
            };
            let (history, format) = read_history(&cfg.data_dir.join(file), None)?;
            let model = format.default_model(&history);
            let expected = if linearizable == "true" {
                "valid"
            } else {
                "invalid"
            };
            let entry = (file.to_string(), history, model, expected.to_string());
            if file.starts_with("jepsen/") {
                etcd.push(entry);
            } else {
                kv.push(entry);
            }
        }
        etcd_total_ms = time_group(&etcd, runs, &single, &mut rows)?;
        kv_total_ms = time_group(&kv, runs, &single, &mut rows)?;
    }
    let history = generate_kv(&cfg.generated);
    let all_cores = CheckOptions {
        threads: cfg.generated_threads,
        ..single.clone()
    };
    let generated = vec![(
        format!(
            "generated {} ops, {} keys, {}% info",
            cfg.generated.n_ops,
            cfg.generated.n_keys,
            cfg.generated.info_fraction * 100.0
        ),
        history,
        ModelKind::Kv,
        "valid".to_string(),
    )];
    time_group(&generated, runs, &all_cores, &mut rows)?;
    let report = BenchReport {
        verdicts_match: rows
            .iter()
            .all(|r| r.expected.as_ref().is_none_or(|e| *e == r.verdict)),
        rows,
        etcd_total_ms,
        kv_total_ms,
        corpus_found,
        peak_rss_kib: peak_rss_kib(),
    };
    print_table(&report, cfg, runs, out)?;
    Ok(report)
}

/// Checks every history `runs` times; pushes per-history medians and returns the median
/// of the per-run totals.
fn time_group(
    group: &[(String, History, ModelKind, String)],
    runs: usize,
    opts: &CheckOptions,
    rows: &mut Vec<BenchRow>,
) -> anyhow::Result<f64> {
    let mut totals = vec![0.0; runs];
    for (name, history, model, expected) in group {
        let mut times = Vec::with_capacity(runs);
        let mut last = None;
        for total in totals.iter_mut() {
            let outcome = check(history, *model, opts)?;
            let ms = outcome.stats.elapsed_us as f64 / 1000.0;
            *total += ms;
            times.push(ms);
            last = Some(outcome);
        }
        let outcome = last.expect("at least one run");
        rows.push(BenchRow {
            name: name.clone(),
            ops: history.ops.len(),
            verdict: outcome.verdict.name().to_string(),
            expected: Some(expected.clone()),
            check_ms: median(&mut times),
            states: outcome.stats.states,
        });
    }
    Ok(median(&mut totals))
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

/// The whole process's peak resident set (`VmHWM`), KiB; 0 where unavailable.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn print_table(
    r: &BenchReport,
    cfg: &BenchConfig,
    runs: usize,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "| history | ops | verdict | expected | states | check ms (median of {runs}) |"
    )?;
    writeln!(out, "|---|---:|---|---|---:|---:|")?;
    for row in &r.rows {
        let expected = row.expected.as_deref().unwrap_or("");
        let mark = if expected.is_empty() || expected == row.verdict {
            ""
        } else {
            " **MISMATCH**"
        };
        writeln!(
            out,
            "| {} | {} | {}{mark} | {expected} | {} | {:.3} |",
            row.name, row.ops, row.verdict, row.states, row.check_ms
        )?;
    }
    writeln!(out)?;
    if r.corpus_found {
        writeln!(
            out,
            "- all etcd logs, single-threaded: **{:.3} ms** total",
            r.etcd_total_ms
        )?;
        writeln!(
            out,
            "- all kv files, single-threaded: **{:.3} ms** total",
            r.kv_total_ms
        )?;
        writeln!(
            out,
            "- corpus verdicts match expected.tsv: {}",
            r.verdicts_match
        )?;
    } else {
        writeln!(
            out,
            "- corpus not found at {}: skipped",
            cfg.data_dir.display()
        )?;
    }
    writeln!(
        out,
        "- peak memory (VmHWM, whole process): {:.1} MiB",
        r.peak_rss_kib as f64 / 1024.0
    )?;
    Ok(())
}

/// A generated family of histories full of crashed ops (see [`crate::generate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// `size` crashed writes of distinct values, an ok write, a crashed cas and a late
    /// read ([`crashed_writes`], model `cas-register`).
    CrashedWrites,
    /// `size` crashed proposes of distinct values and a read of the last one
    /// ([`crashed_proposes`], model `write-once`).
    CrashedProposes,
    /// `size` ops of integer read/write/cas over many keys ([`generate_kv`], `kv`).
    Kv,
    /// `size` ops of string get/put/append over many keys ([`generate_kv_strings`],
    /// `kv-strings`).
    KvStrings,
}

impl Family {
    /// Every family, in the order [`std::str::FromStr`] lists them.
    pub const ALL: [Family; 4] = [
        Family::CrashedWrites,
        Family::CrashedProposes,
        Family::Kv,
        Family::KvStrings,
    ];

    /// The name used on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Family::CrashedWrites => "crashed-writes",
            Family::CrashedProposes => "crashed-proposes",
            Family::Kv => "kv",
            Family::KvStrings => "kv-strings",
        }
    }

    /// The sizes measured when none are given.
    pub fn default_sizes(self) -> Vec<u64> {
        match self {
            Family::CrashedWrites => vec![8, 12, 14, 16, 20, 24, 100, 1000],
            Family::CrashedProposes => vec![9, 10, 11, 12, 16, 24, 100, 1000],
            Family::Kv | Family::KvStrings => vec![10_000, 100_000, 1_000_000],
        }
    }

    /// The model the family is checked against.
    pub fn model(self) -> ModelKind {
        match self {
            Family::CrashedWrites => ModelKind::CasRegister,
            Family::CrashedProposes => ModelKind::WriteOnce,
            Family::Kv => ModelKind::Kv,
            Family::KvStrings => ModelKind::KvStrings,
        }
    }
}

impl std::str::FromStr for Family {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Family::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown family `{s}`; valid families: {}",
                    Family::ALL.map(Family::name).join(", ")
                )
            })
    }
}

/// What to run for a family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyConfig {
    /// The family.
    pub family: Family,
    /// The sizes (crashed ops, or ops for the many-key families).
    pub sizes: Vec<u64>,
    /// Keys of the many-key families.
    pub keys: u64,
    /// Fraction of `info` ops in the many-key families.
    pub info_fraction: f64,
    /// Worker threads (0 = every core).
    pub threads: usize,
    /// Give up with `unknown` after this long per history.
    pub time_ms_max: u64,
    /// RNG seed of the many-key families.
    pub seed: u64,
}

/// One measured size of a family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyRow {
    /// The size.
    pub size: u64,
    /// Ops in the history.
    pub ops: usize,
    /// The verdict.
    pub verdict: String,
    /// Check time, milliseconds (generation excluded).
    pub check_ms: f64,
    /// States explored.
    pub states: u64,
    /// Peak resident memory of the process while generating and checking this size
    /// (`VmHWM` after resetting it), MiB; 0 where unavailable.
    pub peak_mib: f64,
}

/// The history of `family` at `size`.
pub fn family_history(cfg: &FamilyConfig, size: u64) -> History {
    let gen = GenConfig {
        n_ops: size as usize,
        n_keys: cfg.keys.max(1),
        info_fraction: cfg.info_fraction,
        seed: cfg.seed,
        concurrency: 16,
        values: 16,
    };
    match cfg.family {
        Family::CrashedWrites => crashed_writes(size),
        Family::CrashedProposes => crashed_proposes(size),
        Family::Kv => generate_kv(&gen),
        Family::KvStrings => generate_kv_strings(&gen),
    }
}

/// Generates and checks each size of a family once, printing a markdown table.
pub fn run_family(cfg: &FamilyConfig, out: &mut dyn Write) -> anyhow::Result<Vec<FamilyRow>> {
    let opts = CheckOptions {
        threads: cfg.threads,
        minimize: false,
        time_ms_max: Some(cfg.time_ms_max),
        ..CheckOptions::default()
    };
    let many_keys = matches!(cfg.family, Family::Kv | Family::KvStrings);
    if many_keys {
        writeln!(
            out,
            "family {}: {} keys, {}% info, seed {}, model {}",
            cfg.family.name(),
            cfg.keys,
            cfg.info_fraction * 100.0,
            cfg.seed,
            cfg.family.model()
        )?;
    } else {
        writeln!(
            out,
            "family {}: model {}",
            cfg.family.name(),
            cfg.family.model()
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "| size | ops | verdict | states | check ms | peak MiB |"
    )?;
    writeln!(out, "|---:|---:|---|---:|---:|---:|")?;
    let mut rows = Vec::new();
    for &size in &cfg.sizes {
        reset_peak_rss();
        let history = family_history(cfg, size);
        let outcome = check(&history, cfg.family.model(), &opts)?;
        let row = FamilyRow {
            size,
            ops: history.ops.len(),
            verdict: outcome.verdict.name().to_string(),
            check_ms: outcome.stats.elapsed_us as f64 / 1000.0,
            states: outcome.stats.states,
            peak_mib: peak_rss_kib() as f64 / 1024.0,
        };
        drop(history);
        writeln!(
            out,
            "| {} | {} | {} | {} | {:.3} | {:.1} |",
            row.size, row.ops, row.verdict, row.states, row.check_ms, row.peak_mib
        )?;
        rows.push(row);
    }
    Ok(rows)
}

/// Resets the process's `VmHWM` to its current resident set (Linux: `clear_refs` 5);
/// does nothing where unavailable.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
