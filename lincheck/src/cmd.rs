//! What the `squall check` command does, minus argument parsing: read files, check
//! them, print one line per file (an `error` line for a file that cannot be read),
//! return the exit code of the worst outcome.

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

/// Reads a history file; the format is detected when not given. A file whose only
/// defect is an incomplete final line (a writer stopped mid-line: a crash, a full disk)
/// is read without that line, with a warning on stderr.
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
    let history = match format.parse(&text) {
        Ok(h) => h,
        Err(e) => {
            let whole = complete_lines(&text)
                .and_then(|(kept, torn)| Some((format.parse(kept).ok()?, torn)));
            let Some((history, torn)) = whole else {
                return Err(e).with_context(|| format!("{}: parsing as {format}", path.display()));
            };
            eprintln!(
                "warning: {}: the last line is incomplete ({torn} bytes without a newline); checked without it",
                path.display()
            );
            history
        }
    };
    Ok((history, format))
}

/// The text up to its last newline and the length of the torn rest, if the text does
/// not end with a newline.
pub fn complete_lines(text: &str) -> Option<(&str, usize)> {
    if text.is_empty() || text.ends_with('\n') {
        return None;
    }
    let cut = text.rfind('\n').map_or(0, |i| i + 1);
    Some((&text[..cut], text.len() - cut))
}

/// Reads and checks one file. Minimal failing windows are computed only when
/// `opts.verbose` asks for explanations. A squall history checked with the
/// `write-once` model is read by the workload's rule for reads
/// ([`crate::parse::squall::write_once`]), as the run's own checker reads it.
pub fn check_file(
    path: &Path,
    format: Option<Format>,
    model: Option<ModelKind>,
    opts: &CheckOptions,
) -> anyhow::Result<FileCheck> {
    let (mut history, format) = read_history(path, format)?;
    let model = model.unwrap_or_else(|| format.default_model(&history));
    if format == Format::Squall && model == ModelKind::WriteOnce {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        // The torn final line read_history warned about, if any, is left out here too.
        let parsed = match (
            crate::parse::squall::write_once(&text),
            complete_lines(&text),
        ) {
            (Err(_), Some((kept, _))) => crate::parse::squall::write_once(kept),
            (parsed, _) => parsed,
        };
        history = parsed
            .with_context(|| format!("{}: parsing as {format}", path.display()))?
            .history;
    }
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

/// The exit code of a file that could not be read, parsed or checked.
pub const EXIT_ERROR: i32 = 254;

/// Checks each file and prints `path<TAB>verdict<TAB>check ms` (parsing excluded),
/// followed by the explanation when `opts.verbose`. A file that cannot be read, parsed
/// or checked prints `path<TAB>error<TAB>message` and the others are still checked.
/// Returns the exit code of the worst outcome: [`EXIT_ERROR`] if any file failed, else
/// 1 if any is invalid, else 2 if any is unknown, else 0. An `Err` is a failure to
/// write to `out`.
pub fn check_files(
    paths: &[PathBuf],
    format: Option<Format>,
    model: Option<ModelKind>,
    opts: &CheckOptions,
    out: &mut dyn Write,
) -> anyhow::Result<i32> {
    let mut worst = 0;
    for path in paths {
        let checked = match check_file(path, format, model, opts) {
            Ok(c) => c,
            Err(e) => {
                let message = format!("{e:#}").replace('\n', " ");
                writeln!(out, "{}\terror\t{message}", path.display())?;
                worst = worse(worst, EXIT_ERROR);
                continue;
            }
        };
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

/// An error outranks invalid (1), which outranks unknown (2), which outranks valid (0).
pub fn worse(a: i32, b: i32) -> i32 {
    let rank = |c| match c {
        EXIT_ERROR => 3,
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
