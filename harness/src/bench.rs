//! `squall bench router`: how fast the router moves messages between node processes and
//! how much one-way latency it adds, against a direct loopback TCP baseline measured in the
//! same run with the same processes and the same lines.
//!
//! Four phases, each a pinger and a ponger (`squall-node --bench ...`): direct ping-pong
//! (window 1), routed ping-pong (window 1), routed flood (window W), direct flood
//! (window W). One-way latency is half the round trip.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::task::JoinSet;

use crate::results;
use crate::router::{Gate, Router};
use crate::supervisor::{NodeSpec, Supervisor};
use crate::text::parse_duration_ms;

pub mod kv;

#[derive(Debug, Deserialize)]
struct PingResult {
    round_trips: u64,
    seconds: f64,
    rtt_ns: Vec<u64>,
}

/// `squall bench router` options.
#[derive(Args, Debug, Clone)]
pub struct BenchRouterArgs {
    /// Seconds of throughput measurement.
    #[arg(long, default_value = "5s", value_parser = parse_duration_ms)]
    pub duration: u64,
    /// Messages each sender keeps in flight during the throughput phase.
    #[arg(long, default_value_t = 256)]
    pub window: u64,
    /// Ping-pong round trips per latency sample set.
    #[arg(long, default_value_t = 20_000)]
    pub pings: u64,
}

/// Percentiles of one-way latency, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct OneWay {
    /// Samples.
    pub samples: usize,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
}

fn one_way(rtt_ns: &[u64]) -> OneWay {
    let mut v: Vec<u64> = rtt_ns.to_vec();
    v.sort_unstable();
    let q = |p: f64| {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        v[i] as f64 / 2.0 / 1000.0
    };
    OneWay {
        samples: v.len(),
        p50_us: q(0.5),
        p90_us: q(0.9),
        p99_us: q(0.99),
    }
}

struct Bench {
    sup: Supervisor,
    node_bin: PathBuf,
    dir: PathBuf,
    spawned: u64,
}

/// How one calibration ping-pong runs.
#[derive(Debug, Clone, Copy)]
pub struct PingPong {
    /// Through a router (as nodes talk in a run) or over direct loopback TCP.
    pub routed: bool,
    /// Round trips.
    pub pings: u64,
    /// Idle time after each round trip (0: back to back, the CPUs stay awake).
    pub gap: Duration,
}

/// Round-trip times (ns) of one window-1 ping-pong between two `squall-node --bench`
/// processes, with their logs and data under `dir`.
pub async fn round_trips(dir: &Path, name: &str, how: PingPong) -> anyhow::Result<Vec<u64>> {
    let mut b = Bench::new(dir.to_path_buf())?;
    let longest = Duration::from_secs(60) + how.gap * how.pings.min(100_000) as u32;
    let result = b
        .phase(name, how.routed, 1, how.pings, longest, how.gap)
        .await;
    b.sup.teardown(Duration::from_secs(1)).await;
    Ok(result?.rtt_ns)
}

impl Bench {
    fn new(dir: PathBuf) -> anyhow::Result<Bench> {
        let node_bin =
            crate::registry::find_node_bin().map_err(|e| crate::UsageError(e.to_string()))?;
        std::fs::create_dir_all(dir.join("data"))?;
        Ok(Bench {
            sup: Supervisor::new(std::time::Instant::now()),
            node_bin,
            dir,
            spawned: 0,
        })
    }

    async fn spawn(
        &mut self,
        name: &str,
        args: &[String],
        env: &[(String, String)],
        admission: Option<(Gate, String)>,
    ) -> anyhow::Result<String> {
        self.spawned += 1;
        let id = format!("{name}-{}", self.spawned);
        let mut argv = vec![self.node_bin.display().to_string()];
        argv.extend(args.iter().cloned());
        let spec = NodeSpec {
            id: id.clone(),
            argv,
            env: env.to_vec(),
            data_dir: self.dir.join("data"),
            log_path: self.dir.join(format!("{id}.log")),
            admission,
            clean_env_in: None,
        };
        self.sup.spawn(spec).await?;
        Ok(id)
    }

    async fn wait_for(&mut self, id: &str, limit: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.sup.is_running(id) {
            match tokio::time::timeout_at(deadline, self.sup.next_exit()).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => anyhow::bail!(
                    "{id} did not finish in {limit:?}; see {}",
                    self.dir.display()
                ),
            }
        }
        Ok(())
    }

    /// The latency phase of the router benchmark: `pings` round trips back to back.
    async fn ping_pong(&mut self, routed: bool, pings: u64) -> anyhow::Result<PingResult> {
        let how = if routed { "routed" } else { "direct" };
        eprintln!("bench router: {how} ping-pong ({pings} round trips)");
        let long = Duration::from_secs(120);
        self.phase(
            &format!("{how}-latency"),
            routed,
            1,
            pings,
            long,
            Duration::ZERO,
        )
        .await
    }

    /// The throughput phase of the router benchmark: `window` pings in flight for
    /// `duration`.
    async fn flood(
        &mut self,
        routed: bool,
        window: u64,
        duration: Duration,
    ) -> anyhow::Result<PingResult> {
        let how = if routed { "routed" } else { "direct" };
        eprintln!("bench router: {how} flood (window {window}, {duration:?})");
        let name = format!("{how}-flood");
        self.phase(&name, routed, window, u64::MAX, duration, Duration::ZERO)
            .await
    }

    /// One phase: a ponger and a pinger, direct or through a fresh router.
    async fn phase(
        &mut self,
        name: &str,
        routed: bool,
        window: u64,
        count: u64,
        duration: Duration,
        gap: Duration,
    ) -> anyhow::Result<PingResult> {
        let out = self.dir.join(format!("{name}.json"));
        let mut tasks = JoinSet::new();
        let (pong_args, ping_args, env_pong, env_ping);
        let common = vec![
            "--window".to_string(),
            window.to_string(),
            "--count".into(),
            count.to_string(),
            "--duration-ms".into(),
            duration.as_millis().to_string(),
            "--gap-us".into(),
            gap.as_micros().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        let _router;
        let gate;
        if routed {
            let addrs = vec![proto::HARNESS.to_string(), "n1".into(), "n2".into()];
            gate = Some(Gate::new(&addrs[1..]));
            let (router, _events) = Router::start(
                &addrs,
                gate.clone().expect("just made"),
                tokio::time::Instant::now(),
                &mut tasks,
            )
            .await?;
            // Runs log node-to-node messages; the bench pays for it too.
            router.log_messages(
                &["n1".to_string(), "n2".into()],
                crate::router::msglog::BYTES_MAX_DEFAULT,
            );
            let addr = router.local_addr().to_string();
            env_pong = vec![
                ("SQUALL_ROUTER".to_string(), addr.clone()),
                ("SQUALL_NODE_ID".into(), "n2".into()),
            ];
            env_ping = vec![
                ("SQUALL_ROUTER".to_string(), addr),
                ("SQUALL_NODE_ID".into(), "n1".into()),
            ];
            pong_args = vec![
                "--bench".to_string(),
                "pong".into(),
                "--peer".into(),
                "n1".into(),
            ];
            ping_args = [
                vec![
                    "--bench".to_string(),
                    "ping".into(),
                    "--peer".into(),
                    "n2".into(),
                ],
                common,
            ]
            .concat();
            _router = Some((router, _events));
        } else {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let addr = format!("127.0.0.1:{port}");
            gate = None;
            env_pong = Vec::new();
            env_ping = Vec::new();
            pong_args = vec![
                "--bench".to_string(),
                "pong".into(),
                "--direct".into(),
                addr.clone(),
            ];
            ping_args = [
                vec![
                    "--bench".to_string(),
                    "ping".into(),
                    "--direct".into(),
                    addr,
                ],
                common,
            ]
            .concat();
            _router = None;
        }
        let as_node = |node: &str| gate.clone().map(|g| (g, node.to_string()));
        let pong = self
            .spawn(
                &format!("{name}-pong"),
                &pong_args,
                &env_pong,
                as_node("n2"),
            )
            .await?;
        let ping = self
            .spawn(
                &format!("{name}-ping"),
                &ping_args,
                &env_ping,
                as_node("n1"),
            )
            .await?;
        self.wait_for(&ping, duration + Duration::from_secs(30))
            .await?;
        self.sup.kill(&pong);
        self.wait_for(&pong, Duration::from_secs(5)).await?;
        tasks.abort_all();
        let bytes = std::fs::read(&out)
            .map_err(|e| anyhow::anyhow!("{name}: no result ({e}); see {}", self.dir.display()))?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

fn bench_dir(results_dir: &Path) -> anyhow::Result<PathBuf> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = results_dir.join(format!("bench-router-{}", results::utc_stamp(now)));
    std::fs::create_dir_all(dir.join("data"))?;
    Ok(dir)
}

/// Runs the router benchmark and prints a markdown table.
pub async fn router(args: &BenchRouterArgs) -> anyhow::Result<u8> {
    let dir = bench_dir(Path::new("results"))?;
    let mut b = Bench::new(dir.clone())?;
    let flood = Duration::from_millis(args.duration);
    let direct_lat = b.ping_pong(false, args.pings).await?;
    let routed_lat = b.ping_pong(true, args.pings).await?;
    let routed_tp = b.flood(true, args.window, flood).await?;
    let direct_tp = b.flood(false, args.window, flood).await?;
    b.sup.teardown(Duration::from_secs(1)).await;

    let d = one_way(&direct_lat.rtt_ns);
    let r = one_way(&routed_lat.rtt_ns);
    let rate = |p: &PingResult| 2.0 * p.round_trips as f64 / p.seconds.max(1e-9);
    let routed_rate = rate(&routed_tp);
    let direct_rate = rate(&direct_tp);
    let ratio = if d.p50_us > 0.0 {
        r.p50_us / d.p50_us
    } else {
        f64::NAN
    };
    println!("| measure | direct loopback | through router | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| one-way p50 (µs) | {:.1} | {:.1} | {:.2}x |",
        d.p50_us, r.p50_us, ratio
    );
    println!(
        "| one-way p90 (µs) | {:.1} | {:.1} | {:.2}x |",
        d.p90_us,
        r.p90_us,
        r.p90_us / d.p90_us.max(1e-9)
    );
    println!(
        "| one-way p99 (µs) | {:.1} | {:.1} | {:.2}x |",
        d.p99_us,
        r.p99_us,
        r.p99_us / d.p99_us.max(1e-9)
    );
    println!(
        "| messages/s (window {}) | {:.0} | {:.0} | {:.2}x |",
        args.window,
        direct_rate,
        routed_rate,
        routed_rate / direct_rate.max(1e-9)
    );
    println!(
        "\nadded one-way p50: {:.1} µs; routed throughput {:.0} msgs/s; details in {}",
        r.p50_us - d.p50_us,
        routed_rate,
        dir.display()
    );
    let summary = json!({
        "direct_one_way": d,
        "routed_one_way": r,
        "p50_ratio": ratio,
        "added_one_way_p50_us": r.p50_us - d.p50_us,
        "routed_msgs_per_s": routed_rate,
        "direct_msgs_per_s": direct_rate,
        "window": args.window,
        "flood_ms": args.duration,
        "pings": args.pings,
    });
    results::write_json(&dir.join("summary.json"), &summary)?;
    Ok(0)
}
