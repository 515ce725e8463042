//! What the `squall check` command does, minus argument parsing: read files, check
//! them, print one line per file, return the exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::check::{check, CheckOptions, Outcome, Verdict};
use crate::history::History;
use crate::model::ModelKind;
use crate::parse::Format;

/// One checked file.
#[derive(Debug, Clone)]
pub struct FileCheck {
    /// The format it was read as.
    pub format: Format,
    /// The model it was checked against.
    pub model: ModelKind,
    /// The parsed history.
    pub history: History,
    /// The result.
    pub outcome: Outcome,
}

/// Reads a history file; the format is detected when not given.
pub fn read_history(path: &Path, format: Option<Format>) -> anyhow::Result<(History, Format)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let format = match format {
        Some(f) => f,
        None => Format::detect(path, &text).with_context(|| {
            format!(
                "{}: cannot tell the format; pass one of {}",
                path.display(),
                Format::ALL.map(Format::name).join(", ")
            )
        })?,
    };
    let history = format
        .parse(&text)
        .with_context(|| format!("{}: parsing as {format}", path.display()))?;
    Ok((history, format))
}

/// Reads and checks one file. Minimal failing windows are computed only when
/// `opts.verbose` asks for explanations.
pub fn check_file(
    path: &Path,
    format: Option<Format>,
    model: Option<ModelKind>,
    opts: &CheckOptions,
) -> anyhow::Result<FileCheck> {
    let (history, format) = read_history(path, format)?;
    let model = model.unwrap_or_else(|| format.default_model(&history));
    let opts = CheckOptions {
        minimize: opts.minimize && opts.verbose,
        ..opts.clone()
    };
    let outcome = check(&history, model, &opts)
        .with_context(|| format!("{}: checking with model {model}", path.display()))?;
    Ok(FileCheck {
        format,
        model,
        history,
        outcome,
    })
}

/// Checks each file and prints `path<TAB>verdict<TAB>check ms` (parsing excluded),
/// followed by the explanation when `opts.verbose`. Returns the exit code of the worst
/// verdict: 1 if any file is invalid, else 2 if any is unknown, else 0.
pub fn check_files(
    paths: &[PathBuf],
    format: Option<Format>,
    model: Option<ModelKind>,
    opts: &CheckOptions,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let mut worst = 0;
    for path in paths {
        let checked = check_file(path, format, model, opts)?;
        let verdict = &checked.outcome.verdict;
        writeln!(
            out,
            "{}\t{}\t{:.3}",
            path.display(),
            verdict.name(),
            checked.outcome.stats.elapsed_us as f64 / 1000.0
        )?;
        if opts.verbose {
            match verdict {
                Verdict::Valid => {}
                Verdict::Invalid { explanation } => write!(out, "{explanation}")?,
                Verdict::Unknown { reason, partial } => write!(out, "{reason}\n{partial}")?,
            }
        }
        worst = worse(worst, verdict.exit_code());
    }
    Ok(worst)
}

/// Invalid (1) outranks unknown (2), which outranks valid (0).
fn worse(a: i32, b: i32) -> i32 {
    let rank = |c| match c {
        1 => 2,
        2 => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}
