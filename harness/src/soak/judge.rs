//! How a finished run counts: its class, its signature, the numbers `soak.jsonl` keeps,
//! all read back from the run directory's `verdict.json` and `metrics.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use workloads::VerdictKind;

use crate::lifecycle::RunOutcome;
use crate::text::truncate;

use super::summary::GroupKey;

/// How a finished run counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Judged valid: its directory is deleted.
    Valid,
    /// Judged invalid: kept.
    Invalid,
    /// Judged unknown: kept.
    Unknown,
    /// squall failed on it: kept if it got a directory.
    Error,
    /// Cut short by the interrupt without a violation: deleted, counted apart.
    Interrupted,
}

/// One line of `soak.jsonl`.
#[derive(Debug, Serialize)]
pub(super) struct Record<'a> {
    pub(super) seed: u64,
    pub(super) verdict: Class,
    pub(super) duration_s: f64,
    pub(super) ops: u64,
    pub(super) faults: BTreeMap<String, u64>,
    pub(super) run_id: Option<&'a str>,
    pub(super) kept: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reason: Option<&'a str>,
    /// A lockstep run's trace hash: the same seed alone or under load gives the same one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) trace_hash: Option<&'a str>,
}

/// What a finished run left behind, read back from its directory.
pub(super) struct Judged {
    pub(super) class: Class,
    pub(super) key: Option<GroupKey>,
    pub(super) reason: String,
    pub(super) ops: u64,
    pub(super) faults: BTreeMap<String, u64>,
    /// `trace_hash` of a lockstep run's `verdict.json`.
    pub(super) trace_hash: Option<String>,
}

/// Longest reason or error message kept per failure, in bytes.
pub(super) const REASON_MAX: usize = 400;

/// Classifies a run from its `verdict.json` and `metrics.json`.
pub(super) fn judge(outcome: &RunOutcome, algorithm: &str) -> Judged {
    let read = |name: &str| -> Value {
        crate::results::read_json(&outcome.dir.join(name)).unwrap_or(Value::Null)
    };
    let verdict = read("verdict.json");
    let metrics = read("metrics.json");
    let interrupted = verdict["interrupted"].as_bool().unwrap_or(false);
    let class = match outcome.verdict {
        VerdictKind::Invalid => Class::Invalid,
        VerdictKind::Valid | VerdictKind::Unknown if interrupted => Class::Interrupted,
        VerdictKind::Valid => Class::Valid,
        VerdictKind::Unknown => Class::Unknown,
    };
    let key = matches!(class, Class::Invalid | Class::Unknown).then(|| {
        let (checker, property) = checker_and_property(&verdict);
        GroupKey {
            verdict: if class == Class::Invalid {
                "invalid"
            } else {
                "unknown"
            }
            .into(),
            algorithm: algorithm.to_string(),
            checker,
            property,
        }
    });
    Judged {
        class,
        key,
        reason: truncate(
            verdict["reason"].as_str().unwrap_or("no verdict.json"),
            REASON_MAX,
        ),
        ops: metrics["ops"]["total"].as_u64().unwrap_or(0),
        faults: fault_counts(&metrics),
        trace_hash: verdict["trace_hash"].as_str().map(str::to_string),
    }
}

/// The checker that gave the overall verdict and the property it names; `harness` when
/// no checker did (a faulty node or a failed startup made the run unknown).
pub fn checker_and_property(verdict: &Value) -> (String, String) {
    let overall = verdict["verdict"].as_str().unwrap_or("?");
    let first = verdict["checkers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["verdict"].as_str() == Some(overall));
    match first {
        Some(c) => {
            let checker = c["checker"].as_str().unwrap_or("?").to_string();
            (checker, workloads::verdict::property_of(c))
        }
        None => {
            let faulty = verdict["faulty_nodes"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            let property = if faulty { "node-fault" } else { "startup" };
            ("harness".into(), property.into())
        }
    }
}

/// Fault counts from `metrics.json`, either mode: messages cut, dropped, delayed,
/// duplicated, reordered, held; kills, restarts, pauses, crashes.
pub(super) fn fault_counts(metrics: &Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let faults = &metrics["faults"];
    let procs = if faults["process_total"].is_object() {
        &faults["process_total"]
    } else {
        &metrics["processes"]
    };
    for section in [&faults["total"], procs] {
        if let Some(map) = section.as_object() {
            for (k, v) in map {
                if k != "delivered" && k != "resumes" {
                    if let Some(n) = v.as_u64() {
                        out.insert(k.clone(), n);
                    }
                }
            }
        }
    }
    out
}

/// The directory a run of `seed` made under `runs_dir`, if any (a run that failed with
/// an error returns none). Seeds are distinct within a soak.
pub(super) fn find_run_dir(runs_dir: &Path, workload: &str, seed: u64) -> Option<PathBuf> {
    let tail = format!("-{workload}-s{seed}");
    std::fs::read_dir(runs_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.is_dir()
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.ends_with(&tail)
                        || n.rsplit_once('-').is_some_and(|(head, n)| {
                            head.ends_with(&tail) && n.bytes().all(|b| b.is_ascii_digit())
                        })
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signatures_name_the_checker_and_property() {
        let v = json!({"verdict": "invalid", "checkers": [
            {"checker": "consensus", "verdict": "invalid", "evidence": {"property": "agreement"}}
        ]});
        assert_eq!(
            checker_and_property(&v),
            ("consensus".into(), "agreement".into())
        );
        let v = json!({"verdict": "unknown", "faulty_nodes": [{"node": "n1"}], "checkers": [
            {"checker": "consensus", "verdict": "valid"}
        ]});
        assert_eq!(
            checker_and_property(&v),
            ("harness".into(), "node-fault".into())
        );
        let v = json!({"verdict": "unknown", "checkers": [
            {"checker": "echo", "verdict": "unknown", "evidence": {"ops": 0}}
        ]});
        assert_eq!(checker_and_property(&v), ("echo".into(), "echo".into()));
    }

    #[test]
    fn fault_counts_read_either_mode() {
        let free = json!({"faults": {
            "total": {"cut": 3, "delivered": 100, "dropped": 1},
            "process_total": {"kills": 2, "pauses": 1, "restarts": 2, "resumes": 1}}});
        let got = fault_counts(&free);
        assert_eq!(got["cut"], 3);
        assert_eq!(got["kills"], 2);
        assert!(!got.contains_key("delivered"));
        let lockstep = json!({"faults": {"total": {"cut": 1}},
            "processes": {"kills": 1, "crashes": 0}});
        assert_eq!(fault_counts(&lockstep)["kills"], 1);
    }

    #[test]
    fn run_dirs_are_found_by_seed() {
        let tmp = tempfile::tempdir().unwrap();
        for name in [
            "20261123T000000Z-write-once-s1",
            "20261123T000000Z-write-once-s12",
            "20261123T000001Z-write-once-s3-1",
        ] {
            std::fs::create_dir(tmp.path().join(name)).unwrap();
        }
        let find = |seed| {
            find_run_dir(tmp.path(), "write-once", seed)
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        };
        assert_eq!(find(1).as_deref(), Some("20261123T000000Z-write-once-s1"));
        assert_eq!(find(3).as_deref(), Some("20261123T000001Z-write-once-s3-1"));
        assert_eq!(find(2), None);
    }
}
