//! What latencies are measured against: loopback round trips between two
//! `squall-node --bench` processes (direct, routed, routed with idle gaps), and one fsync
//! where node data lives.

use std::path::Path;
use std::time::Duration;

use super::{rank, RoundTrip, SyncCost};

/// Idle time between round trips of the `routed-idle` calibration: long enough for
/// every process on the path to go to sleep, as nodes do between protocol steps at the
/// rates the bench offers.
pub const IDLE_GAP: Duration = Duration::from_millis(2);

/// The three calibration ping-pongs, each between two `squall-node --bench` processes:
/// direct loopback back to back (the floor), through a router back to back, and through
/// a router with [`IDLE_GAP`] between round trips (what a protocol step costs when the
/// CPUs have gone idle: on a VM a vCPU's wake-up dominates it).
pub(super) async fn calibrate(dir: &Path, pings: u64) -> anyhow::Result<Vec<RoundTrip>> {
    let dir = dir.join("calibration");
    let plan = [
        ("direct-busy", false, pings, Duration::ZERO),
        ("routed-busy", true, pings, Duration::ZERO),
        ("routed-idle", true, (pings / 5).max(100), IDLE_GAP),
    ];
    let mut out = Vec::new();
    for (name, routed, pings, gap) in plan {
        let how = crate::bench::PingPong { routed, pings, gap };
        let rtts = crate::bench::round_trips(&dir, name, how).await?;
        let samples = rtts.len();
        let (p50_us, p99_us) = p50_p99_us(rtts);
        out.push(RoundTrip {
            name: name.to_string(),
            routed,
            gap_ms: gap.as_secs_f64() * 1e3,
            samples,
            p50_us,
            p99_us,
        });
    }
    Ok(out)
}

/// Appends 64 bytes and `fdatasync`s them `n` times in a scratch file in `dir`.
pub(super) fn calibrate_fsync(dir: &Path, n: usize) -> anyhow::Result<SyncCost> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("fsync-probe-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    let mut ns = Vec::with_capacity(n);
    for _ in 0..n {
        file.write_all(&[0u8; 64])?;
        let t = std::time::Instant::now();
        file.sync_data()?;
        ns.push(t.elapsed().as_nanos() as u64);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    let (p50_us, p99_us) = p50_p99_us(ns);
    Ok(SyncCost {
        dir: dir.to_path_buf(),
        samples: n,
        p50_us,
        p99_us,
    })
}

/// Nearest-rank p50 and p99 of durations in ns, in µs.
fn p50_p99_us(mut ns: Vec<u64>) -> (f64, f64) {
    ns.sort_unstable();
    let us = |pct| rank(&ns, pct) as f64 / 1_000.0;
    (us(50.0), us(99.0))
}
