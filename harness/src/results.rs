//! The results directory: `results/<run-id>/` with `run.json`, `schedule.json`,
//! `history.jsonl`, `nodes/<id>.log`, `data/<id>/`, `verdict.json`, `metrics.json`, and a
//! `latest` symlink in the results directory pointing at the newest run.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// `YYYYmmddTHHMMSSZ` for a Unix time in seconds (UTC, proleptic Gregorian).
pub fn utc_stamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Why `results` cannot hold run directories, said about the path the user gave: it is
/// user input, so its trouble is a usage error (exit 254), not an internal one.
fn unusable(results: &Path, e: &std::io::Error) -> crate::UsageError {
    let what = match std::fs::metadata(results) {
        Ok(m) if m.is_file() => "is a file, not a directory".to_string(),
        Ok(m) if !m.is_dir() => "is not a directory (a device or other special file)".to_string(),
        _ => format!("cannot hold run directories: {e}"),
    };
    crate::UsageError(format!("results directory {} {what}", results.display()))
}

/// Creates a fresh run directory `<results>/<stamp>-<workload>-s<seed>[-N]` with its
/// `nodes/` and `data/` subdirectories. A results directory that cannot be created or
/// written is a [`crate::UsageError`] naming it.
pub fn create_run_dir(
    results: &Path,
    workload: &str,
    seed: u64,
) -> anyhow::Result<(String, PathBuf)> {
    std::fs::create_dir_all(results).map_err(|e| unusable(results, &e))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = format!("{}-{workload}-s{seed}", utc_stamp(now));
    for n in 0..1000 {
        let id = if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = results.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::create_dir_all(dir.join("nodes"))
                    .and_then(|()| std::fs::create_dir_all(dir.join("data")))
                    .map_err(|e| unusable(results, &e))?;
                return Ok((id, dir));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(unusable(results, &e).into()),
        }
    }
    anyhow::bail!(
        "could not find a free run directory name under {}",
        results.display()
    )
}

/// Points `<results>/latest` at `run_id` (atomically, via rename).
pub fn update_latest(results: &Path, run_id: &str) -> anyhow::Result<()> {
    // Named after the run too: runs of one process (`squall soak --jobs`) finish at once.
    let tmp = results.join(format!(".latest-{}-{run_id}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(run_id, &tmp)?;
    std::fs::rename(&tmp, results.join("latest"))?;
    Ok(())
}

/// Reads and parses one JSON file of a run directory (`verdict.json`, `metrics.json`).
pub fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("parse {}: {e}", path.display()))
}

/// Reads a file of one JSON value per line (`reports.jsonl`, `messages.jsonl`); blank
/// lines are skipped, a bad line is an error naming its number.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Writes `value` as pretty JSON (with a trailing newline) and fsyncs it.
pub fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_synced(path, &bytes)
}

/// Writes one JSON value per line (`reports.jsonl`) and fsyncs the file.
pub fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    for item in items {
        serde_json::to_writer(&mut bytes, item)?;
        bytes.push(b'\n');
    }
    write_synced(path, &bytes)
}

/// Writes `text` and fsyncs it.
pub fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    write_synced(path, text.as_bytes())
}

/// Replaces `path` atomically: writes and syncs a hidden sibling, then renames it over
/// `path`, so a reader (or a crash) sees the old file or the new one, never half of one.
pub fn replace_text(path: &Path, text: &str) -> anyhow::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    write_text(&tmp, text)?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f =
        std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_utc_calendar_dates() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
        assert_eq!(utc_stamp(1_795_000_000), "20261118T110640Z");
    }

    #[test]
    fn run_dirs_are_unique_and_latest_follows() {
        let dir = tempfile::tempdir().unwrap();
        let (a, pa) = create_run_dir(dir.path(), "echo", 7).unwrap();
        let (b, pb) = create_run_dir(dir.path(), "echo", 7).unwrap();
        assert_ne!(a, b);
        assert!(pa.join("nodes").is_dir() && pb.join("data").is_dir());
        update_latest(dir.path(), &a).unwrap();
        update_latest(dir.path(), &b).unwrap();
        assert_eq!(
            std::fs::read_link(dir.path().join("latest")).unwrap(),
            PathBuf::from(&b)
        );
    }

    #[test]
    fn unusable_results_dirs_are_usage_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        for (path, says) in [
            (file.clone(), "is a file"),
            (file.join("below"), "cannot hold"),
            (PathBuf::from("/dev/null"), "is not a directory"),
        ] {
            let e = create_run_dir(&path, "echo", 1).unwrap_err();
            let u = e
                .downcast_ref::<crate::UsageError>()
                .expect("a usage error");
            assert!(u.0.contains(&path.display().to_string()), "{u}");
            assert!(u.0.contains(says), "{u}");
        }
    }
}
