//! The run directories a soak keeps (invalid, unknown and errored runs) and the bound on
//! their disk use.
//!
//! When the kept directories exceed `--max-disk`, duplicates go first, oldest first: a
//! duplicate is a run whose group (signature) has a kept run with a smaller seed. The
//! smallest-seed run of each group, the one the summary points at and tells you to replay,
//! is never pruned; if those alone exceed the bound, nothing more is pruned and the summary
//! says the bound was exceeded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One kept run directory.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptRun {
    /// The group it belongs to (verdict and signature).
    pub group: String,
    /// Its seed.
    pub seed: u64,
    /// Its directory.
    pub dir: PathBuf,
    /// Its size on disk when it was kept.
    pub bytes: u64,
}

/// The kept runs, in the order they were kept (oldest first).
#[derive(Debug, Default)]
pub struct Kept {
    runs: Vec<KeptRun>,
    bytes: u64,
}

impl Kept {
    /// Bytes the kept directories take.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// How many directories are kept.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Records a newly kept run.
    pub fn add(&mut self, run: KeptRun) {
        self.bytes += run.bytes;
        self.runs.push(run);
    }

    /// Deletes duplicates, oldest first, until the kept runs fit in `max_bytes`; returns
    /// the runs deleted. A directory that cannot be deleted is still forgotten (and its
    /// bytes no longer counted), so one bad directory cannot stall the soak.
    pub fn prune(&mut self, max_bytes: u64) -> Vec<KeptRun> {
        let doomed = prune_plan(&self.runs, max_bytes);
        let mut pruned = Vec::with_capacity(doomed.len());
        // Indices are ascending; remove from the back so earlier ones stay valid.
        for &i in doomed.iter().rev() {
            let run = self.runs.remove(i);
            if let Err(e) = std::fs::remove_dir_all(&run.dir) {
                tracing::warn!(dir = %run.dir.display(), error = %e, "cannot prune a run dir");
            }
            self.bytes -= run.bytes;
            pruned.push(run);
        }
        pruned.reverse();
        pruned
    }
}

/// Which runs to delete (indices into `runs`, ascending) so the rest fit in `max_bytes`:
/// duplicates only, in the order they were kept.
pub fn prune_plan(runs: &[KeptRun], max_bytes: u64) -> Vec<usize> {
    let mut total: u64 = runs.iter().map(|r| r.bytes).sum();
    if total <= max_bytes {
        return Vec::new();
    }
    let mut first: BTreeMap<&str, u64> = BTreeMap::new();
    for r in runs {
        let seed = first.entry(&r.group).or_insert(r.seed);
        *seed = (*seed).min(r.seed);
    }
    let mut doomed = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        if total <= max_bytes {
            break;
        }
        if first[r.group.as_str()] < r.seed {
            doomed.push(i);
            total -= r.bytes;
        }
    }
    doomed
}

/// Bytes of the files under `dir` (symlinks are not followed). No recursion: an explicit
/// stack.
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// Parses a size: `500MiB`, `2GiB`, `1.5GB`, `100M`, `4096` (bytes). Binary units (`KiB`,
/// `MiB`, `GiB`, `TiB`, and `K`, `M`, `G`, `T` as `du` means them) are powers of 1024;
/// `KB`, `MB`, `GB`, `TB` are powers of 1000. Case does not matter.
pub fn parse_size(raw: &str) -> Result<u64, String> {
    let bad = || format!("'{raw}' is not a size (e.g. 500MiB, 2GiB, 10GB)");
    let lower = raw.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let mult: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        _ => return Err(bad()),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    let bytes = v * mult;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `1.5 GiB`, `12.0 MiB`, `900 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(group: &str, seed: u64, bytes: u64) -> KeptRun {
        KeptRun {
            group: group.into(),
            seed,
            dir: PathBuf::from(format!("runs/s{seed}")),
            bytes,
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("2gib"), Ok(2 << 30));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("2 parsecs").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("-1GiB").is_err());
        assert_eq!(human_bytes(900), "900 B");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn nothing_is_pruned_under_the_bound() {
        let runs = [run("a", 1, 10), run("a", 2, 10)];
        assert!(prune_plan(&runs, 20).is_empty());
    }

    #[test]
    fn oldest_duplicates_go_first_and_first_examples_never() {
        // Kept in this order; seed 3 of group a finished before seed 1.
        let runs = [
            run("a", 3, 10),
            run("b", 2, 10),
            run("a", 1, 10),
            run("a", 5, 10),
            run("b", 4, 10),
        ];
        // Over by 10: the oldest duplicate is a/3 (a/1 has a smaller seed).
        assert_eq!(prune_plan(&runs, 40), [0]);
        // Over by 25: a/3, a/5, b/4 in the order kept.
        assert_eq!(prune_plan(&runs, 25), [0, 3, 4]);
        // The first examples a/1 and b/2 alone exceed 5: they stay anyway.
        assert_eq!(prune_plan(&runs, 5), [0, 3, 4]);
    }

    #[test]
    fn prune_deletes_the_directories_and_forgets_their_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kept = Kept::default();
        for seed in [1, 2] {
            let dir = tmp.path().join(format!("s{seed}"));
            std::fs::create_dir_all(dir.join("nodes")).unwrap();
            std::fs::write(dir.join("nodes/n1.log"), vec![b'x'; 100]).unwrap();
            assert_eq!(dir_bytes(&dir), 100);
            kept.add(KeptRun {
                group: "g".into(),
                seed,
                dir,
                bytes: 100,
            });
        }
        let pruned = kept.prune(150);
        assert_eq!(pruned.len(), 1);
        assert_eq!(pruned[0].seed, 2);
        assert!(!tmp.path().join("s2").exists());
        assert!(tmp.path().join("s1").exists());
        assert_eq!((kept.len(), kept.bytes()), (1, 100));
    }
}
