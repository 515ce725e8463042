//! The router: every message of a run passes through here.
//!
//! Nodes connect over loopback TCP and introduce themselves with a `hello` line that
//! carries the run's secret; the [`gate`] admits one connection per node incarnation that
//! squall started, and closes and counts everything else (never blaming a node). Clients
//! and the harness are local endpoints with in-process channels that no connection can
//! claim. For each envelope the router parses only the head (addresses and body `type`),
//! asks one pure function ([`LinkPolicy::decide`]) what happens on that directed link,
//! and then delivers, delays, duplicates, holds or drops the raw line. Per directed link
//! delivery is FIFO unless the policy marks a copy as free to overtake (the reorder
//! fault).
//!
//! Everything is bounded: each destination has a queue bounded in bytes (a paused node
//! that stops reading makes its queue overflow, which is counted as a drop), so has each
//! local inbox ([`INBOX_BYTES_MAX`] besides its message capacity), held and
//! delayed messages are capped per link, frames are capped at [`proto::FRAME_BYTES_MAX`]
//! and hello lines at [`HELLO_BYTES_MAX`]. Whatever a node controls is bounded too: body
//! types longer than [`TYPE_BYTES_MAX`] or beyond the first [`TYPE_NAMES_MAX`] distinct
//! ones are counted as [`OTHER_TYPE`], and protocol faults are counted per node and kind
//! with only the first [`FAULT_SAMPLES_MAX`] of each reported as events.
//!
//! When asked ([`Router::log_messages`]), the router also keeps a bounded log of every
//! node-to-node copy, its fate and its delivery time ([`msglog`]), for the run report.
//!
//! This file is the routing core: the router's state and its handle, and how one envelope
//! is routed. [`policy`] is the per-link decision; `delivery` carries a decided copy to
//! its destination (held, delayed, queued or written); `conn` is connection handling
//! (accept, hello and admission, the reader and writer of each node connection).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

mod conn;
mod delivery;
pub mod gate;
pub mod msglog;
pub mod policy;
mod types;

pub use gate::Gate;
pub use policy::{Decision, DeliverAll, Delivery, LinkPolicy};

use delivery::{count_drop, deliver_copy, release_opened, write_or_queue, InboxRoom};
use msglog::{Fate, LogSummary, MessageLog};
use types::count_type;

/// Messages queued towards one destination before further ones are dropped.
pub const DEST_QUEUE_MAX: usize = 16 * 1024;
/// Messages held or delayed on one link before further ones are dropped.
pub const LINK_QUEUE_MAX: usize = 64 * 1024;
/// How long a new connection may take to say hello.
pub const HELLO_TIMEOUT_MS: u64 = 5_000;
/// Bytes a connection may send before its hello line ends; a hello is about 100.
pub const HELLO_BYTES_MAX: usize = 4 * 1024;
/// Bytes queued towards one node connection before further messages are dropped.
pub const DEST_QUEUE_BYTES_MAX: usize = 8 << 20;
/// Bytes (bodies and sender names) waiting in one local inbox (a client's or the
/// harness's) before further messages are dropped; the inbox's message capacity is the
/// second cap.
pub const INBOX_BYTES_MAX: usize = 16 << 20;
/// Distinct body types counted by name; later ones are counted as [`OTHER_TYPE`] and
/// the sender is recorded as faulty (`too_many_types`).
pub const TYPE_NAMES_MAX: usize = 256;
/// Longest body type counted by name; longer ones are counted as [`OTHER_TYPE`] and
/// the sender is recorded as faulty (`long_type`).
pub const TYPE_BYTES_MAX: usize = 64;
/// The name types beyond [`TYPE_NAMES_MAX`] or [`TYPE_BYTES_MAX`] are counted under
/// (not a valid-looking type, so no node can send it by accident).
pub const OTHER_TYPE: &str = "(other)";
/// Faults of one kind by one node reported as [`RouterEvent::Faulty`]; the rest are
/// only counted ([`Router::fault_counts`]).
pub const FAULT_SAMPLES_MAX: u64 = 3;
const _: () = assert!(TYPE_NAMES_MAX < u16::MAX as usize);

/// A message handed to a local endpoint (client or harness).
#[derive(Debug, Clone)]
pub struct Delivered {
    /// Sender address.
    pub src: String,
    /// The raw body JSON.
    pub body: String,
    /// Microseconds since the run's start, at delivery.
    pub at_us: u64,
    /// Gives the message's bytes back to its inbox when the message is dropped.
    _room: InboxRoom,
}

/// Things the run loop needs to know about connections.
#[derive(Debug, Clone)]
pub enum RouterEvent {
    /// A node connected and said hello.
    Connected {
        /// The node.
        node: String,
    },
    /// A node's connection closed.
    Disconnected {
        /// The node.
        node: String,
    },
    /// An admitted node broke the protocol (garbage, oversized line, spoofed source).
    /// Connections the gate refused are counted there, never reported as this. Only the
    /// first [`FAULT_SAMPLES_MAX`] of each `(node, kind)` are sent; all are counted.
    Faulty {
        /// The node.
        node: String,
        /// What kind of fault (`unknown_address`, `garbage`, ...), for counting.
        kind: &'static str,
        /// What it did.
        what: String,
    },
}

/// Counters of one directed link.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LinkStats {
    /// Messages the source sent on this link.
    pub sent: u64,
    /// Copies delivered to the destination.
    pub delivered: u64,
    /// Drops by reason (`cut`, `drop`, `dest_down`, `overflow`, ...).
    pub dropped: BTreeMap<String, u64>,
    /// Messages delivered late (delay > 0).
    pub delayed: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Copies allowed to overtake.
    pub reordered: u64,
    /// Messages held by a clog/partition.
    pub held: u64,
    /// Messages by body type.
    pub by_type: BTreeMap<String, u64>,
}

/// A node connection's outbound side. While `backlog` is false the router writes lines
/// straight to the socket from whichever task routes them (no task hop, no wake-up); when
/// the socket would block, lines queue on `tx` for the connection's writer task, in order,
/// until it drains the queue and clears `backlog` (under the state lock, so no line can
/// slip past the queue).
#[derive(Clone)]
struct TcpSink {
    wr: Arc<tokio::net::tcp::OwnedWriteHalf>,
    tx: mpsc::Sender<Vec<u8>>,
    backlog: bool,
    /// Bytes on `tx` not yet taken by the writer: the queue is bounded by
    /// [`DEST_QUEUE_BYTES_MAX`] (batches vary in size, so counting them bounds nothing).
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Clone)]
enum Sink {
    Tcp(TcpSink),
    Local(LocalSink),
}

/// A local endpoint's inbox, bounded in messages by the channel and in bytes by
/// `queued` (see [`INBOX_BYTES_MAX`]).
#[derive(Clone)]
struct LocalSink {
    tx: mpsc::Sender<Delivered>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

/// Lines bound for node sockets, gathered while routing one read's worth of frames and
/// written once per destination: one syscall per destination per batch. There is one,
/// in [`State`], shared by every task that routes: a copy joins it under the state lock
/// and every flush writes all of it in that order, so a copy released from a hold or a
/// delay can never be overtaken by a later copy on its link that another task routed
/// and flushed first (per-link FIFO across tasks).
#[derive(Default)]
struct Batch {
    /// (destination, link, bytes, messages)
    out: Vec<(usize, usize, Vec<u8>, u64)>,
}

struct Pending {
    dest: usize,
    link: usize,
    line: Vec<u8>,
    /// The copy's message-log sequence number, or [`msglog::NONE`].
    log: u64,
}

struct State {
    addrs: Vec<String>,
    index: HashMap<String, usize>,
    sinks: Vec<Option<Sink>>,
    conn: Vec<u64>,
    links: Vec<LinkStats>,
    /// Per link: copies in flight in `delayed` that must keep FIFO, and the latest
    /// delivery time given to a FIFO copy.
    fifo_in_flight: Vec<usize>,
    fifo_last_us: Vec<u64>,
    /// Per link: held lines and their message-log sequence numbers.
    held: Vec<VecDeque<(Vec<u8>, u64)>>,
    delayed: BinaryHeap<Reverse<(u64, u64)>>,
    delayed_items: HashMap<u64, (Pending, bool)>,
    seq: u64,
    policy: Box<dyn LinkPolicy>,
    /// Messages by body type, and the type's index in `type_names`.
    type_counts: HashMap<String, (u64, u16)>,
    type_names: Vec<String>,
    log: Option<MessageLog>,
    /// Copies handed to socket sinks and not yet written; see [`Batch`].
    out: Batch,
}

impl State {
    /// Records what became of a logged copy.
    #[inline]
    fn settle(&mut self, seq: u64, fate: Fate, now: u64) {
        if let Some(log) = &mut self.log {
            log.settle(seq, fate, now);
        }
    }
}

struct Shared {
    state: Mutex<State>,
    // Unbounded, but fed at most FAULT_SAMPLES_MAX faults per (node, kind) and one
    // connect and disconnect per connection the gate admitted (one per incarnation).
    events: mpsc::UnboundedSender<RouterEvent>,
    /// Faults by node and kind, all of them (the events carry only the first few).
    faults: Mutex<BTreeMap<(String, &'static str), u64>>,
    start: Instant,
    /// `start` on the host's `CLOCK_MONOTONIC`, which `Instant` reads (for node stamps).
    start_mono_ns: u64,
    timer: Notify,
    next_conn: std::sync::atomic::AtomicU64,
    gate: Gate,
}

/// A handle to the router; cheap to clone.
#[derive(Clone)]
pub struct Router {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

/// A snapshot of the router's counters.
#[derive(Debug, Clone, Serialize)]
pub struct RouterStats {
    /// Per link `"src->dest"`.
    pub links: BTreeMap<String, LinkStats>,
    /// Messages sent, by body type.
    pub by_type: BTreeMap<String, u64>,
}

impl Router {
    /// Binds a loopback listener and starts accepting. `addrs` are every address of the
    /// run (nodes, clients, `harness`); messages to anything else are dropped and counted.
    /// `gate` decides which connections may speak for which node (the supervisor must
    /// start the nodes with the same gate). Times the router reports are microseconds
    /// since `start`, the run's clock.
    pub async fn start(
        addrs: &[String],
        gate: Gate,
        start: Instant,
        tasks: &mut JoinSet<()>,
    ) -> anyhow::Result<(Router, mpsc::UnboundedReceiver<RouterEvent>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local_addr = listener.local_addr()?;
        let n = addrs.len();
        let state = State {
            addrs: addrs.to_vec(),
            index: addrs
                .iter()
                .enumerate()
                .map(|(i, a)| (a.clone(), i))
                .collect(),
            sinks: vec![None; n],
            conn: vec![0; n],
            links: vec![LinkStats::default(); n * n],
            fifo_in_flight: vec![0; n * n],
            fifo_last_us: vec![0; n * n],
            held: vec![VecDeque::new(); n * n],
            delayed: BinaryHeap::new(),
            delayed_items: HashMap::new(),
            seq: 0,
            policy: Box::new(DeliverAll),
            type_counts: HashMap::new(),
            type_names: Vec::new(),
            log: None,
            out: Batch::default(),
        };
        let (events, events_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            events,
            faults: Mutex::new(BTreeMap::new()),
            start,
            start_mono_ns: proto::report::monotonic_ns()
                .saturating_sub(start.elapsed().as_nanos() as u64),
            timer: Notify::new(),
            next_conn: std::sync::atomic::AtomicU64::new(1),
            gate,
        });
        let router = Router { shared, local_addr };
        let r = router.clone();
        tasks.spawn(async move { r.accept_loop(listener).await });
        let r = router.clone();
        tasks.spawn(async move { r.timer_loop().await });
        Ok((router, events_rx))
    }

    /// Who may connect, and who was turned away.
    pub fn gate(&self) -> &Gate {
        &self.shared.gate
    }

    /// The `127.0.0.1:port` nodes connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Microseconds since the run's start.
    pub fn now_us(&self) -> u64 {
        self.shared.start.elapsed().as_micros() as u64
    }

    /// A node's `mono_ns` stamp as nanoseconds since the run's start, if it lies in the
    /// run before `arrived_us`, when the stamped report reached the router (a node in
    /// another time namespace reads another monotonic clock; its stamps are ignored).
    pub fn made_ns(&self, mono_ns: u64, arrived_us: u64) -> Option<u64> {
        let since = mono_ns.checked_sub(self.shared.start_mono_ns)?;
        (since <= (arrived_us + 1) * 1_000).then_some(since)
    }

    /// Replaces the link policy (the nemesis installs its fault table here).
    pub fn set_policy(&self, policy: Box<dyn LinkPolicy>) {
        self.lock().policy = policy;
    }

    /// Runs `f` on the current policy (to apply or lift faults), then releases, in
    /// order, the messages held on links the change opened.
    pub fn with_policy<R>(&self, f: impl FnOnce(&mut dyn LinkPolicy) -> R) -> R {
        let now = self.now_us();
        let mut st = self.lock();
        let out = f(st.policy.as_mut());
        release_opened(&mut st, now);
        drop(st);
        self.flush();
        self.shared.timer.notify_one();
        out
    }

    /// Starts logging every node-to-node message copy (see [`msglog`]); `nodes` are the
    /// addresses that are nodes; `messages.jsonl` will take at most `bytes_max` bytes.
    pub fn log_messages(&self, nodes: &[String], bytes_max: u64) {
        let mut st = self.lock();
        let is_node = st.addrs.iter().map(|a| nodes.contains(a)).collect();
        st.log = Some(MessageLog::new(is_node, bytes_max));
    }

    /// Writes the message log to `path` and stops logging; `None` if it was not on.
    pub fn write_message_log(&self, path: &std::path::Path) -> anyhow::Result<Option<LogSummary>> {
        let (log, addrs, types) = {
            let mut st = self.lock();
            let Some(log) = st.log.take() else {
                return Ok(None);
            };
            (log, st.addrs.clone(), st.type_names.clone())
        };
        log.write_jsonl(path, &addrs, &types).map(Some)
    }

    /// Registers a local endpoint (client or harness) and returns its inbox.
    pub fn register_local(&self, addr: &str, capacity: usize) -> mpsc::Receiver<Delivered> {
        let (tx, rx) = mpsc::channel(capacity);
        let mut st = self.lock();
        let i = *st
            .index
            .get(addr)
            .expect("local endpoints are declared at start");
        st.sinks[i] = Some(Sink::Local(LocalSink {
            tx,
            queued: Arc::default(),
        }));
        rx
    }

    /// Sends a message from a local endpoint. The body must be a JSON object.
    pub fn send_local(&self, src: &str, dest: &str, body_json: &str) {
        let line = proto::envelope::frame_raw(src, dest, body_json);
        let ty = proto::envelope::body_type(body_json).unwrap_or_default();
        self.route(src, dest, &ty, msglog::Salient::default(), line);
    }

    /// Closes a node's connection from the router side (used after a kill so that a
    /// stale connection cannot deliver).
    pub fn disconnect(&self, node: &str) {
        let mut st = self.lock();
        if let Some(&i) = st.index.get(node) {
            st.sinks[i] = None;
            st.conn[i] = 0;
        }
    }

    /// A snapshot of all counters (links with no traffic are left out).
    pub fn stats(&self) -> RouterStats {
        let st = self.lock();
        let n = st.addrs.len();
        let mut links = BTreeMap::new();
        for (i, l) in st.links.iter().enumerate() {
            if l.sent > 0 || l.delivered > 0 {
                links.insert(
                    format!("{}->{}", st.addrs[i / n], st.addrs[i % n]),
                    l.clone(),
                );
            }
        }
        let by_type = st
            .type_counts
            .iter()
            .map(|(k, (count, _))| (k.clone(), *count))
            .collect();
        RouterStats { links, by_type }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .expect("router state lock poisoned")
    }

    /// Records that `node` broke the protocol in a way only its reader can tell (a
    /// client given a reply of the wrong type), as the router records its own findings.
    pub fn node_fault(&self, node: &str, what: String) {
        self.fault(node, "bad_reply", || what);
    }

    /// Counts a fault of `node`; the first [`FAULT_SAMPLES_MAX`] of its kind become
    /// events (`what` is only called for those).
    fn fault(&self, node: &str, kind: &'static str, what: impl FnOnce() -> String) {
        let count = {
            let mut faults = self.shared.faults.lock().expect("fault counts lock");
            let c = faults.entry((node.to_string(), kind)).or_insert(0);
            *c += 1;
            *c
        };
        if count <= FAULT_SAMPLES_MAX {
            self.event(RouterEvent::Faulty {
                node: node.to_string(),
                kind,
                what: what(),
            });
        }
    }

    /// Every fault counted so far, by node and kind (events carry only the first few).
    pub fn fault_counts(&self) -> Vec<(String, &'static str, u64)> {
        let faults = self.shared.faults.lock().expect("fault counts lock");
        faults
            .iter()
            .map(|((n, k), c)| (n.clone(), *k, *c))
            .collect()
    }

    fn event(&self, e: RouterEvent) {
        let _ = self.shared.events.send(e);
    }

    /// Routes one message and writes the shared batch under the same lock.
    fn route(&self, src: &str, dest: &str, ty: &str, salient: msglog::Salient, line: Vec<u8>) {
        self.route_into(src, dest, ty, salient, line, true);
    }

    /// Writes the shared batch: straight to each socket when it has no backlog, else queued.
    fn flush(&self) {
        write_out(&mut self.lock());
    }

    /// Routes one message into the shared batch; with `write`, also writes the batch
    /// before letting go of the state lock (one lock instead of two for a lone message).
    fn route_into(
        &self,
        src: &str,
        dest: &str,
        ty: &str,
        salient: msglog::Salient,
        line: Vec<u8>,
        write: bool,
    ) {
        let now = self.now_us();
        let mut st = self.lock();
        let n = st.addrs.len();
        let Some(&s) = st.index.get(src) else { return };
        let (ty_id, folded) = count_type(&mut st, ty);
        if let Some(kind) = folded {
            drop(st);
            self.fault(src, kind, || match kind {
                "long_type" => format!(
                    "sent a message whose type is longer than {TYPE_BYTES_MAX} bytes: {}",
                    crate::text::truncate(ty, 40)
                ),
                _ => format!("sent more than {TYPE_NAMES_MAX} distinct message types: {ty}"),
            });
            st = self.lock();
        }
        let ty = if folded.is_some() { OTHER_TYPE } else { ty };
        let Some(&d) = st.index.get(dest) else {
            drop(st);
            let dest = crate::text::truncate(dest, 40);
            self.fault(src, "unknown_address", || {
                format!("sent a {ty} message to unknown address '{dest}'")
            });
            return;
        };
        let link = s * n + d;
        {
            let stats = &mut st.links[link];
            stats.sent += 1;
            if let Some(c) = stats.by_type.get_mut(ty) {
                *c += 1;
            } else {
                stats.by_type.insert(ty.to_string(), 1);
            }
        }
        let decision = st.policy.decide(src, dest, ty, now);
        release_opened(&mut st, now);
        let log = |st: &mut State, fate: Fate, dup: bool| match &mut st.log {
            Some(l) if l.wants(s, d) => l.push(now, s, d, ty_id, salient, fate, dup),
            _ => msglog::NONE,
        };
        match decision {
            Decision::Drop(cause) => {
                count_drop(&mut st.links[link], cause);
                log(&mut st, Fate::from_cause(cause), false);
            }
            Decision::Hold => {
                if st.held[link].len() >= LINK_QUEUE_MAX {
                    count_drop(&mut st.links[link], "overflow");
                    log(&mut st, Fate::Overflow, false);
                } else {
                    st.links[link].held += 1;
                    let seq = log(&mut st, Fate::Held, false);
                    st.held[link].push_back((line, seq));
                }
            }
            Decision::Deliver(copies) => {
                let last = copies.len().saturating_sub(1);
                if copies.len() > 1 {
                    st.links[link].duplicated += (copies.len() - 1) as u64;
                }
                let mut line = Some(line);
                for (i, copy) in copies.into_iter().enumerate() {
                    let bytes = if i == last {
                        line.take().expect("last copy takes the line")
                    } else {
                        line.as_ref().expect("line present").clone()
                    };
                    if copy.delay_us > 0 {
                        st.links[link].delayed += 1;
                    }
                    if !copy.fifo {
                        st.links[link].reordered += 1;
                    }
                    let seq = log(&mut st, Fate::InFlight, i > 0);
                    deliver_copy(&mut st, d, link, bytes, seq, copy, now);
                }
            }
        }
        if write {
            write_out(&mut st);
        }
        let wake = !st.delayed.is_empty();
        drop(st);
        if wake {
            self.shared.timer.notify_one();
        }
    }
}

/// Writes everything in the shared batch, in the order it joined (see [`Batch`]).
fn write_out(st: &mut State) {
    for (dest, link, bytes, n) in std::mem::take(&mut st.out.out) {
        write_or_queue(st, dest, link, bytes, n);
    }
}

#[cfg(test)]
mod tests;
