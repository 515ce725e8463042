//! Porcupine's corpus: verdicts must equal `expected.tsv` (102 etcd logs, 6 kv files).
//!
//! The corpus lives in `shared/data/porcupine-test-data` beside the workspace; where it
//! is absent the test says so and passes.

use std::path::PathBuf;

use lincheck::{cmd, CheckOptions, Verdict};

fn corpus_dir() -> Option<PathBuf> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/porcupine-test-data");
    if dir.join("expected.tsv").exists() {
        Some(dir)
    } else {
        println!("SKIPPED: Porcupine corpus not found at {}", dir.display());
        None
    }
}

fn check_corpus(opts: &CheckOptions) {
    let Some(dir) = corpus_dir() else { return };
    let expected = std::fs::read_to_string(dir.join("expected.tsv")).expect("readable");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for line in expected.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        let (file, linearizable) = (fields[0], fields[1] == "true");
        let got = cmd::check_file(&dir.join(file), None, None, opts).expect("checks");
        let valid = match got.outcome.verdict {
            Verdict::Valid => true,
            Verdict::Invalid { .. } => false,
            Verdict::Unknown { .. } => {
                wrong.push(format!("{file}: unknown"));
                continue;
            }
        };
        if valid != linearizable {
            wrong.push(format!("{file}: expected linearizable={linearizable}"));
        }
        checked += 1;
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(checked, 108, "102 etcd logs and 6 kv files");
}

#[test]
fn verdicts_match_porcupine() {
    check_corpus(&CheckOptions {
        threads: 1,
        ..CheckOptions::default()
    });
}

#[test]
fn verdicts_match_on_all_cores() {
    check_corpus(&CheckOptions::default());
}

/// Explanations of a few invalid files: a stuck op per failing partition, a small
/// failing window, and the whole outcome as JSON.
#[test]
fn explanations_of_invalid_files() {
    let Some(dir) = corpus_dir() else { return };
    let opts = CheckOptions {
        verbose: true,
        ..CheckOptions::default()
    };
    for file in [
        "jepsen/etcd_000.log",
        "jepsen/etcd_001.log",
        "kv/c01-bad.txt",
        "kv/c10-bad.txt",
    ] {
        let got = cmd::check_file(&dir.join(file), None, None, &opts).expect("checks");
        let Verdict::Invalid { explanation } = &got.outcome.verdict else {
            panic!("{file}: expected invalid");
        };
        assert!(!explanation.partitions.is_empty(), "{file}");
        for p in &explanation.partitions {
            assert!(p.stuck.is_some(), "{file}: {p:?}");
            assert!(p.linearized.len() < p.ops, "{file}: {p:?}");
        }
        let w = explanation.window.as_ref().expect("a window");
        // The kv windows shrink fully; an etcd window may stop short when a test
        // runs out of states (its many crashed ops make relaxed searches costly).
        assert!(w.minimal || file.starts_with("jepsen/"), "{file}: {w:?}");
        assert!(!w.ops.is_empty() && w.ops.len() <= 8, "{file}: {w:?}");
        let text = explanation.to_string();
        assert!(text.contains("failing window"), "{file}: {text}");
        let serialised = serde_json::to_string(&got.outcome).expect("serialises");
        assert!(
            serialised.contains("\"verdict\":\"invalid\""),
            "{serialised}"
        );
    }
}

#[test]
fn empty_etcd_log_is_valid() {
    let Some(dir) = corpus_dir() else { return };
    let got = cmd::check_file(
        &dir.join("jepsen/etcd_095.log"),
        None,
        None,
        &CheckOptions::default(),
    )
    .expect("checks");
    assert_eq!(got.outcome.verdict, Verdict::Valid);
}
