//! Out-of-band reports a node sends to the `harness` address. They are evidence for
//! checkers and ground truth for benchmarks; no reply is expected.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ops::Ballot;

/// A report body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Report {
    /// The node learned that `value` is decided for instance `key`.
    Decided {
        /// The instance.
        key: u64,
        /// The decided value.
        value: u64,
        /// Rounds the node's own proposer needed, if it proposed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rounds: Option<u32>,
    },
    /// An acceptor accepted `value` at `ballot` (phase 2); the harness derives the round in
    /// which a value was first chosen by a majority from these.
    Accepted {
        /// The instance.
        key: u64,
        /// The ballot of the accept.
        ballot: Ballot,
        /// The accepted value.
        value: u64,
    },
    /// A proposer started a ballot (phase 1) for instance `key`.
    BallotStarted {
        /// The instance.
        key: u64,
        /// The new ballot.
        ballot: Ballot,
    },
    /// The node delivered multicast `value` to its application, as its `seq`-th delivery
    /// (from 1) since it started (workload `multicast`).
    Delivered {
        /// The value delivered.
        value: u64,
        /// Its position in this node's delivery sequence, from 1.
        seq: u64,
    },
    /// A node recorded its own state for global snapshot `id` (workload `bank`): its
    /// balance and, per peer, how many transfers it had sent there and taken from there
    /// when it recorded. Transfers are numbered 1, 2, .. per directed link.
    SnapshotLocal {
        /// The snapshot.
        id: String,
        /// The node's balance at its recording point.
        balance: u64,
        /// Per receiving peer: transfers sent to it so far (the highest number sent).
        sent: BTreeMap<String, u64>,
        /// Per sending peer: transfers applied from it so far.
        received: BTreeMap<String, u64>,
        /// Per sending peer: the highest transfer number applied from it so far.
        received_max: BTreeMap<String, u64>,
    },
    /// A node closed its record of the incoming channel from `from` for snapshot `id`:
    /// the transfers that arrived on it after the node recorded and before `from`'s
    /// marker.
    SnapshotChannel {
        /// The snapshot.
        id: String,
        /// The channel's sender.
        from: String,
        /// How many transfers were recorded on it.
        count: u64,
        /// Their total amount.
        amount: u64,
        /// Their numbers on the link, the first `SNAPSHOT_SEQS_MAX` of them.
        seqs: Vec<u64>,
    },
    /// The initiator of snapshot `id` assembled every node's recorded wait (workload
    /// `deadlock`) and found `cycle` in the wait-for graph of the cut, or none (empty).
    Deadlock {
        /// The snapshot.
        id: String,
        /// The nodes of the cycle in wait order (each waits for the next, the last for
        /// the first), starting at the smallest id; empty when the cut has no cycle.
        cycle: Vec<String>,
        /// The wait-for graph the detector used: who waits for whom in the cut.
        waits: BTreeMap<String, String>,
    },
}

/// Transfer numbers a `snapshot_channel` report lists at most; `count` and `amount` cover
/// the rest.
pub const SNAPSHOT_SEQS_MAX: usize = 256;

/// A report as a node sends it: the report's own fields and, optionally, `"mono_ns"`,
/// the host's `CLOCK_MONOTONIC` in nanoseconds when the node made it (after any sync that
/// came before it in the same step).
///
/// Every process on one host reads the same monotonic clock, so the harness can place the
/// report on the run's timeline as the node saw it, without the hop to the harness and
/// the wait in its queue: the moment an acceptor durably accepted, not the moment the
/// harness heard of it. Nodes in lockstep mode leave it out (they read no clock), and so
/// may any node; the harness then uses the time the report arrived. Unstamped, the body
/// is byte for byte the bare report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamped {
    /// The report.
    #[serde(flatten)]
    pub report: Report,
    /// `CLOCK_MONOTONIC` in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mono_ns: Option<u64>,
}

/// The host's `CLOCK_MONOTONIC` in nanoseconds (the clock Rust's `Instant` reads on
/// Linux).
pub fn monotonic_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always readable");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamped_body_still_reads_as_its_report() {
        let report = Report::Decided {
            key: 3,
            value: 17,
            rounds: None,
        };
        let stamped = Stamped {
            report: report.clone(),
            mono_ns: Some(42),
        };
        let body = serde_json::to_string(&stamped).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&body).unwrap(), report);
        assert_eq!(serde_json::from_str::<Stamped>(&body).unwrap(), stamped);
        let bare = Stamped {
            report: report.clone(),
            mono_ns: None,
        };
        let bare_body = serde_json::to_string(&bare).unwrap();
        assert_eq!(bare_body, serde_json::to_string(&report).unwrap());
        assert_eq!(serde_json::from_str::<Stamped>(&bare_body).unwrap(), bare);
    }
}
