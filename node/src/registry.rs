//! Algorithm names and what they are. The harness learns this table by running
//! `squall-node --list-json`, so it never links against this crate.

use serde::Serialize;

use crate::algo::{self, Algorithm};
use crate::runtime::{self, Launch};

/// One bundled algorithm.
#[derive(Debug, Clone, Serialize)]
pub struct AlgoInfo {
    /// The name given to `--algorithm`.
    pub name: &'static str,
    /// One line: what it is and how it is expected to behave under faults.
    pub summary: &'static str,
    /// The workloads it serves.
    pub workloads: &'static [&'static str],
    /// Mutants available behind `--bug`.
    pub bugs: &'static [&'static str],
}

/// Every bundled algorithm, in the order `squall list` shows them.
pub fn algorithms() -> Vec<AlgoInfo> {
    vec![
        AlgoInfo {
            name: "echo",
            summary: "answers every echo request; the smallest end-to-end proof",
            workloads: &["echo"],
            bugs: algo::echo::Echo::BUGS,
        },
        AlgoInfo {
            name: "restart-counter",
            summary: "counts its own incarnations durably; proves sync and crash loss",
            workloads: &["durability", "echo"],
            bugs: algo::restart_counter::RestartCounter::BUGS,
        },
        AlgoInfo {
            name: "coordinator",
            summary: "bully-chosen coordinator decides first-come; safe, stalls while the \
                      coordinator is down (no failover)",
            workloads: &["write-once"],
            bugs: algo::coordinator::Coordinator::BUGS,
        },
        AlgoInfo {
            name: "majority-vote",
            summary: "vote for the first candidate, strict majority wins; safe, split votes \
                      never terminate",
            workloads: &["write-once"],
            bugs: algo::majority_vote::MajorityVote::BUGS,
        },
        AlgoInfo {
            name: "tiebreak-wait-all",
            summary: "majority vote, min value breaks ties once all N votes are in; safe, one \
                      dead voter blocks termination",
            workloads: &["write-once"],
            bugs: algo::tiebreak::TiebreakWaitAll::BUGS,
        },
        AlgoInfo {
            name: "tiebreak-timeout",
            summary: "majority vote, min value breaks ties after a timeout; late votes break \
                      agreement under delay or partition",
            workloads: &["write-once"],
            bugs: algo::tiebreak::TiebreakTimeout::BUGS,
        },
        AlgoInfo {
            name: "paxos",
            summary: "synod algorithm per key with randomized exponential backoff; safe under \
                      every fault, terminates after heal",
            workloads: &["write-once"],
            bugs: algo::paxos::Paxos::BUGS,
        },
        AlgoInfo {
            name: "raft",
            summary: "Raft log replicating a key-value store, reads through the log; safe \
                      under every fault, serves again after heal",
            workloads: &["lin-kv"],
            bugs: algo::raft::Raft::BUGS,
        },
        AlgoInfo {
            name: "multi-paxos",
            summary: "a log of Paxos slots under a distinguished leader (phase 1 once for all \
                      slots), replicating a key-value store; safe under every fault",
            workloads: &["lin-kv"],
            bugs: algo::multi_paxos::MultiPaxos::BUGS,
        },
        AlgoInfo {
            name: "floodset",
            summary: "synchronous f+1-round flooding, decide min; disagrees once delays exceed \
                      the round timeout",
            workloads: &["write-once"],
            bugs: algo::floodset::FloodSet::BUGS,
        },
        AlgoInfo {
            name: "best-effort",
            summary: "multicast: plain send to all, delivered on arrival; orders nothing, \
                      loses messages with a crashed sender",
            workloads: &["multicast"],
            bugs: algo::multicast::best_effort::BestEffort::BUGS,
        },
        AlgoInfo {
            name: "fifo",
            summary: "multicast: per-sender sequence numbers and a hold-back queue; FIFO, \
                      not causal",
            workloads: &["multicast"],
            bugs: algo::multicast::fifo::Fifo::BUGS,
        },
        AlgoInfo {
            name: "causal",
            summary: "multicast: vector clocks, the seed's delivery rule; causal, not total",
            workloads: &["multicast"],
            bugs: algo::multicast::causal::Causal::BUGS,
        },
        AlgoInfo {
            name: "total-sequencer",
            summary: "multicast: n1 stamps global sequence numbers; total, stops when n1 \
                      crashes",
            workloads: &["multicast"],
            bugs: algo::multicast::total_sequencer::TotalSequencer::BUGS,
        },
        AlgoInfo {
            name: "total-isis",
            summary: "multicast: ISIS proposed and agreed priorities; total without a \
                      leader, one silent member blocks it",
            workloads: &["multicast"],
            bugs: algo::multicast::total_isis::TotalIsis::BUGS,
        },
        AlgoInfo {
            name: "reliable",
            summary: "multicast: best-effort plus re-multicast on first receipt; every \
                      correct node delivers the same set, in no set order",
            workloads: &["multicast"],
            bugs: algo::multicast::reliable::Reliable::BUGS,
        },
        AlgoInfo {
            name: "chandy-lamport",
            summary: "one account per node, transfers as messages, Chandy-Lamport global \
                      snapshots; consistent cuts over FIFO links, loses money under reorder",
            workloads: &["bank"],
            bugs: algo::chandy_lamport::ChandyLamport::BUGS,
        },
        AlgoInfo {
            name: "wait-for",
            summary: "nodes wait for each other; Chandy-Lamport snapshots find cycles in \
                      the wait-for graph of the cut (deadlocks)",
            workloads: &["deadlock"],
            bugs: algo::wait_for::WaitFor::BUGS,
        },
    ]
}

/// One algorithm as `squall-node --list-json` lists it: its [`AlgoInfo`] and, for a
/// multicast algorithm, the guarantee it claims (`fifo`, `total`, `none+reliable`, ..;
/// see [`algo::multicast::guarantee`]), which the harness judges by default.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// The algorithm.
    #[serde(flatten)]
    pub info: AlgoInfo,
    /// The guarantee it claims, where it claims one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<&'static str>,
}

/// [`algorithms`] with their guarantees: what `--list-json` prints.
pub fn listing() -> Vec<Listed> {
    algorithms()
        .into_iter()
        .map(|info| Listed {
            guarantee: algo::multicast::guarantee(info.name),
            info,
        })
        .collect()
}

/// Runs the named algorithm under the free-running runtime until the connection closes.
pub fn run(name: &str, launch: Launch) -> anyhow::Result<()> {
    match name {
        "echo" => runtime::run::<algo::echo::Echo>(launch),
        "restart-counter" => runtime::run::<algo::restart_counter::RestartCounter>(launch),
        "coordinator" => runtime::run::<algo::coordinator::Coordinator>(launch),
        "majority-vote" => runtime::run::<algo::majority_vote::MajorityVote>(launch),
        "tiebreak-wait-all" => runtime::run::<algo::tiebreak::TiebreakWaitAll>(launch),
        "tiebreak-timeout" => runtime::run::<algo::tiebreak::TiebreakTimeout>(launch),
        "paxos" => runtime::run::<algo::paxos::Paxos>(launch),
        "floodset" => runtime::run::<algo::floodset::FloodSet>(launch),
        "raft" => runtime::run::<algo::raft::Raft>(launch),
        "multi-paxos" => runtime::run::<algo::multi_paxos::MultiPaxos>(launch),
        "best-effort" => runtime::run::<algo::multicast::best_effort::BestEffort>(launch),
        "fifo" => runtime::run::<algo::multicast::fifo::Fifo>(launch),
        "causal" => runtime::run::<algo::multicast::causal::Causal>(launch),
        "total-sequencer" => {
            runtime::run::<algo::multicast::total_sequencer::TotalSequencer>(launch)
        }
        "total-isis" => runtime::run::<algo::multicast::total_isis::TotalIsis>(launch),
        "reliable" => runtime::run::<algo::multicast::reliable::Reliable>(launch),
        "chandy-lamport" => runtime::run::<algo::chandy_lamport::ChandyLamport>(launch),
        "wait-for" => runtime::run::<algo::wait_for::WaitFor>(launch),
        other => {
            let names: Vec<&str> = algorithms().iter().map(|a| a.name).collect();
            anyhow::bail!("unknown algorithm '{other}' (valid: {})", names.join(", "))
        }
    }
}
