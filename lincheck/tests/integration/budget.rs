//! Budgets: a pathological history ends in `Unknown` with a reason, within the budget,
//! and memory stays under the cap.

use lincheck::{
    check, CheckOptions, History, Input, ModelKind, Op, OpOutcome, Outcome, Partial, UnknownReason,
    Value, Verdict,
};

/// `appenders` crashed appends of `"a"`, `"aa"`, ... (`appenders` a's) and a crashed
/// put, all concurrent and never returning, then a get of `appenders` a's and a `b`:
/// invalid (nothing appends a `b`), but only after trying every order of every set of
/// appends that still spells a run of a's, since each of them is a prefix of the
/// value read (so not one of them is dead, nor merged as a string no get reads).
fn crashed_appenders(appenders: u64) -> History {
    let mut ops = Vec::new();
    let crashed = |process: u64, input: Input| Op {
        process,
        key: Value::Nil,
        input,
        outcome: OpOutcome::Info,
        call: process,
        ret: None,
    };
    ops.push(crashed(
        0,
        Input::Write {
            value: Value::Str(String::new()),
        },
    ));
    for v in 1..=appenders {
        ops.push(crashed(
            v,
            Input::Append {
                value: Value::Str("a".repeat(v as usize)),
            },
        ));
    }
    ops.push(Op {
        process: appenders + 1,
        key: Value::Nil,
        input: Input::Read,
        outcome: OpOutcome::Ok(Value::Str(format!("{}b", "a".repeat(appenders as usize)))),
        call: appenders + 1,
        ret: Some(appenders + 2),
    });
    History { ops }
}

/// [`crashed_appenders`] of 40 all on key 1, to which other keys can be added.
fn hard_key_one() -> History {
    let mut h = crashed_appenders(40);
    for op in &mut h.ops {
        op.key = Value::Int(1);
    }
    h
}

/// A read of `key` by `process`, returning `value`, over before anything else begins.
fn early_read(process: u64, key: u64, value: &str) -> Op {
    Op {
        process,
        key: Value::Int(key),
        input: Input::Read,
        outcome: OpOutcome::Ok(Value::Str(value.into())),
        call: 0,
        ret: Some(1),
    }
}

/// The check of `h` on one thread, on the kv-strings model.
fn check_one_thread(h: &History, opts: CheckOptions) -> Outcome {
    let opts = CheckOptions { threads: 1, ..opts };
    check(h, ModelKind::KvStrings, &opts).expect("fits")
}

/// The budget an `unknown` verdict ran out of, and how far it got.
fn unknown(verdict: Verdict) -> (UnknownReason, Partial) {
    let Verdict::Unknown { reason, partial } = verdict else {
        panic!("expected unknown, got {verdict:?}");
    };
    (reason, partial)
}

#[test]
fn pathological_history_ends_unknown_on_states() {
    let memo_bytes_max = 64 << 20;
    let opts = CheckOptions {
        states_max: 300_000,
        memo_bytes_max,
        ..CheckOptions::default()
    };
    let got = check_one_thread(&crashed_appenders(40), opts);
    let (reason, partial) = unknown(got.verdict);
    assert_eq!(
        reason,
        UnknownReason::StatesExhausted {
            states_max: 300_000
        }
    );
    assert_eq!(partial.unknown.len(), 1);
    assert!(partial.unknown[0].longest_prefix > 0);
    assert!(got.stats.states <= 300_000 + 2048, "{}", got.stats.states);
    assert!(
        got.stats.memo_bytes_peak <= memo_bytes_max,
        "{}",
        got.stats.memo_bytes_peak
    );
    assert!(
        lincheck::bench::peak_rss_kib() < 256 * 1024,
        "whole test process under 256 MiB"
    );
}

#[test]
fn pathological_history_ends_unknown_on_time() {
    let opts = CheckOptions {
        threads: 0,
        states_max: u64::MAX,
        time_ms_max: Some(300),
        // Room for whatever 300 ms can build: time must be what runs out.
        memo_bytes_max: 1 << 30,
        ..CheckOptions::default()
    };
    let started = std::time::Instant::now();
    let got = check(&crashed_appenders(40), ModelKind::KvStrings, &opts).expect("fits");
    assert!(
        started.elapsed().as_millis() < 3000,
        "stopped near the deadline"
    );
    match got.verdict {
        Verdict::Unknown { reason, .. } => {
            assert_eq!(reason, UnknownReason::TimeExhausted { time_ms_max: 300 });
            assert!(reason.to_string().contains("time budget"));
        }
        other => panic!("expected unknown, got {other:?}"),
    }
}

#[test]
fn invalid_partition_wins_over_unknown_one() {
    let mut h = hard_key_one();
    // Key 2: a read of a value never written.
    h.ops.push(early_read(999, 2, "7"));
    let opts = CheckOptions {
        states_max: 200_000,
        ..CheckOptions::default()
    };
    let got = check_one_thread(&h, opts);
    let Verdict::Invalid { explanation } = got.verdict else {
        panic!("expected invalid, got {:?}", got.verdict);
    };
    assert_eq!(explanation.partitions.len(), 1);
    assert_eq!(explanation.partitions[0].key, Value::Int(2));
}

#[test]
fn a_hard_key_exhausts_its_own_budget_and_the_others_are_decided() {
    let mut h = hard_key_one();
    for k in 2..6 {
        h.ops.push(early_read(1000 + k, k, ""));
    }
    let opts = CheckOptions {
        key_states_max: 300_000,
        ..CheckOptions::default()
    };
    let got = check_one_thread(&h, opts);
    let (reason, partial) = unknown(got.verdict);
    assert_eq!(
        reason,
        UnknownReason::KeyStatesExhausted {
            key_states_max: 300_000
        }
    );
    assert_eq!(partial.partitions_valid, 4);
    assert_eq!(partial.unknown.len(), 1);
    assert_eq!(partial.unknown[0].key, Value::Int(1));
    assert!(got.stats.states < 400_000, "{}", got.stats.states);
}

#[test]
fn the_models_own_states_count_against_the_memory_budget() {
    // kv-strings builds a trie node per new string; 1 MiB holds far fewer than the
    // states this history needs.
    let opts = CheckOptions {
        memo_bytes_max: 1 << 20,
        ..CheckOptions::default()
    };
    let got = check_one_thread(&crashed_appenders(40), opts);
    let (reason, partial) = unknown(got.verdict);
    assert_eq!(
        reason,
        UnknownReason::MemoryExhausted { bytes_max: 1 << 20 }
    );
    assert!(reason.to_string().contains("memory budget"), "{reason}");
    assert_eq!(partial.unknown.len(), 1);
    assert!(got.stats.states < 1_000_000, "{}", got.stats.states);
}
