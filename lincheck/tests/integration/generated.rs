//! Generated histories are linearizable by construction; the checker must agree, also
//! after a round trip through `history.jsonl`, and must reject corrupted ones.

use lincheck::{
    check, generate_kv, CheckOptions, Format, GenConfig, ModelKind, OpOutcome, Value, Verdict,
};

#[test]
fn generated_histories_are_valid() {
    for seed in 0..20 {
        let cfg = GenConfig {
            n_ops: 400,
            n_keys: 1 + seed % 4,
            info_fraction: 0.1,
            seed,
            concurrency: 2 + seed as usize % 6,
            values: 2 + seed % 5,
        };
        let h = generate_kv(&cfg);
        let got = check(
            &h,
            ModelKind::Kv,
            &CheckOptions {
                threads: 1,
                ..CheckOptions::default()
            },
        )
        .expect("fits");
        assert_eq!(got.verdict, Verdict::Valid, "seed {seed}");
        let text = lincheck::parse::squall::write(&h);
        let back = Format::Squall.parse(&text).expect("round trip parses");
        let got = check(&back, ModelKind::Kv, &CheckOptions::default()).expect("fits");
        assert_eq!(got.verdict, Verdict::Valid, "seed {seed} after round trip");
    }
}

#[test]
fn corrupted_read_is_caught() {
    let cfg = GenConfig {
        n_ops: 300,
        n_keys: 2,
        seed: 3,
        values: 1000,
        ..GenConfig::default()
    };
    let mut h = generate_kv(&cfg);
    let read = h
        .ops
        .iter_mut()
        .find(|o| matches!(o.outcome, OpOutcome::Ok(Value::Int(_))))
        .expect("some read saw a value");
    read.outcome = OpOutcome::Ok(Value::Int(123_456));
    let got = check(&h, ModelKind::Kv, &CheckOptions::default()).expect("fits");
    let Verdict::Invalid { explanation } = got.verdict else {
        panic!("expected invalid, got {:?}", got.verdict);
    };
    let w = explanation.window.as_ref().expect("window");
    assert!(
        w.ops.iter().any(|o| o.op.contains("123456")),
        "{explanation}"
    );
}

#[test]
fn same_generated_history_for_same_seed() {
    let cfg = GenConfig {
        n_ops: 100,
        ..GenConfig::default()
    };
    assert_eq!(generate_kv(&cfg), generate_kv(&cfg));
}

/// Small generated histories, some corrupted: every pruning on must agree with every
/// pruning off.
#[test]
fn prunings_agree_with_plain_search_on_random_histories() {
    let plain = lincheck::Pruning {
        memo: false,
        greedy: false,
        info_dedup: false,
        dead_reads: false,
        useless_info: false,
    };
    let (mut valid, mut invalid) = (0, 0);
    for seed in 0..300u64 {
        let cfg = GenConfig {
            n_ops: 12,
            n_keys: 1 + seed % 2,
            info_fraction: 0.25,
            seed,
            concurrency: 3,
            values: 3,
        };
        let mut h = generate_kv(&cfg);
        if seed % 2 == 1 {
            // Corrupt one completed read.
            let reads: Vec<usize> = (0..h.ops.len())
                .filter(|&i| {
                    matches!(h.ops[i].input, lincheck::Input::Read)
                        && matches!(h.ops[i].outcome, OpOutcome::Ok(_))
                })
                .collect();
            if let Some(&i) = reads.get(seed as usize % reads.len().max(1)) {
                h.ops[i].outcome = OpOutcome::Ok(Value::Int(seed % 3));
            }
        }
        let fast = CheckOptions {
            threads: 1,
            minimize: false,
            ..CheckOptions::default()
        };
        let slow = CheckOptions {
            pruning: plain,
            ..fast.clone()
        };
        let a = check(&h, ModelKind::Kv, &fast).expect("fits").verdict;
        let b = check(&h, ModelKind::Kv, &slow).expect("fits").verdict;
        assert_eq!(
            a == Verdict::Valid,
            b == Verdict::Valid,
            "seed {seed}: {h:#?}"
        );
        if a == Verdict::Valid {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    assert!(
        valid > 50 && invalid > 20,
        "{valid} valid, {invalid} invalid"
    );
}
