//! Benchmark peers for `squall bench router`: a pinger and a ponger that talk either
//! directly over loopback TCP (the baseline) or through the router as nodes `n1`/`n2`.
//! Both use the same envelope lines, so the only difference is the router in the middle.
//! This is runtime-level code (it reads clocks); algorithms never use it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

/// How a bench peer reaches the other.
#[derive(Debug, Clone)]
pub enum Link {
    /// Listen on this address (ponger) or connect to it (pinger), no router.
    Direct(String),
    /// Connect to the router at this address as node `id`, talking to `peer`.
    Routed {
        /// Router address.
        router: String,
        /// Own node id.
        id: String,
        /// The other node.
        peer: String,
    },
}

/// What the pinger measured.
#[derive(Debug, Clone, Serialize)]
pub struct PingResult {
    /// Round trips completed.
    pub round_trips: u64,
    /// Wall time of the measurement, in seconds.
    pub seconds: f64,
    /// Round-trip times in nanoseconds (window 1 only; empty otherwise).
    pub rtt_ns: Vec<u64>,
}

fn bench_line(src: &str, dest: &str, ty: &str, seq: u64) -> Vec<u8> {
    format!(
        "{{\"src\":\"{src}\",\"dest\":\"{dest}\",\"body\":{{\"type\":\"{ty}\",\"seq\":{seq}}}}}\n"
    )
    .into_bytes()
}

fn ping_line(src: &str, dest: &str, seq: u64) -> Vec<u8> {
    bench_line(src, dest, "ping", seq)
}

fn connect(link: &Link) -> anyhow::Result<(TcpStream, String, String)> {
    match link {
        Link::Direct(addr) => {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match TcpStream::connect(addr) {
                    Ok(s) => return Ok((s, "n1".into(), "n2".into())),
                    Err(e) if Instant::now() > deadline => {
                        return Err(e).context("connect to ponger")
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        Link::Routed { router, id, peer } => {
            let mut s = TcpStream::connect(router).context("connect to router")?;
            // The router admits only the process squall started, by the run's secret.
            let hello = serde_json::to_string(&proto::body::Control::Hello {
                node_id: id.clone(),
                token: std::env::var("SQUALL_TOKEN").unwrap_or_default(),
                incarnation: None,
            })?;
            s.write_all(&proto::envelope::frame_raw(id, proto::ROUTER, &hello))?;
            Ok((s, id.clone(), peer.clone()))
        }
    }
}

/// Answers every ping with a pong until the connection closes.
pub fn pong(link: &Link) -> anyhow::Result<()> {
    let stream = match link {
        Link::Direct(addr) => TcpListener::bind(addr)?.accept()?.0,
        routed => connect(routed)?.0,
    };
    stream.set_nodelay(true)?;
    let (me, peer) = match link {
        Link::Direct(_) => ("n2".to_string(), "n1".to_string()),
        Link::Routed { id, peer, .. } => (id.clone(), peer.clone()),
    };
    let mut reader = BufReader::with_capacity(256 * 1024, stream.try_clone()?);
    let mut writer = std::io::BufWriter::with_capacity(256 * 1024, stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let seq = parse_seq(&line).unwrap_or(0);
        writer.write_all(&bench_line(&me, &peer, "pong", seq))?;
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
}

fn parse_seq(line: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(line).ok()?;
    let at = s.find("\"seq\":")? + 6;
    let digits: String = s[at..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Sends pings keeping `window` in flight, for `count` round trips or `duration`,
/// whichever ends first, and writes the result as JSON to `out`. With a `gap`, each
/// answered ping is followed by that much sleep before the next one, so both peers (and
/// the router) go idle between round trips, as nodes do between protocol steps.
pub fn ping(
    link: &Link,
    window: u64,
    count: u64,
    duration: Duration,
    gap: Duration,
    out: PathBuf,
) -> anyhow::Result<()> {
    let (stream, me, peer) = connect(link)?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(256 * 1024, stream.try_clone()?);
    let mut writer = std::io::BufWriter::with_capacity(256 * 1024, stream);
    // Through the router, wait until the peer is there: retry a probe until it answers.
    let mut line = Vec::new();
    if matches!(link, Link::Routed { .. }) {
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(100)))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            writer.write_all(&ping_line(&me, &peer, 0))?;
            writer.flush()?;
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(n) if n > 0 => break,
                _ if Instant::now() > deadline => {
                    anyhow::bail!("peer {peer} never answered through the router")
                }
                _ => continue,
            }
        }
        // Drain stray answers to earlier probes.
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))?;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
        reader.get_ref().set_read_timeout(None)?;
    }
    let mut rtt_ns = Vec::new();
    let mut sent_at = std::collections::VecDeque::new();
    let start = Instant::now();
    let mut seq = 1;
    for _ in 0..window.min(count) {
        writer.write_all(&ping_line(&me, &peer, seq))?;
        sent_at.push_back(Instant::now());
        seq += 1;
    }
    writer.flush()?;
    let mut done = 0u64;
    while done < count && start.elapsed() < duration {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let t = sent_at
            .pop_front()
            .expect("a pong answers a ping in flight");
        if window == 1 {
            rtt_ns.push(t.elapsed().as_nanos() as u64);
        }
        done += 1;
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
        if seq <= count {
            writer.write_all(&ping_line(&me, &peer, seq))?;
            sent_at.push_back(Instant::now());
            seq += 1;
        }
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
    let result = PingResult {
        round_trips: done,
        seconds: start.elapsed().as_secs_f64(),
        rtt_ns,
    };
    std::fs::write(&out, serde_json::to_vec(&result)?)
        .with_context(|| format!("write {}", out.display()))?;
    Ok(())
}
