//! A soak's `summary.json` and `summary.md` (merged across shards by [`super::merge`]).
//!
//! Failures are grouped by signature: the algorithm with its mutants, the checker and the
//! violated property (`paxos+small-quorum / consensus / agreement`). Each group keeps its
//! smallest seed, whose run directory is never pruned and is what the replay command
//! names.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::judge::Class;
use super::kept::human_bytes;
use super::round;
use crate::results;

/// Seeds listed per group (the smallest ones); the count is always exact.
pub const SEEDS_LISTED: usize = 20;
/// Pruned runs listed by seed in a summary; the count is always exact.
pub const PRUNED_LISTED: usize = 50;
/// Replays the replay command of a free-running failure asks for.
pub const REPLAY_TIMES: u32 = 10;
/// The `format` of `summary.json` this code writes and reads.
pub const FORMAT: u32 = 1;

/// `summary.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// [`FORMAT`].
    pub format: u32,
    /// False while the soak runs (the file is rewritten after every run) or if it died.
    pub complete: bool,
    /// What ended it: `count`, `duration`, `interrupt`, `usage error`; `running` before.
    pub stopped_by: String,
    /// The command line.
    pub command: String,
    /// Where the soak wrote (the directory holding this file).
    pub results_dir: String,
    /// `free` or `lockstep`.
    pub mode: String,
    /// The workload.
    pub workload: String,
    /// The algorithm with its mutants (`paxos+small-quorum`).
    pub algorithm: String,
    /// The shards covered, `i/n`.
    pub shards: Vec<String>,
    /// `--seed-start`.
    pub seed_start: u64,
    /// The smallest seed run.
    pub seed_min: Option<u64>,
    /// The largest seed run.
    pub seed_max: Option<u64>,
    /// When it started (UTC, `YYYYmmddTHHMMSSZ`).
    pub started_at: String,
    /// When it started, Unix seconds.
    pub started_unix_s: u64,
    /// When this summary was written, Unix seconds.
    pub finished_unix_s: u64,
    /// Wall time from start to this summary.
    pub duration_s: f64,
    /// Runs finished per minute of wall time.
    pub runs_per_minute: f64,
    /// Runs by class (flattened: `runs`, `valid`, `invalid`, ... at the top level).
    #[serde(flatten)]
    pub counts: Counts,
    /// Invalid runs by signature, most frequent first.
    pub failures: Vec<Group>,
    /// Unknown runs by signature.
    pub unknowns: Vec<Group>,
    /// Errored runs by message.
    pub error_groups: Vec<Group>,
    /// Kept run directories.
    pub disk: Disk,
    /// Duplicates deleted to stay under the disk bound.
    pub pruned: Pruned,
    /// Remarks (shards missing or repeated in a merge, the disk bound exceeded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Runs that failed the same way.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Group {
    /// `algorithm / checker / property` (for errors: `error / <message>`).
    pub signature: String,
    /// `invalid`, `unknown` or `error`.
    pub verdict: String,
    /// The algorithm with its mutants.
    pub algorithm: String,
    /// The checker that gave the verdict (`harness` when none did).
    pub checker: String,
    /// The property violated or not decided.
    pub property: String,
    /// Runs in the group.
    pub count: u64,
    /// `count / runs`.
    pub rate: f64,
    /// The smallest seed in the group.
    pub smallest_seed: u64,
    /// The smallest seeds (at most [`SEEDS_LISTED`]).
    pub seeds: Vec<u64>,
    /// Mean wall time of a run.
    pub mean_duration_s: f64,
    /// Longest run.
    pub max_duration_s: f64,
    /// Run id of the smallest seed's kept directory.
    pub run_id: Option<String>,
    /// That directory.
    pub dir: Option<String>,
    /// The command that replays it.
    pub replay: Option<String>,
    /// Why the smallest seed's run failed.
    pub reason: String,
    /// Its shard.
    pub shard: String,
    /// Run directories of this group deleted to stay under the disk bound.
    pub pruned: u64,
}

/// Kept run directories.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Disk {
    /// How many.
    pub kept_runs: u64,
    /// Their size.
    pub kept_bytes: u64,
    /// `--max-disk`.
    pub max_bytes: u64,
}

/// Runs finished, by how they were judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Runs finished (every class below).
    pub runs: u64,
    /// Runs judged valid.
    pub valid: u64,
    /// Runs judged invalid.
    pub invalid: u64,
    /// Runs judged unknown.
    pub unknown: u64,
    /// Runs squall itself failed on (an internal error of the run).
    pub errors: u64,
    /// Runs cut short by Ctrl-C without a violation (neither pass nor fail).
    pub interrupted: u64,
}

impl Counts {
    /// Counts one run of `class`.
    pub fn record(&mut self, class: Class) {
        self.runs += 1;
        *match class {
            Class::Valid => &mut self.valid,
            Class::Invalid => &mut self.invalid,
            Class::Unknown => &mut self.unknown,
            Class::Error => &mut self.errors,
            Class::Interrupted => &mut self.interrupted,
        } += 1;
    }

    /// Adds another shard's counts.
    pub fn add(&mut self, other: &Counts) {
        self.runs += other.runs;
        self.valid += other.valid;
        self.invalid += other.invalid;
        self.unknown += other.unknown;
        self.errors += other.errors;
        self.interrupted += other.interrupted;
    }
}

/// Pruned run directories.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pruned {
    /// How many.
    pub runs: u64,
    /// Bytes freed.
    pub bytes: u64,
    /// The first [`PRUNED_LISTED`] pruned: signature and seed.
    pub listed: Vec<PrunedRun>,
}

/// One pruned run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrunedRun {
    /// Its group's signature.
    pub signature: String,
    /// Its seed.
    pub seed: u64,
}

/// The command that replays a kept run.
pub fn replay_command(dir: &Path, mode: &str) -> String {
    let dir = shell_word(&dir.display().to_string());
    if mode == "free" {
        format!("squall replay {dir} --times {REPLAY_TIMES}")
    } else {
        format!("squall replay {dir}")
    }
}

/// `word`, quoted for a POSIX shell if it needs it.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@,".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

impl Group {
    /// A group with its first run.
    pub fn first(key: &GroupKey, seed: u64, duration_s: f64, reason: &str, shard: &str) -> Group {
        Group {
            signature: key.signature(),
            verdict: key.verdict.clone(),
            algorithm: key.algorithm.clone(),
            checker: key.checker.clone(),
            property: key.property.clone(),
            count: 1,
            rate: 0.0,
            smallest_seed: seed,
            seeds: vec![seed],
            mean_duration_s: duration_s,
            max_duration_s: duration_s,
            run_id: None,
            dir: None,
            replay: None,
            reason: reason.to_string(),
            shard: shard.to_string(),
            pruned: 0,
        }
    }

    /// Adds a run; returns whether it is the group's new smallest seed (whose directory
    /// and reason the group then shows).
    pub fn add(&mut self, seed: u64, duration_s: f64, reason: &str) -> bool {
        self.count += 1;
        self.mean_duration_s += (duration_s - self.mean_duration_s) / self.count as f64;
        self.max_duration_s = self.max_duration_s.max(duration_s);
        insert_seed(&mut self.seeds, seed);
        if seed < self.smallest_seed {
            self.smallest_seed = seed;
            self.reason = reason.to_string();
            return true;
        }
        false
    }

    /// Shows `run_id` (in `dir`) as the group's kept run.
    pub fn show_run(&mut self, run_id: Option<String>, dir: Option<&Path>, mode: &str) {
        self.run_id = run_id;
        self.dir = dir.map(|d| d.display().to_string());
        self.replay = dir.map(|d| replay_command(d, mode));
    }

    /// Folds another shard's group of the same signature in.
    pub(super) fn merge(&mut self, other: &Group) {
        let total = self.count + other.count;
        if total > 0 {
            self.mean_duration_s = (self.mean_duration_s * self.count as f64
                + other.mean_duration_s * other.count as f64)
                / total as f64;
        }
        self.count = total;
        self.max_duration_s = self.max_duration_s.max(other.max_duration_s);
        for &s in &other.seeds {
            insert_seed(&mut self.seeds, s);
        }
        self.pruned += other.pruned;
        if other.smallest_seed < self.smallest_seed {
            self.smallest_seed = other.smallest_seed;
            self.run_id = other.run_id.clone();
            self.dir = other.dir.clone();
            self.replay = other.replay.clone();
            self.reason = other.reason.clone();
            self.shard = other.shard.clone();
        }
    }
}

fn insert_seed(seeds: &mut Vec<u64>, seed: u64) {
    if let Err(at) = seeds.binary_search(&seed) {
        seeds.insert(at, seed);
        seeds.truncate(SEEDS_LISTED);
    }
}

/// What a group is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    /// `invalid`, `unknown` or `error`.
    pub verdict: String,
    /// The algorithm with its mutants.
    pub algorithm: String,
    /// The checker.
    pub checker: String,
    /// The property.
    pub property: String,
}

impl GroupKey {
    /// `algorithm / checker / property`.
    pub fn signature(&self) -> String {
        format!("{} / {} / {}", self.algorithm, self.checker, self.property)
    }

    /// The key of a run group, for the kept-runs bookkeeping.
    pub fn id(&self) -> String {
        format!("{}: {}", self.verdict, self.signature())
    }
}

impl Summary {
    /// Fills in rates and orders groups: most runs first, then by signature.
    pub fn finish_groups(&mut self) {
        let runs = self.counts.runs.max(1) as f64;
        for list in [
            &mut self.failures,
            &mut self.unknowns,
            &mut self.error_groups,
        ] {
            for g in list.iter_mut() {
                g.rate = round(g.count as f64 / runs, 4);
                g.mean_duration_s = round(g.mean_duration_s, 3);
            }
            list.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then_with(|| a.signature.cmp(&b.signature))
            });
        }
    }

    /// The exit code: 1 if any run was invalid, 2 if only unknowns (or errored runs, which
    /// the soak cannot vouch for either), 0 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.counts.invalid > 0 {
            crate::exit::INVALID
        } else if self.counts.unknown > 0 || self.counts.errors > 0 {
            crate::exit::UNKNOWN
        } else {
            crate::exit::VALID
        }
    }

    /// Writes `summary.json` and `summary.md` into `dir`, each replaced atomically.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)? + "\n";
        results::replace_text(&dir.join("summary.json"), &json)?;
        results::replace_text(&dir.join("summary.md"), &self.markdown())
    }

    /// The headline: `3 distinct failures, 41 runs`.
    pub fn headline(&self) -> String {
        let n = self.failures.len();
        format!(
            "{n} distinct failure{}, {} run{}",
            if n == 1 { "" } else { "s" },
            self.counts.runs,
            if self.counts.runs == 1 { "" } else { "s" }
        )
    }

    /// `summary.md`.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let what = if self.shards.len() > 1 {
            format!("squall summary of {} shards", self.shards.len())
        } else {
            "squall soak".to_string()
        };
        let _ = writeln!(s, "# {what}: {}\n", self.headline());
        let _ = writeln!(
            s,
            "{} runs in {} ({:.1} runs/min): {} valid, {} invalid, {} unknown, {} errors, {} interrupted.",
            self.counts.runs,
            human_duration(self.duration_s),
            self.runs_per_minute,
            self.counts.valid,
            self.counts.invalid,
            self.counts.unknown,
            self.counts.errors,
            self.counts.interrupted
        );
        let seeds = match (self.seed_min, self.seed_max) {
            (Some(a), Some(b)) => format!("seeds {a}..{b}"),
            _ => "no seeds run".to_string(),
        };
        let _ = writeln!(
            s,
            "{} on {}, {}; {seeds} (shard{} {}); started {}; {}.",
            self.algorithm,
            self.workload,
            if self.mode == "free" {
                "free-running"
            } else {
                &self.mode
            },
            if self.shards.len() > 1 { "s" } else { "" },
            self.shards.join(", "),
            self.started_at,
            if self.complete {
                format!("stopped by {}", self.stopped_by)
            } else {
                "still running or cut off (summary as of the last finished run)".to_string()
            }
        );
        let _ = writeln!(s, "\nCommand: `{}`", self.command);
        for note in &self.notes {
            let _ = writeln!(s, "\nNote: {note}");
        }
        section(&mut s, "Failures", "No failures.", &self.failures);
        section(&mut s, "Unknowns", "No unknowns.", &self.unknowns);
        if !self.error_groups.is_empty() {
            section(&mut s, "Errors", "", &self.error_groups);
        }
        let _ = writeln!(
            s,
            "\n## Disk\n\n{} kept, {} (limit {}); {} pruned ({}).",
            counted(self.disk.kept_runs, "run dir"),
            human_bytes(self.disk.kept_bytes),
            human_bytes(self.disk.max_bytes),
            counted(self.pruned.runs, "duplicate run dir"),
            human_bytes(self.pruned.bytes)
        );
        if !self.pruned.listed.is_empty() {
            let mut by_sig: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for p in &self.pruned.listed {
                by_sig
                    .entry(&p.signature)
                    .or_default()
                    .push(p.seed.to_string());
            }
            for (sig, seeds) in by_sig {
                let _ = writeln!(s, "- pruned `{sig}`: seeds {}", seeds.join(", "));
            }
            if self.pruned.runs > self.pruned.listed.len() as u64 {
                let _ = writeln!(
                    s,
                    "- and {} more (soak.jsonl lists every run)",
                    self.pruned.runs - self.pruned.listed.len() as u64
                );
            }
        }
        s
    }
}

fn section(s: &mut String, title: &str, none: &str, groups: &[Group]) {
    let _ = writeln!(s, "\n## {title}\n");
    if groups.is_empty() {
        let _ = writeln!(s, "{none}");
        return;
    }
    let _ = writeln!(
        s,
        "| # | signature | runs | rate | smallest seed | run time mean / max |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for (i, g) in groups.iter().enumerate() {
        let _ = writeln!(
            s,
            "| {} | `{}` | {} | {:.1}% | {} | {:.1} s / {:.1} s |",
            i + 1,
            g.signature,
            g.count,
            100.0 * g.rate,
            g.smallest_seed,
            g.mean_duration_s,
            g.max_duration_s
        );
    }
    for (i, g) in groups.iter().enumerate() {
        let _ = writeln!(s, "\n### {}. {}\n", i + 1, g.signature);
        let listed: Vec<String> = g.seeds.iter().map(u64::to_string).collect();
        let more = g.count.saturating_sub(g.seeds.len() as u64);
        let _ = writeln!(
            s,
            "- seeds: {}{}",
            listed.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
        match (&g.dir, &g.replay) {
            (Some(dir), Some(replay)) => {
                let _ = writeln!(s, "- kept run (seed {}): `{dir}`", g.smallest_seed);
                let _ = writeln!(s, "- replay: `{replay}`");
            }
            _ => {
                let _ = writeln!(s, "- no run directory");
            }
        }
        if g.shard != "0/1" {
            let _ = writeln!(s, "- shard: {}", g.shard);
        }
        let _ = writeln!(s, "- reason: {}", g.reason);
        if g.pruned > 0 {
            let _ = writeln!(s, "- {} pruned", counted(g.pruned, "duplicate run dir"));
        }
    }
}

/// `1 run dir`, `3 run dirs`.
fn counted(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// `12.3 s`, `10m 02s`, `8h 00m 12s`.
pub fn human_duration(secs: f64) -> String {
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let t = secs.round() as u64;
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

/// A small-quorum Paxos failure's group key, for the soak's tests.
#[cfg(test)]
pub(crate) fn test_key(property: &str) -> GroupKey {
    GroupKey {
        verdict: "invalid".into(),
        algorithm: "paxos+small-quorum".into(),
        checker: "consensus".into(),
        property: property.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(property: &str) -> GroupKey {
        test_key(property)
    }

    #[test]
    fn a_group_tracks_its_smallest_seed_and_durations() {
        let mut g = Group::first(&key("agreement"), 7, 1.0, "seven", "0/1");
        assert!(!g.add(9, 3.0, "nine"));
        assert!(g.add(3, 2.0, "three"));
        assert_eq!(
            (g.count, g.smallest_seed, g.reason.as_str()),
            (3, 3, "three")
        );
        assert_eq!(g.seeds, [3, 7, 9]);
        assert!((g.mean_duration_s - 2.0).abs() < 1e-9);
        assert_eq!(g.max_duration_s, 3.0);
        assert_eq!(g.signature, "paxos+small-quorum / consensus / agreement");
    }

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/tmp/soak/runs/x-s1"), "/tmp/soak/runs/x-s1");
        assert_eq!(shell_word("my dir"), "'my dir'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human_duration(12.34), "12.3 s");
        assert_eq!(human_duration(602.0), "10m 02s");
        assert_eq!(human_duration(28_812.0), "8h 00m 12s");
    }
}
