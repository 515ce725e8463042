//! Checks files and prints verdict, states and time, for quick measurements.
//!
//! `cargo run --release -p lincheck --example probe -- [--threads N] [--no-greedy] [--no-memo] [--no-dedup] [--minimize] [--all] [--per-key] [--repeat N] FILE...`
//! (`--repeat N` checks each file N times and prints the median time)

use lincheck::{check, cmd, CheckOptions};

fn main() -> anyhow::Result<()> {
    let mut opts = CheckOptions {
        threads: 1,
        minimize: false,
        states_max: 20_000_000,
        ..CheckOptions::default()
    };
    let mut files = Vec::new();
    let mut per_key = false;
    let mut repeat = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => opts.threads = args.next().unwrap_or_default().parse()?,
            "--no-greedy" => opts.pruning.greedy = false,
            "--no-memo" => opts.pruning.memo = false,
            "--no-dedup" => opts.pruning.info_dedup = false,
            "--minimize" => opts.minimize = true,
            "--all" => opts.all_partitions = true,
            "--per-key" => per_key = true,
            "--repeat" => repeat = args.next().unwrap_or_default().parse()?,
            _ => files.push(std::path::PathBuf::from(a)),
        }
    }
    for f in files {
        let (h, format) = cmd::read_history(&f, None)?;
        let model = format.default_model(&h);
        if per_key {
            let mut keys: Vec<_> = h.ops.iter().map(|o| o.key.clone()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let sub = lincheck::History {
                    ops: h.ops.iter().filter(|o| o.key == k).cloned().collect(),
                };
                let o = check(&sub, model, &opts)?;
                println!(
                    "  key {k}: {} ops {} states={} ms={:.3}",
                    sub.ops.len(),
                    o.verdict.name(),
                    o.stats.states,
                    o.stats.elapsed_us as f64 / 1000.0
                );
            }
        }
        let mut times = Vec::with_capacity(repeat);
        let mut o = check(&h, model, &opts)?;
        times.push(o.stats.elapsed_us);
        for _ in 1..repeat.max(1) {
            o = check(&h, model, &opts)?;
            times.push(o.stats.elapsed_us);
        }
        times.sort_unstable();
        o.stats.elapsed_us = times[times.len() / 2];
        println!(
            "{}\t{}\tstates={}\tms={:.3}\tmemo_peak={}\tevict={}",
            f.display(),
            o.verdict.name(),
            o.stats.states,
            o.stats.elapsed_us as f64 / 1000.0,
            o.stats.memo_bytes_peak,
            o.stats.memo_evictions
        );
        if opts.minimize {
            if let lincheck::Verdict::Invalid { explanation } = &o.verdict {
                print!("{explanation}");
            }
        }
    }
    Ok(())
}
