//! `squall soak`'s flags: every `squall run` flag (through [`RunArgs`] and its
//! `validate`), the soak's own, and the checked [`Plan`] they make.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::cli::{parse_duration_ms, RunArgs};
use crate::config::RunConfig;
use crate::{results, UsageError};

use super::kept;

/// Runs of a soak given neither `--count` nor `--duration`.
pub const DEFAULT_COUNT: u64 = 100;
/// Most `--jobs`.
pub const JOBS_MAX: u64 = 64;

const EXAMPLES: &str = "\
Examples:
  squall soak --duration 8h --jobs 2 --results-dir /data/soak
  squall soak --bug small-quorum --nemesis partition --time-limit 5s --count 50
  squall soak --mode lockstep --duration 1h --shard 3/8 --results-dir /data/soak-3
  squall summary /data/soak-0 /data/soak-1 --out /data/soak-all";

/// `squall soak` options: every `squall run` option, and these.
#[derive(Args, Debug, Clone)]
#[command(after_help = EXAMPLES)]
pub struct SoakArgs {
    /// The options of each run, as for `squall run` (`--seed` excepted: see --seed-start).
    #[command(flatten)]
    pub run: RunArgs,
    /// Stop launching runs after this long: 30m, 8h.
    #[arg(long, value_parser = parse_duration_ms)]
    pub duration: Option<u64>,
    /// Stop after this many runs (in this shard) [default: 100 without --duration].
    #[arg(long, value_parser = parse_count)]
    pub count: Option<u64>,
    /// Runs at once, each on its own seed.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=JOBS_MAX))]
    pub jobs: u64,
    /// The first seed; seeds go S, S+1, ... (with --shard i/n: S+i, S+i+n, ...).
    #[arg(long, default_value_t = 1)]
    pub seed_start: u64,
    /// Run only shard i of n (0-based): seeds S+i, S+i+n, S+i+2n, ...
    #[arg(long, default_value = "0/1", value_parser = parse_shard)]
    pub shard: Shard,
    /// Bound on the kept run directories: 500MiB, 2GiB, 10GB.
    #[arg(long, default_value = "2GiB", value_parser = kept::parse_size)]
    pub max_disk: u64,
}

/// `--shard i/n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: u64,
    /// How many shards.
    pub count: u64,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Parses a run count: at least 1.
fn parse_count(raw: &str) -> Result<u64, String> {
    match raw.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{raw}' is not a number of runs (at least 1)")),
    }
}

/// Parses `i/n` with `0 <= i < n`.
pub fn parse_shard(raw: &str) -> Result<Shard, String> {
    let bad = |why: &str| format!("'{raw}' is not a shard i/n: {why}");
    let (i, n) = raw
        .split_once('/')
        .ok_or_else(|| bad("write it as index/count, e.g. 0/4"))?;
    let index: u64 = i
        .trim()
        .parse()
        .map_err(|_| bad("the index is not a number"))?;
    let count: u64 = n
        .trim()
        .parse()
        .map_err(|_| bad("the count is not a number"))?;
    if count == 0 {
        return Err(bad("the count must be at least 1"));
    }
    if index >= count {
        return Err(bad(&format!(
            "the index is 0-based and must be below the count (0/{count} .. {}/{count})",
            count - 1
        )));
    }
    Ok(Shard { index, count })
}

/// The `k`-th seed of a shard, `None` past `u64::MAX`.
pub fn seed_of(start: u64, shard: Shard, k: u64) -> Option<u64> {
    k.checked_mul(shard.count)?
        .checked_add(shard.index)?
        .checked_add(start)
}

/// A checked soak.
pub(super) struct Plan {
    pub(super) base: RunConfig,
    pub(super) dir: PathBuf,
    pub(super) runs_dir: PathBuf,
    pub(super) count: Option<u64>,
    pub(super) duration: Option<Duration>,
    pub(super) jobs: usize,
    pub(super) seed_start: u64,
    pub(super) shard: Shard,
    pub(super) max_disk: u64,
}

impl SoakArgs {
    /// Checks the flags (those of each run through [`RunArgs::validate`]).
    pub(super) fn plan(&self) -> Result<Plan, UsageError> {
        if self.run.seed.is_some() {
            return Err(UsageError(
                "--seed: a soak runs many seeds; give the first with --seed-start".into(),
            ));
        }
        if self.duration == Some(0) {
            return Err(UsageError("--duration must be positive".into()));
        }
        let base = self.run.validate()?;
        // The run default `results` would mix soaks and single runs: a fresh directory.
        let dir = if self.run.results_dir == Path::new("results") {
            Path::new("results").join(format!("soak-{}", results::utc_stamp(unix_now())))
        } else {
            self.run.results_dir.clone()
        };
        if dir.join("soak.jsonl").exists() {
            return Err(UsageError(format!(
                "--results-dir {} already holds a soak (soak.jsonl); give another directory",
                dir.display()
            )));
        }
        let count = match (self.count, self.duration) {
            (None, None) => Some(DEFAULT_COUNT),
            (c, _) => c,
        };
        Ok(Plan {
            base,
            runs_dir: dir.join("runs"),
            dir,
            count,
            duration: self.duration.map(Duration::from_millis),
            jobs: self.jobs as usize,
            seed_start: self.seed_start,
            shard: self.shard,
            max_disk: self.max_disk,
        })
    }
}

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The algorithm as signatures name it: `paxos+small-quorum`, or the node command's
/// program names.
pub fn algorithm_label(cfg: &RunConfig) -> String {
    match &cfg.node_cmd {
        Some(argv) => argv
            .iter()
            .map(|a| a.rsplit('/').next().unwrap_or(a))
            .collect::<Vec<_>>()
            .join(" "),
        None => std::iter::once(cfg.algorithm.as_str())
            .chain(cfg.bugs.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("+"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards() {
        assert_eq!(parse_shard("0/1"), Ok(Shard { index: 0, count: 1 }));
        assert_eq!(parse_shard("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(parse_shard("3/2").unwrap_err().contains("below the count"));
        assert!(parse_shard("2/2").is_err());
        assert!(parse_shard("0/0").is_err());
        assert!(parse_shard("1").is_err());
        assert!(parse_shard("a/2").is_err());
    }

    #[test]
    fn shards_split_the_seeds() {
        let sh = |index, count| Shard { index, count };
        let seeds = |s: Shard| -> Vec<u64> { (0..4).map(|k| seed_of(10, s, k).unwrap()).collect() };
        assert_eq!(seeds(sh(0, 1)), [10, 11, 12, 13]);
        assert_eq!(seeds(sh(0, 3)), [10, 13, 16, 19]);
        assert_eq!(seeds(sh(2, 3)), [12, 15, 18, 21]);
        assert_eq!(seed_of(u64::MAX, sh(1, 2), 0), None);
    }
}
