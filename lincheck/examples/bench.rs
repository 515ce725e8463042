//! Runs the checker benchmark (`lincheck::bench`) and prints its markdown table.
//!
//! `cargo run --release -p lincheck --example bench -- [runs] [data-dir]`

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut cfg = lincheck::bench::BenchConfig::default();
    if let Some(runs) = args.next() {
        cfg.runs = runs.parse()?;
    }
    if let Some(dir) = args.next() {
        cfg.data_dir = dir.into();
    }
    let report = lincheck::bench::run(&cfg, &mut std::io::stdout())?;
    if !report.verdicts_match {
        anyhow::bail!("verdicts differ from expected.tsv");
    }
    Ok(())
}
