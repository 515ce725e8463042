//! Lists the hardest keys of a generated many-key history, for measurements.
//!
//! `cargo run --release -p lincheck --example hardkeys -- [kv|kv-strings] OPS INFO_PERCENT [KEY]`
//! (1,000 keys, seed 1, 100k states per key; with KEY, prints that key's ops; `PREFIX=N`
//! keeps each key's first N ops).

use lincheck::{check, generate_kv, generate_kv_strings, CheckOptions, GenConfig, ModelKind};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let strings = args.first().is_some_and(|a| a == "kv-strings");
    let cfg = GenConfig {
        n_ops: args.get(1).map_or(Ok(1_000_000), |a| a.parse())?,
        n_keys: 1000,
        info_fraction: args.get(2).map_or(Ok(2.0), |a| a.parse::<f64>())? / 100.0,
        seed: 1,
        concurrency: 16,
        values: 16,
    };
    let (h, model) = if strings {
        (generate_kv_strings(&cfg), ModelKind::KvStrings)
    } else {
        (generate_kv(&cfg), ModelKind::Kv)
    };
    let only: Option<u64> = args.get(3).map(|a| a.parse()).transpose()?;
    let opts = CheckOptions {
        threads: 1,
        minimize: false,
        states_max: 100_000,
        ..CheckOptions::default()
    };
    let mut rows = Vec::new();
    for k in 0..cfg.n_keys {
        if only.is_some_and(|o| o != k) {
            continue;
        }
        let prefix: usize =
            std::env::var("PREFIX").map_or(usize::MAX, |v| v.parse().unwrap_or(usize::MAX));
        let sub = lincheck::History {
            ops: h
                .ops
                .iter()
                .filter(|o| o.key == lincheck::Value::Int(k))
                .take(prefix)
                .cloned()
                .collect(),
        };
        let o = check(&sub, model, &opts)?;
        rows.push((o.stats.states, k, sub.ops.len(), o.verdict.name()));
        if o.verdict.name() != "valid" && only.is_none() {
            println!("hard key {k}: {} ops {}", sub.ops.len(), o.verdict.name());
        }
        if only.is_some() {
            for op in &sub.ops {
                println!("{op}  [{}, {:?}]", op.call, op.ret);
            }
        }
    }
    rows.sort();
    for r in rows.iter().rev().take(10) {
        println!("states {} key {} ops {} {}", r.0, r.1, r.2, r.3);
    }
    Ok(())
}
