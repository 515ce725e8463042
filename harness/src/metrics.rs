//! `metrics.json`: latency percentiles per op kind (HdrHistogram), op outcome counts,
//! messages per op by type, and the router's and supervisor's counters.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use workloads::history::{Op, Outcome};

/// Latency percentiles of one op kind, in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Ops measured (ok ops only).
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

/// Summarises a histogram recorded in microseconds.
pub fn summarise_us(h: &Histogram<u64>) -> LatencySummary {
    let ms = |us: u64| us as f64 / 1000.0;
    LatencySummary {
        count: h.len(),
        mean: h.mean() / 1000.0,
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    }
}

/// A histogram for microsecond latencies up to an hour, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Latency per op kind over the ok ops.
pub fn latency_by_kind(ops: &[Op]) -> BTreeMap<String, LatencySummary> {
    let mut hists: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for op in ops {
        if op.outcome != Outcome::Ok {
            continue;
        }
        let Some(done) = op.complete_time else {
            continue;
        };
        let us = (done.saturating_sub(op.invoke_time) / 1000).max(1);
        let h = hists.entry(op.f.clone()).or_insert_with(latency_histogram);
        h.saturating_record(us);
    }
    hists
        .iter()
        .map(|(k, h)| (k.clone(), summarise_us(h)))
        .collect()
}

/// Op counts by outcome.
pub fn op_counts(ops: &[Op]) -> Value {
    let n = |o: Outcome| ops.iter().filter(|op| op.outcome == o).count();
    json!({
        "total": ops.len(),
        "ok": n(Outcome::Ok),
        "fail": n(Outcome::Fail),
        "info": n(Outcome::Info),
        "pending": n(Outcome::Pending),
    })
}

/// Messages of each type divided by the number of completed ops.
pub fn messages_per_op(by_type: &BTreeMap<String, u64>, ops: &[Op]) -> BTreeMap<String, f64> {
    let done = ops
        .iter()
        .filter(|op| op.outcome != Outcome::Pending)
        .count()
        .max(1) as f64;
    by_type
        .iter()
        .map(|(t, n)| (t.clone(), *n as f64 / done))
        .collect()
}

/// The first three fields of `/proc/loadavg`.
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_ok_ops_only() {
        let op = |f: &str, outcome, lat_ms: u64| Op {
            process: 0,
            f: f.into(),
            input: Value::Null.into(),
            output: None,
            outcome,
            invoke_time: 1_000_000,
            complete_time: Some(1_000_000 + lat_ms * 1_000_000),
            node: None,
            invoke_index: 0,
            complete_index: Some(1),
        };
        let ops: Vec<Op> = (1..=100)
            .map(|i| op("echo", Outcome::Ok, i))
            .chain([op("echo", Outcome::Info, 10_000)])
            .collect();
        let lat = latency_by_kind(&ops);
        let e = &lat["echo"];
        assert_eq!(e.count, 100);
        assert!((e.p50 - 50.0).abs() < 0.5, "p50 {}", e.p50);
        assert!((e.max - 100.0).abs() < 0.5, "max {}", e.max);
    }
}
