//! What the harness itself saw of a multicast run: the multicasts (from the history), each
//! node's delivery sequences (from its reports, one per incarnation), which nodes are
//! correct, and the FIFO and causal relations between multicasts — all from the record,
//! none from the algorithm's clocks.

use std::collections::{BTreeMap, BTreeSet};

use proto::ops::ClientReply;
use proto::Report;
use serde_json::{json, Value};

use crate::history::{EventType, Outcome};
use crate::verdict::CheckInput;

/// The most multicasts whose FIFO and causal relations are computed (two bit matrices of
/// this many squared bits: 12.5 MB each); beyond it those checkers say `unknown`.
pub const MESSAGES_MAX: usize = 10_000;

/// One multicast op.
#[derive(Debug, Clone)]
pub struct Message {
    /// The value (unique in the run).
    pub value: u64,
    /// The node the op asked to multicast it.
    pub sender: String,
    /// The op's invoke time (ns).
    pub invoked: u64,
    /// How the op ended.
    pub outcome: Outcome,
}

impl Message {
    /// The message as evidence names it.
    pub fn json(&self) -> Value {
        json!({"value": self.value, "sender": self.sender, "invoked_ns": self.invoked,
               "outcome": self.outcome})
    }
}

/// The deliveries of one node incarnation, in order.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// The node.
    pub node: String,
    /// 0 for the first incarnation that delivered, 1 for the next, ...
    pub incarnation: usize,
    /// Whether the node was never killed or crashed in the run.
    pub correct: bool,
    /// Delivered values with the time each was reported (ns).
    pub deliveries: Vec<(u64, u64)>,
}

impl Sequence {
    /// `n3` or `n3 (incarnation 2)`.
    pub fn name(&self) -> String {
        match self.incarnation {
            0 => self.node.clone(),
            i => format!("{} (incarnation {})", self.node, i + 1),
        }
    }

    /// Position of `value`, if delivered.
    pub fn position(&self, value: u64) -> Option<usize> {
        self.deliveries.iter().position(|(v, _)| *v == value)
    }
}

/// A set of messages by index, as bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bits(Vec<u64>);

impl Bits {
    /// The empty set of `n` messages.
    pub fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }

    /// Adds message `i`.
    pub fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    /// Removes message `i`.
    pub fn clear_one(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }

    /// Whether message `i` is in.
    pub fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// Adds every message of `other`.
    pub fn union(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }

    /// The first message in `self` and not in `other`.
    pub fn first_outside(&self, other: &Bits) -> Option<usize> {
        self.0
            .iter()
            .zip(&other.0)
            .enumerate()
            .find(|(_, (a, b))| **a & !**b != 0)
            .map(|(w, (a, b))| w * 64 + (a & !b).trailing_zeros() as usize)
    }

    /// Empties it.
    pub fn clear(&mut self) {
        self.0.iter_mut().for_each(|w| *w = 0);
    }
}

/// The run as the multicast checkers see it.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Multicast ops in invoke order; a message's index is its place here.
    pub messages: Vec<Message>,
    /// Value -> message index.
    pub by_value: BTreeMap<u64, usize>,
    /// Every node incarnation's deliveries, by node then incarnation.
    pub sequences: Vec<Sequence>,
    /// Final reads: node -> the delivered values it answered with (the last answer).
    pub reads: BTreeMap<String, Vec<u64>>,
    /// Nodes never killed or crashed.
    pub correct: BTreeSet<String>,
}

/// The relation "m must be delivered before m'": for each message, its predecessors.
pub type Relation = Vec<Bits>;

impl Record {
    /// Reads the record from a run's evidence.
    pub fn build(input: &CheckInput) -> Record {
        let mut r = Record::default();
        let mut nodes: BTreeSet<String> = input.live_nodes.iter().cloned().collect();
        for op in input.history.ops() {
            match op.f.as_str() {
                "mcast" => {
                    let (Some(value), Some(sender)) = (op.input["value"].as_u64(), &op.node) else {
                        continue;
                    };
                    nodes.insert(sender.clone());
                    r.by_value.insert(value, r.messages.len());
                    r.messages.push(Message {
                        value,
                        sender: sender.clone(),
                        invoked: op.invoke_time,
                        outcome: op.outcome,
                    });
                }
                "mcast_read" if op.outcome == Outcome::Ok => {
                    let Some(node) = &op.node else { continue };
                    let delivered = op.output.as_ref().and_then(|o| {
                        let body = json!({"type": "mcast_read_ok", "delivered": o["delivered"]});
                        match serde_json::from_value(body) {
                            Ok(ClientReply::McastReadOk { delivered }) => Some(delivered),
                            _ => None,
                        }
                    });
                    if let Some(d) = delivered {
                        r.reads.insert(node.clone(), d);
                    }
                }
                _ => {}
            }
        }
        let mut reports: Vec<(u64, &str, u64, u64)> = input
            .reports
            .iter()
            .filter_map(|t| match t.report {
                Report::Delivered { value, seq } => Some((t.at(), t.node.as_str(), value, seq)),
                _ => None,
            })
            .collect();
        reports.sort_by_key(|(time, ..)| *time);
        let mut last_seq: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
        for (time, node, value, seq) in reports {
            nodes.insert(node.to_string());
            let (incarnation, new) = match last_seq.get(node) {
                None => (0, true),
                Some((i, last)) if seq <= *last => (i + 1, true),
                Some((i, _)) => (*i, false),
            };
            last_seq.insert(node, (incarnation, seq));
            if new {
                r.sequences.push(Sequence {
                    node: node.to_string(),
                    incarnation,
                    correct: false,
                    deliveries: Vec::new(),
                });
            }
            let s = r
                .sequences
                .iter_mut()
                .rev()
                .find(|s| s.node == node)
                .expect("pushed above");
            s.deliveries.push((value, time));
        }
        r.sequences
            .sort_by(|a, b| (&a.node, a.incarnation).cmp(&(&b.node, b.incarnation)));
        let killed: BTreeSet<&String> = input
            .faults
            .iter()
            .filter(|f| f.kind == "kill")
            .flat_map(|f| &f.nodes)
            .collect();
        r.correct = nodes.into_iter().filter(|n| !killed.contains(n)).collect();
        for s in &mut r.sequences {
            s.correct = r.correct.contains(&s.node);
        }
        r
    }

    /// Message `i` as evidence names it.
    pub fn message(&self, i: usize) -> Value {
        self.messages[i].json()
    }

    /// The FIFO and causal relations, or `None` past [`MESSAGES_MAX`] messages.
    ///
    /// Walks the history in file order (a squall history's file order is causal) with
    /// the delivery reports and kills merged in by time; each node has a past: the
    /// multicasts it answered `mcast_ok` for (FIFO), and those plus every message it
    /// reported delivering, each with its own past (causal). A multicast's predecessors
    /// are its node's past when it was invoked. A delivery counts only if its stamp is
    /// strictly earlier than the invoke; a kill or crash empties the node's past.
    pub fn relations(&self, input: &CheckInput) -> Option<(Relation, Relation)> {
        let n = self.messages.len();
        if n > MESSAGES_MAX {
            return None;
        }
        // Timed events merged in: deliveries (value known) and kills.
        let mut timed: Vec<(u64, &str, Option<usize>)> = input
            .reports
            .iter()
            .filter_map(|t| match t.report {
                Report::Delivered { value, .. } => {
                    let i = *self.by_value.get(&value)?;
                    Some((t.at(), t.node.as_str(), Some(i)))
                }
                _ => None,
            })
            .collect();
        for f in input.faults.iter().filter(|f| f.kind == "kill") {
            timed.extend(f.nodes.iter().map(|n| (f.start, n.as_str(), None)));
        }
        timed.sort_by_key(|(t, ..)| *t);
        let mut timed = timed.into_iter().peekable();
        let mut fifo: Relation = vec![Bits::new(n); n];
        let mut causal: Relation = vec![Bits::new(n); n];
        let mut past: BTreeMap<&str, (Bits, Bits)> = BTreeMap::new();
        let mut open: BTreeMap<u64, usize> = BTreeMap::new();
        for e in &input.history.events {
            while let Some((_, node, what)) = timed.next_if(|(t, ..)| *t < e.time) {
                let (pf, pc) = past
                    .entry(node)
                    .or_insert_with(|| (Bits::new(n), Bits::new(n)));
                match what {
                    Some(i) => {
                        pc.union(&causal[i]);
                        pc.set(i);
                    }
                    None => {
                        pf.clear();
                        pc.clear();
                    }
                }
            }
            if e.f != "mcast" {
                continue;
            }
            let Some(node) = e.node.as_deref() else {
                continue;
            };
            let (pf, pc) = past
                .entry(node)
                .or_insert_with(|| (Bits::new(n), Bits::new(n)));
            match e.ty {
                EventType::Invoke => {
                    let Some(&i) = e.value["value"]
                        .as_u64()
                        .and_then(|v| self.by_value.get(&v))
                    else {
                        continue;
                    };
                    open.insert(e.process, i);
                    fifo[i] = pf.clone();
                    causal[i] = pc.clone();
                }
                EventType::Ok => {
                    let Some(i) = open.remove(&e.process) else {
                        continue;
                    };
                    pf.union(&fifo[i]);
                    pf.set(i);
                    pc.union(&causal[i]);
                    pc.set(i);
                }
                _ => {
                    open.remove(&e.process);
                }
            }
        }
        Some((fifo, causal))
    }
}
