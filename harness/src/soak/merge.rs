//! `squall summary DIR...`: the summaries of shards (`--shard i/n`, one results
//! directory each) merged into one. Counts add up; a signature found by several shards
//! becomes one group with the smallest seed overall; kept runs are named again under each
//! shard's directory as given (`DIR/runs/<run_id>`), wherever the shard was when it wrote
//! them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;

use super::summary::{replay_command, shell_word, Group, Summary, FORMAT, PRUNED_LISTED};
use crate::{results, UsageError};

/// `squall summary` options.
#[derive(Args, Debug, Clone)]
pub struct SummaryArgs {
    /// Soak results directories (each with a summary.json), typically one per shard.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Also write the merged summary.md and summary.json into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Reads a soak directory's `summary.json` (or the file itself).
pub fn load(path: &Path) -> Result<(PathBuf, Summary), UsageError> {
    let (dir, file) = if path.is_dir() {
        (path.to_path_buf(), path.join("summary.json"))
    } else {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        (dir, path.to_path_buf())
    };
    let summary: Summary = results::read_json(&file).map_err(|e| UsageError(format!("{e:#}")))?;
    if summary.format != FORMAT {
        return Err(UsageError(format!(
            "{}: summary format {} is not {FORMAT}",
            file.display(),
            summary.format
        )));
    }
    Ok((dir, summary))
}

/// Merges shard summaries: counts add up, groups of one signature become one with the
/// smallest seed overall, and kept runs are named under each shard's directory as given.
pub fn merge(inputs: &[(PathBuf, Summary)], command: &str) -> Summary {
    let mut out = Summary {
        format: FORMAT,
        complete: inputs.iter().all(|(_, s)| s.complete),
        command: command.to_string(),
        ..Summary::default()
    };
    let distinct = |f: fn(&Summary) -> &str| {
        let mut v: Vec<&str> = inputs.iter().map(|(_, s)| f(s)).collect();
        v.sort_unstable();
        v.dedup();
        v.join(", ")
    };
    out.stopped_by = distinct(|s| &s.stopped_by);
    out.seed_start = inputs.iter().map(|(_, s)| s.seed_start).min().unwrap_or(1);
    out.seed_min = inputs.iter().filter_map(|(_, s)| s.seed_min).min();
    out.seed_max = inputs.iter().filter_map(|(_, s)| s.seed_max).max();
    out.started_unix_s = inputs
        .iter()
        .map(|(_, s)| s.started_unix_s)
        .min()
        .unwrap_or(0);
    out.mode = distinct(|s| &s.mode);
    out.workload = distinct(|s| &s.workload);
    out.algorithm = distinct(|s| &s.algorithm);
    let mut groups: [BTreeMap<String, Group>; 3] = Default::default();
    let mut seen_shards: BTreeMap<String, usize> = BTreeMap::new();
    for (dir, s) in inputs {
        for sh in &s.shards {
            *seen_shards.entry(sh.clone()).or_default() += 1;
            out.shards.push(sh.clone());
        }

        out.finished_unix_s = out.finished_unix_s.max(s.finished_unix_s);
        out.duration_s = out.duration_s.max(s.duration_s);
        out.counts.add(&s.counts);
        out.disk.kept_runs += s.disk.kept_runs;
        out.disk.kept_bytes += s.disk.kept_bytes;
        out.disk.max_bytes += s.disk.max_bytes;
        out.pruned.runs += s.pruned.runs;
        out.pruned.bytes += s.pruned.bytes;
        out.pruned.listed.extend(s.pruned.listed.iter().cloned());
        for note in &s.notes {
            out.notes.push(format!("{}: {note}", dir.display()));
        }
        for (list, into) in [&s.failures, &s.unknowns, &s.error_groups]
            .into_iter()
            .zip(groups.iter_mut())
        {
            for g in list {
                let mut g = g.clone();
                if let Some(id) = &g.run_id {
                    let run_dir = dir.join("runs").join(id);
                    g.dir = Some(run_dir.display().to_string());
                    g.replay = Some(replay_command(&run_dir, &s.mode));
                }
                match into.get_mut(&g.signature) {
                    Some(have) => have.merge(&g),
                    None => {
                        into.insert(g.signature.clone(), g);
                    }
                }
            }
        }
    }
    out.pruned.listed.truncate(PRUNED_LISTED);
    // Shards ran side by side or one after another: the wall span covers both.
    let span = out.finished_unix_s.saturating_sub(out.started_unix_s) as f64;
    out.duration_s = out.duration_s.max(span);
    out.runs_per_minute = super::per_minute(out.counts.runs, out.duration_s);
    out.started_at = results::utc_stamp(out.started_unix_s);
    let [failures, unknowns, errors] = groups;
    out.failures = failures.into_values().collect();
    out.unknowns = unknowns.into_values().collect();
    out.error_groups = errors.into_values().collect();
    out.finish_groups();
    out.notes.extend(shard_notes(&seen_shards));
    out
}

/// Shards given twice, and shards of an `i/n` set that are missing.
fn shard_notes(seen: &BTreeMap<String, usize>) -> Vec<String> {
    let mut notes = Vec::new();
    for (sh, n) in seen {
        if *n > 1 {
            notes.push(format!("shard {sh} is counted {n} times"));
        }
    }
    let counts: Vec<u64> = seen
        .keys()
        .filter_map(|s| s.split_once('/').and_then(|(_, n)| n.parse().ok()))
        .collect();
    if let Some(&n) = counts.first() {
        if counts.iter().all(|&c| c == n) {
            let missing: Vec<String> = (0..n)
                .map(|i| format!("{i}/{n}"))
                .filter(|s| !seen.contains_key(s))
                .collect();
            if !missing.is_empty() && missing.len() <= 64 {
                notes.push(format!("shards missing: {}", missing.join(", ")));
            } else if !missing.is_empty() {
                notes.push(format!("{} of {n} shards missing", missing.len()));
            }
        }
    }
    notes
}

/// `squall summary DIR...`: prints the merged summary as markdown; with `--out`, writes
/// it there too. Exits as a soak would on the merged counts.
pub fn summary(args: &SummaryArgs) -> anyhow::Result<u8> {
    let mut inputs = Vec::new();
    for d in &args.dirs {
        inputs.push(load(d)?);
    }
    let command = std::iter::once("squall summary".to_string())
        .chain(
            args.dirs
                .iter()
                .map(|d| shell_word(&d.display().to_string())),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let mut merged = merge(&inputs, &command);
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)
            .map_err(|e| UsageError(format!("--out {}: {e}", out.display())))?;
        merged.results_dir = out.display().to_string();
        merged.write(out)?;
    }
    print!("{}", merged.markdown());
    Ok(merged.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::summary::{Counts, GroupKey};

    fn key(property: &str) -> GroupKey {
        crate::soak::summary::test_key(property)
    }

    fn shard(i: u32, runs: u64, seeds: &[u64]) -> Summary {
        let mut g = Group::first(&key("agreement"), seeds[0], 2.0, "first", "x");
        g.show_run(
            Some(format!("r{}", seeds[0])),
            Some(Path::new("elsewhere")),
            "free",
        );
        for &s in &seeds[1..] {
            if g.add(s, 4.0, &format!("seed {s}")) {
                g.show_run(Some(format!("r{s}")), Some(Path::new("elsewhere")), "free");
            }
        }
        g.shard = format!("{i}/2");
        let mut s = Summary {
            format: FORMAT,
            complete: true,
            stopped_by: "count".into(),
            mode: "free".into(),
            shards: vec![format!("{i}/2")],
            counts: Counts {
                runs,
                invalid: seeds.len() as u64,
                valid: runs - seeds.len() as u64,
                ..Counts::default()
            },
            seed_min: Some(1 + u64::from(i)),
            seed_max: Some(9 + u64::from(i)),
            started_unix_s: 1000,
            finished_unix_s: 1060,
            duration_s: 60.0,
            failures: vec![g],
            ..Summary::default()
        };
        s.finish_groups();
        s
    }

    #[test]
    fn merging_groups_signatures_across_shards() {
        let a = shard(0, 10, &[4, 6]);
        let b = shard(1, 10, &[3, 9, 11]);
        let m = merge(
            &[(PathBuf::from("s0"), a), (PathBuf::from("s1"), b)],
            "squall summary s0 s1",
        );
        assert_eq!(
            (m.counts.runs, m.counts.invalid, m.counts.valid),
            (20, 5, 15)
        );
        assert_eq!(m.failures.len(), 1);
        let g = &m.failures[0];
        assert_eq!((g.count, g.smallest_seed), (5, 3));
        assert_eq!(g.seeds, [3, 4, 6, 9, 11]);
        assert_eq!(g.dir.as_deref(), Some("s1/runs/r3"));
        assert_eq!(
            g.replay.as_deref(),
            Some("squall replay s1/runs/r3 --times 10")
        );
        assert!((g.rate - 0.25).abs() < 1e-9);
        assert_eq!(m.shards, ["0/2", "1/2"]);
        assert!(m.notes.is_empty(), "{:?}", m.notes);
        assert_eq!((m.seed_min, m.seed_max), (Some(1), Some(10)));
        assert!((m.runs_per_minute - 20.0).abs() < 1e-9);
        assert_eq!(m.exit_code(), 1);
        assert!(m.markdown().contains("1 distinct failure, 20 runs"));
    }

    #[test]
    fn missing_and_repeated_shards_are_noted() {
        let a = shard(0, 10, &[4]);
        let m = merge(
            &[(PathBuf::from("a"), a.clone()), (PathBuf::from("b"), a)],
            "",
        );
        assert_eq!(
            m.notes,
            ["shard 0/2 is counted 2 times", "shards missing: 1/2"]
        );
    }
}
