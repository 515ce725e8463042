//! Clients in virtual time, and the history they write.
//!
//! A lockstep client is the free-running client worker (`crate::clients`) replayed in
//! virtual time: the same Jepsen processes (one op in flight, a fresh process after an
//! `info`), the same open-loop schedule (`rate / clients` ops per second per client,
//! staggered by a random offset, late ops counted), the same RNG seeds per client, the
//! same recording rules. Only the clock differs: times in `history.jsonl` are virtual
//! nanoseconds since the start of the run.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use proto::ops::ClientOp;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use workloads::history::{Event, EventType};

use crate::lifecycle::{chunk_len, final_work, OpClock};

/// Writes `history.jsonl`, giving events dense indices in file order.
pub struct HistoryWriter {
    out: BufWriter<File>,
    next_index: u64,
}

impl HistoryWriter {
    /// Creates (truncating) the history file.
    pub fn create(path: &Path) -> anyhow::Result<HistoryWriter> {
        let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
        Ok(HistoryWriter {
            out: BufWriter::new(file),
            next_index: 0,
        })
    }

    /// Appends one event at virtual time `time_ns`.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        time_ns: u64,
        process: u64,
        ty: EventType,
        f: &str,
        value: Value,
        node: Option<&str>,
        error: Option<String>,
    ) -> anyhow::Result<()> {
        let ev = Event {
            index: self.next_index,
            process,
            ty,
            f: f.to_string(),
            value: value.into(),
            time: time_ns,
            node: node.map(str::to_string),
            error,
        };
        self.next_index += 1;
        serde_json::to_writer(&mut self.out, &ev)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Flushes and syncs the file.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        Ok(())
    }
}

pub use crate::clients::Answer;

/// Records the completion `answer` implies, as [`crate::clients::record_call`] does.
/// Returns whether the process must be retired (outcome unknown), and the node's
/// protocol fault, if its answer was one.
pub fn record_completion(
    history: &mut HistoryWriter,
    time_ns: u64,
    process: u64,
    node: &str,
    op: &ClientOp,
    answer: &Answer,
) -> anyhow::Result<(bool, Option<String>)> {
    let c = crate::clients::Completion::of(op, answer);
    let retire = c.retires();
    history.record(time_ns, process, c.ty, op.f(), c.value, Some(node), c.error)?;
    Ok((retire, c.fault))
}

/// An op a client has sent and not yet seen answered.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// The request's `msg_id`.
    pub msg_id: u64,
    /// The node it went to.
    pub node: String,
    /// The Jepsen process that invoked it: its completion is that process's, even if
    /// the client moved on to a fresh process meanwhile (the final phase starts one).
    pub process: u64,
    /// The op.
    pub op: ClientOp,
    /// For a final read: retries left if it returns null.
    pub retries_left: u32,
}

/// One final op still to send.
#[derive(Debug, Clone)]
pub struct FinalOp {
    /// The node to ask.
    pub node: String,
    /// The op.
    pub op: ClientOp,
    /// Retries left if a read returns null.
    pub retries_left: u32,
}

/// One client worker `cK` in virtual time.
pub struct VClient {
    /// Its address.
    pub addr: String,
    /// Node choice and op generation.
    pub rng: ChaCha8Rng,
    /// Its current Jepsen process.
    pub process: u64,
    /// When its ops are due, open loop (virtual µs).
    pub clock: OpClock,
    /// The last `msg_id` used.
    pub next_msg_id: u64,
    /// The op in flight.
    pub inflight: Option<InFlight>,
    /// Final ops still to send.
    pub work: VecDeque<FinalOp>,
}

impl VClient {
    /// Client `index` (0-based) of a run with `seed`, issuing every `interval_us`; its
    /// first op is due at a random offset within one interval, as in free-running runs.
    pub fn new(index: usize, seed: u64, process: u64, interval_us: u64) -> VClient {
        let mut rng = ChaCha8Rng::seed_from_u64(crate::clients::client_seed(seed, index));
        let clock = OpClock::new(interval_us, &mut rng);
        VClient {
            addr: format!("c{}", index + 1),
            rng,
            process,
            clock,
            next_msg_id: 0,
            inflight: None,
            work: VecDeque::new(),
        }
    }

    /// Whether it has nothing in flight and nothing left to send.
    pub fn is_done(&self) -> bool {
        self.inflight.is_none() && self.work.is_empty()
    }
}

/// Splits `final_ops` for every node in `nodes` over `clients` workers, in order: worker
/// `i` gets the `i`-th chunk (as free-running runs split them).
pub fn split_final_ops(
    nodes: &[String],
    final_ops: &[ClientOp],
    clients: usize,
    retries: u32,
) -> Vec<Vec<FinalOp>> {
    let work: Vec<FinalOp> = final_work(nodes, final_ops)
        .into_iter()
        .map(|(node, op)| FinalOp {
            node,
            op,
            retries_left: retries,
        })
        .collect();
    let chunk = chunk_len(work.len(), clients);
    let mut out: Vec<Vec<FinalOp>> = work.chunks(chunk).map(<[_]>::to_vec).collect();
    out.resize_with(clients, Vec::new);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_ops_are_split_in_order_over_every_client() {
        let nodes = vec!["n1".to_string(), "n2".to_string()];
        let ops: Vec<ClientOp> = (0..3).map(|key| ClientOp::Read { key }).collect();
        let split = split_final_ops(&nodes, &ops, 4, 2);
        assert_eq!(split.len(), 4);
        let sizes: Vec<usize> = split.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 2, 2, 0]);
        assert_eq!(split[1][0].node, "n1");
        assert_eq!(split[1][1].node, "n2");
        assert!(split_final_ops(&nodes, &[], 3, 2).iter().all(Vec::is_empty));
    }

    #[test]
    fn clients_stagger_within_one_interval_and_repeat_per_seed() {
        let a = VClient::new(0, 7, 0, 40_000);
        let b = VClient::new(0, 7, 0, 40_000);
        let c = VClient::new(1, 7, 1, 40_000);
        assert_eq!(a.clock, b.clock);
        assert_ne!(a.clock.next_start(), c.clock.next_start());
        assert!(a.clock.next_start() < 40_000 && c.clock.next_start() < 40_000);
        assert_eq!(c.addr, "c2");
    }
}
