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
        "bank",
        "transfers between nodes' accounts and global snapshots; every snapshot must hold the whole total and be a consistent cut",
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
        "bank" => Some(Box::new(crate::bank::BankWorkload::new(opts))),
        _ => None,
    }
}
