//! The workload interface and the registry of workloads.

use proto::ops::{ClientOp, ClientReply};
use rand_chacha::ChaCha8Rng;

use crate::verdict::Checker;

/// Workload settings from the command line.
#[derive(Debug, Clone)]
pub struct WorkloadOpts {
    /// Number of independent instances/keys to spread ops over.
    pub instances: u64,
    /// How many clients propose to the same instance at once (write-once).
    pub contention: u64,
    /// Nodes in the cluster, for ops aimed at each of them.
    pub nodes: usize,
    /// Percent of op slots that are late proposals to instances proposed to before
    /// (write-once).
    pub late_percent: u32,
    /// The broadcast topology's name (`grid`, `line`, `total`, `tree2`..`tree4`).
    pub topology: String,
    /// What the multicast checkers judge (multicast).
    pub guarantee: crate::multicast::Guarantee,
    /// The consistency model txn checkers judge (txn-rw-register).
    pub consistency: crate::txn::Consistency,
}

/// Default [`WorkloadOpts::late_percent`].
pub const LATE_PERCENT_DEFAULT: u32 = 10;

impl Default for WorkloadOpts {
    fn default() -> Self {
        WorkloadOpts {
            instances: 100,
            contention: 1,
            nodes: 5,
            late_percent: LATE_PERCENT_DEFAULT,
            topology: crate::broadcast::TOPOLOGY_DEFAULT.to_string(),
            guarantee: Default::default(),
            consistency: Default::default(),
        }
    }
}

/// Which node an op should go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Any node, drawn by the client.
    Any,
    /// The node at this index of the cluster's node list (modulo its length).
    Node(usize),
    /// Preferably a node that was restarted during the run (the most recently
    /// restarted one, half of the time), else any: a node that lost what it kept only
    /// in memory shows it when asked about the past.
    Restarted,
}

/// A workload: generates client ops and names the checkers that judge them.
pub trait Workload: Send {
    /// The name given to `--workload`.
    fn name(&self) -> &'static str;
    /// The next op for a client to invoke. Deterministic given the RNG.
    fn next_op(&mut self, rng: &mut ChaCha8Rng) -> ClientOp;
    /// The next op and where it should go. Default: [`Workload::next_op`] to any node.
    fn next_targeted(&mut self, rng: &mut ChaCha8Rng) -> (ClientOp, Target) {
        (self.next_op(rng), Target::Any)
    }
    /// Ops sent before any client op, each to its node, once, in order (Maelstrom's
    /// broadcast `topology`); `nodes` is the cluster's node list. Default: none.
    fn setup_ops(&self, nodes: &[String]) -> Vec<(String, ClientOp)> {
        let _ = nodes;
        Vec::new()
    }
    /// Tells the generator how an op it made was answered (every reply to a client op),
    /// so later ops and [`Workload::final_settled`] can use what the nodes said.
    fn observe(&mut self, op: &ClientOp, reply: &ClientReply) {
        let _ = (op, reply);
    }
    /// Ops to send to every live node in the quiet window (e.g. final reads).
    fn final_ops(&self) -> Vec<ClientOp> {
        Vec::new()
    }
    /// Whether a final op's `ok` reply settles it. An unsettled one is tried again until
    /// the quiet window ends (a node may still be catching up). Default: every `ok`.
    fn final_settled(&self, op: &ClientOp, reply: &ClientReply) -> bool {
        let _ = (op, reply);
        true
    }
    /// The checkers for this workload.
    fn checkers(&self) -> Vec<Box<dyn Checker>>;
    /// Algorithms that serve this workload by default.
    fn default_algorithm(&self) -> &'static str;
    /// The key count when `--instances` is not given, for workloads with a fixed small
    /// keyspace; `None` lets the harness size it from the run (write-once).
    fn instances_default(&self) -> Option<u64> {
        None
    }
}

/// Names and one-line descriptions of the workloads, in `squall list` order.
pub const WORKLOADS: &[(&str, &str)] = &[
    ("echo", "clients send echo, nodes answer; every ok reply must echo its request"),
    (
        "durability",
        "clients read what nodes recovered from disk; after SIGKILL a node must find what it synced and nothing it did not",
    ),
    (
        "write-once",
        "clients race to propose values for write-once instances; checks agreement, validity, termination",
    ),
    (
        "lin-kv",
        "read, write and cas on a few keys of a replicated store; checks linearizability per key and that every node serves after heal",
    ),
    (
        "unique-ids",
        "Maelstrom's: generate answers an id; every ok id distinct, across kills and restarts",
    ),
    (
        "g-set",
        "Maelstrom's grow-only set: add and read; every acknowledged element in every final read, nothing never added",
    ),
    (
        "g-counter",
        "Maelstrom's grow-only counter: add and read; final reads are the acknowledged sum plus some unknown adds",
    ),
    (
        "pn-counter",
        "Maelstrom's counter with negative deltas: add and read; final reads as g-counter's, by subset sums",
    ),
    (
        "broadcast",
        "Maelstrom broadcast: topology first, then broadcast and read; every acknowledged message read at every node after the heal",
    ),
    (
        "kafka",
        "Maelstrom kafka: send, poll, commit_offsets, list_committed_offsets; no lost send, no shared offset, no skip, no backwards commit",
    ),
    (
        "multicast",
        "clients ask nodes to multicast values; checks FIFO, causal or total order, reliability and integrity of every node's deliveries",
    ),
    (
        "bank",
        "transfers between nodes' accounts and global snapshots; every snapshot must hold the whole total and be a consistent cut",
    ),
    (
        "txn-rw-register",
        "Maelstrom's transactions of reads and writes on registers; checks G0, G1a, G1b, G1c and internal reads under --consistency-models",
    ),
    (
        "deadlock",
        "nodes wait for each other; snapshot-based deadlock detection must report only real cycles of waits, and every cycle that stood through a snapshot",
    ),
];

/// Builds a workload by name; `None` for an unknown name.
pub fn workload_by_name(name: &str, opts: &WorkloadOpts) -> Option<Box<dyn Workload>> {
    let _ = opts;
    match name {
        "echo" => Some(Box::new(crate::echo::EchoWorkload::new())),
        "durability" => Some(Box::new(crate::durability::DurabilityWorkload)),
        "write-once" => Some(Box::new(crate::write_once::WriteOnceWorkload::new(opts))),
        "lin-kv" => Some(Box::new(crate::lin_kv::LinKvWorkload::new(opts))),
        "unique-ids" => Some(Box::new(crate::unique_ids::UniqueIdsWorkload)),
        "g-set" => Some(Box::new(crate::g_set::GSetWorkload::default())),
        "g-counter" => Some(Box::new(crate::g_counter::workload())),
        "pn-counter" => Some(Box::new(crate::pn_counter::workload())),
        "broadcast" => Some(Box::new(crate::broadcast::BroadcastWorkload::new(opts))),
        "kafka" => Some(Box::new(crate::kafka::KafkaWorkload::new(opts))),
        "multicast" => Some(Box::new(crate::multicast::MulticastWorkload::new(opts))),
        "bank" => Some(Box::new(crate::bank::BankWorkload::new(opts))),
        "txn-rw-register" => Some(Box::new(crate::txn::TxnWorkload::new(opts))),
        "deadlock" => Some(Box::new(crate::deadlock::DeadlockWorkload::new(opts))),
        _ => None,
    }
}
