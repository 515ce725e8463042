//! `squall soak` and `squall summary` end to end. Runs are lockstep (deterministic and
//! a fraction of a second each): three paxos nodes with the small-quorum mutant under
//! partitions every 300 ms fail on seeds 1, 2, 5 and 6 and pass on 3 and 4.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// `squall soak` of [`SMALL_QUORUM`] in lockstep, 1 s runs; each test adds its count.
fn mutant() -> Vec<&'static str> {
    [
        &["soak", "--mode", "lockstep"][..],
        SMALL_QUORUM,
        MUTANT_TIMING,
    ]
    .concat()
}

const MUTANT_TIMING: &[&str] = &[
    "--nemesis-interval",
    "300ms",
    "--nodes",
    "3",
    "--time-limit",
    "1s",
    "--recovery-time",
    "500ms",
];

/// Runs `squall` with `args` then `extra`, and `--results-dir dir`.
fn soak(dir: &Path, args: &[&str], extra: &[&str]) -> Output {
    run_in(dir, &[args, extra].concat()).0
}

fn records(dir: &Path) -> Vec<Value> {
    jsonl(&dir.join("soak.jsonl"))
}

fn seeds(dir: &Path) -> Vec<u64> {
    let mut s: Vec<u64> = records(dir)
        .iter()
        .map(|r| r["seed"].as_u64().expect("seed"))
        .collect();
    s.sort_unstable();
    s
}

/// The fields `keys` of `v` as integers.
fn u64s<const N: usize>(v: &Value, keys: [&str; N]) -> [Option<u64>; N] {
    keys.map(|k| v[k].as_u64())
}

/// Names of the run directories left under `dir/runs`.
fn run_dirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("runs"))
        .expect("runs dir")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A fresh temporary directory (removed when dropped) and the path `name` in it, for
/// a soak's output.
fn soak_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    (tmp, dir)
}

/// A soak of [`mutant`] with `extra` flags, which finds a failure (exit 1): its
/// temporary directory, its soak directory, its output and its `summary.json`.
fn failing_mutant_soak(extra: &[&str]) -> (tempfile::TempDir, PathBuf, Output, Value) {
    let (tmp, dir) = soak_dir("soak");
    let out = soak(&dir, &mutant(), extra);
    assert_exit(&out, 1);
    let summary = json(&dir.join("summary.json"));
    (tmp, dir, out, summary)
}

#[test]
fn a_mutant_soak_groups_its_failures_and_keeps_only_their_runs() {
    let (_tmp, dir, out, summary) = failing_mutant_soak(&["--count", "4", "--jobs", "2"]);
    assert_eq!(summary["complete"], true);
    assert_eq!(summary["stopped_by"], "count");
    assert_eq!(u64s(&summary, ["runs", "invalid"]), [Some(4), Some(2)]);
    assert_eq!(summary["valid"], 2);
    let failures = summary["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    assert_eq!(f["signature"], "paxos+small-quorum / consensus / agreement");
    assert_eq!(u64s(f, ["count", "smallest_seed"]), [Some(2), Some(1)]);
    assert_eq!(f["seeds"], serde_json::json!([1, 2]));
    let kept = Path::new(f["dir"].as_str().expect("a kept dir"));
    assert!(kept.join("verdict.json").is_file());

    // Passing runs leave a line and no directory; failing ones keep theirs.
    let recs = records(&dir);
    assert_eq!(recs.len(), 4);
    for r in &recs {
        let invalid = r["verdict"] == "invalid";
        assert_eq!(r["kept"], invalid, "{r}");
        assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
        assert!(r["faults"]["cut"].is_u64(), "{r}");
        let run_dir = dir.join("runs").join(r["run_id"].as_str().unwrap());
        assert_eq!(run_dir.is_dir(), invalid, "{}", run_dir.display());
    }
    assert_eq!(run_dirs(&dir).len(), 2);

    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(md.contains("1 distinct failure, 4 runs"), "{md}");
    // stderr is not a terminal here: the progress shows as plain lines.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("runs 4 (") && err.contains("invalid 2"),
        "{err}"
    );

    // The replay command in the summary reproduces the failure.
    let replay = f["replay"].as_str().unwrap();
    let argv = shlex::split(replay).unwrap();
    assert_eq!(argv[..2], ["squall", "replay"]);
    let argv: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    assert_says(&argv, 0, "reproduced 1 of 1");
}

#[test]
fn shards_take_every_nth_seed_and_summary_merges_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("shard-0"), tmp.path().join("shard-1"));
    for (dir, shard) in [(&a, "0/2"), (&b, "1/2")] {
        let out = soak(dir, &mutant(), &["--count", "2", "--shard", shard]);
        assert_exit(&out, 1);
    }
    assert_eq!(seeds(&a), [1, 3]);
    assert_eq!(seeds(&b), [2, 4]);
    assert_eq!(
        json(&b.join("summary.json"))["shards"],
        serde_json::json!(["1/2"])
    );

    let merged = tmp.path().join("all");
    let out = squall(&["summary"])
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    assert_exit(&out, 1);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 distinct failure, 4 runs"),
        "{}",
        text(&out)
    );
    let m = json(&merged.join("summary.json"));
    assert_eq!(u64s(&m, ["runs", "invalid"]), [Some(4), Some(2)]);
    assert_eq!(m["shards"], serde_json::json!(["0/2", "1/2"]));
    let f = &m["failures"].as_array().unwrap()[0];
    assert_eq!(u64s(f, ["count", "smallest_seed"]), [Some(2), Some(1)]);
    assert_eq!(f["shard"], "0/2");
    assert!(f["dir"].as_str().unwrap().starts_with(a.to_str().unwrap()));
    assert!(merged.join("summary.md").is_file());
}

#[test]
fn seed_start_offsets_every_shard() {
    let (_tmp, dir) = soak_dir("s");
    let args = argv(
        "soak --mode lockstep --nodes 3 --nemesis none --time-limit 300ms --recovery-time 200ms",
    );
    let out = soak(
        &dir,
        &args,
        &["--count", "3", "--seed-start", "10", "--shard", "1/3"],
    );
    assert_exit(&out, 0);
    assert_eq!(seeds(&dir), [11, 14, 17]);
    let s = json(&dir.join("summary.json"));
    assert_eq!(u64s(&s, ["seed_min", "seed_max"]), [Some(11), Some(17)]);
    assert_eq!(run_dirs(&dir), Vec::<String>::new());
}

#[test]
fn disk_bound_prunes_duplicates_but_never_the_first_example() {
    let (_tmp, dir, _, s) = failing_mutant_soak(&["--count", "6", "--max-disk", "1"]);
    assert_eq!(s["invalid"], 4);
    assert_eq!(s["pruned"]["runs"], 3);
    let f = &s["failures"][0];
    assert_eq!(u64s(f, ["smallest_seed", "pruned"]), [Some(1), Some(3)]);
    let left = run_dirs(&dir);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].ends_with("-s1"), "{left:?}");
    assert!(
        s["notes"][0].as_str().unwrap().contains("--max-disk"),
        "{s}"
    );
}

#[test]
fn an_interrupted_soak_stops_its_runs_and_writes_the_summary() {
    let (_tmp, dir) = soak_dir("soak");
    let args =
        argv("soak --workload echo --nodes 3 --nemesis none --time-limit 30s --jobs 2 --count 10");
    let child = spawn_in(&args, &dir, Stdio::piped);
    let nodes = wait_for_children(child.id(), 6);
    std::thread::sleep(Duration::from_millis(500));
    interrupt(&child);
    let out = child.wait_with_output().expect("wait squall");
    assert_exit(&out, 0);
    assert!(nodes.iter().all(|p| !alive(*p)), "nodes outlived the soak");
    let s = json(&dir.join("summary.json"));
    assert_eq!(
        (s["complete"].as_bool(), s["stopped_by"].as_str()),
        (Some(true), Some("interrupt"))
    );
    assert_eq!(u64s(&s, ["runs", "interrupted"]), [Some(2), Some(2)]);
    assert_eq!(run_dirs(&dir), Vec::<String>::new());
}

#[test]
fn bad_flags_exit_254_naming_the_flag() {
    let (tmp, dir) = soak_dir("soak");
    for (flag, value) in [
        ("--shard", "3/2"),
        ("--jobs", "0"),
        ("--count", "0"),
        ("--max-disk", "lots"),
        ("--duration", "0"),
        ("--seed", "7"),
    ] {
        let out = soak(&dir, &["soak", flag, value], &[]);
        assert_eq!(
            out.status.code(),
            Some(254),
            "{flag} {value}: {}",
            text(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(flag),
            "{flag} {value}: {}",
            text(&out)
        );
    }
    assert!(!dir.exists(), "a refused soak wrote {}", dir.display());
    let out = squall(&["summary"])
        .arg(tmp.path().join("nothing"))
        .output()
        .unwrap();
    assert_exit(&out, 254);
}
