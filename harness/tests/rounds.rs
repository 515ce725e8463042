//! `squall bench rounds` end to end on a tiny grid: real paxos nodes, three of them, one
//! and two contending proposers with randomized exponential backoff, 2 s per cell, node
//! data in a scratch directory.

mod common;

use common::{argv, json, jsonl, squall};

#[test]
fn tiny_grid_one_proposer_decides_in_one_round() {
    let results = tempfile::tempdir().expect("tempdir");
    let out_json = results.path().join("cells.json");
    let scratch = results.path().join("scratch");
    let grid = "bench rounds --nodes 3 --proposers 1,2 --backoff exp-random --drop 0";
    let line = format!("{grid} --time-limit 2s --pings 500 --quiet");
    let mut args = argv(&line);
    let utf8 = |p: &std::path::Path| p.to_str().expect("utf8 path").to_string();
    let paths = [utf8(&scratch), utf8(results.path()), utf8(&out_json)];
    for (flag, path) in ["--data-dir", "--results-dir", "--json"].iter().zip(&paths) {
        args.extend([*flag, path.as_str()]);
    }
    let out = squall(&args).output().expect("run squall bench rounds");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("| N | k | backoff |"), "no table: {stdout}");

    let cells = json(&out_json);
    let cells = cells.as_array().expect("an array of cells");
    assert_eq!(cells.len(), 2, "one cell per k: {cells:?}");
    for c in cells {
        for field in [
            "nodes",
            "proposers",
            "backoff",
            "drop",
            "decisions",
            "rounds_mean",
            "rounds_p50",
            "rounds_p99",
            "rounds_max",
            "latency_p50_rtt",
            "latency_p99_rtt",
            "msgs_per_decision",
        ] {
            assert!(c.get(field).is_some(), "cell lacks {field}: {c}");
        }
        assert!(
            c["decisions"].as_u64().unwrap() > 10,
            "too few decisions: {c}"
        );
        assert!(c["msgs_per_decision"].as_f64().unwrap() > 0.0, "{c}");
        // A decision comes after its first ballot.
        let ballot = c["ballot_p50_us"].as_f64().unwrap();
        assert!(
            ballot > 0.0 && ballot < c["latency_p50_us"].as_f64().unwrap(),
            "{c}"
        );
        // The nodes' data went to the scratch directory and left with the run.
        let run_dir = std::path::PathBuf::from(c["run_dir"].as_str().unwrap());
        let reports = jsonl(&run_dir.join("reports.jsonl"));
        for r in &reports {
            let (made, arrived) = (r["made"].as_u64(), r["time"].as_u64().unwrap());
            let made = made.unwrap_or_else(|| panic!("a free-running report is stamped: {r}"));
            assert!(made <= arrived + 1_000, "made after it arrived: {r}");
        }
        assert!(!reports.is_empty());
    }
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .expect("the scratch directory exists")
        .collect();
    assert!(left.is_empty(), "node data left in {scratch:?}: {left:?}");
    let k1 = cells
        .iter()
        .find(|c| c["proposers"] == 1)
        .expect("the k=1 cell");
    assert_eq!(k1["rounds_max"], 1, "k=1 must decide in one round: {k1}");
    assert_eq!(k1["rounds_mean"].as_f64(), Some(1.0), "{k1}");
    assert_eq!(k1["undecided"], 0, "{k1}");

    let bench_dir = std::fs::read_dir(results.path())
        .expect("results dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("bench-rounds-"))
        })
        .expect("a bench-rounds directory");
    let svg = std::fs::read_to_string(bench_dir.join("rounds.svg")).expect("rounds.svg");
    assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{svg}");
}
