//! `squall bench rounds` end to end on a tiny grid: real paxos nodes, three of them, one
//! and two contending proposers with randomized exponential backoff, 2 s per cell.

mod common;

use common::{json, squall};

#[test]
fn tiny_grid_one_proposer_decides_in_one_round() {
    let results = tempfile::tempdir().expect("tempdir");
    let out_json = results.path().join("cells.json");
    let out = squall(&[
        "bench",
        "rounds",
        "--nodes",
        "3",
        "--proposers",
        "1,2",
        "--backoff",
        "exp-random",
        "--drop",
        "0",
        "--time-limit",
        "2s",
        "--pings",
        "500",
        "--quiet",
        "--results-dir",
        results.path().to_str().expect("utf8 path"),
        "--json",
        out_json.to_str().expect("utf8 path"),
    ])
    .output()
    .expect("run squall bench rounds");
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
    }
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
