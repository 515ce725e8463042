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
//! Everything is bounded: each destination has a bounded queue (a paused node that stops
//! reading makes its queue overflow, which is counted as a drop), held and delayed messages
//! are capped per link, and frames are capped at [`proto::FRAME_BYTES_MAX`].
//!
//! When asked ([`Router::log_messages`]), the router also keeps a bounded log of every
//! node-to-node copy, its fate and its delivery time ([`msglog`]), for the run report.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use proto::{EnvelopeHead, LineDecoder};
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub mod gate;
pub mod msglog;

pub use gate::Gate;
use gate::Refusal;

use msglog::{Fate, LogSummary, MessageLog};

/// Messages queued towards one destination before further ones are dropped.
pub const DEST_QUEUE_MAX: usize = 16 * 1024;
/// Messages held or delayed on one link before further ones are dropped.
pub const LINK_QUEUE_MAX: usize = 64 * 1024;
/// How long a new connection may take to say hello.
pub const HELLO_TIMEOUT_MS: u64 = 5_000;

/// One copy of a message to deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Extra delay before delivery, in microseconds.
    pub delay_us: u64,
    /// Whether this copy keeps FIFO order on its link (false: it may overtake).
    pub fifo: bool,
}

/// What happens to one message on one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Deliver each copy (two copies: duplicated).
    Deliver(Vec<Delivery>),
    /// Drop it, for the given reason (counted under that name).
    Drop(&'static str),
    /// Queue it until the link heals.
    Hold,
}

impl Decision {
    /// Deliver once, now, in order.
    pub fn deliver() -> Self {
        Decision::Deliver(vec![Delivery {
            delay_us: 0,
            fifo: true,
        }])
    }
}

/// The pure per-link decision. Implemented by the nemesis; [`DeliverAll`] is the default.
pub trait LinkPolicy: Send + 'static {
    /// Decides the fate of one message from `src` to `dest` of body type `ty`.
    fn decide(&mut self, src: &str, dest: &str, ty: &str, now_us: u64) -> Decision;
    /// The concrete policy, so its owner can change it (apply or lift faults).
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
    /// Links `(src, dest)` whose held messages must be released now, because a change
    /// to the policy (a heal, or a fault fired by a trigger inside `decide`) opened them.
    /// The router asks after every `decide` and every [`Router::with_policy`], and
    /// releases them before routing anything else, so held messages keep their order.
    fn take_released(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// The fault-free policy.
pub struct DeliverAll;

impl LinkPolicy for DeliverAll {
    fn decide(&mut self, _src: &str, _dest: &str, _ty: &str, _now_us: u64) -> Decision {
        Decision::deliver()
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// The nemesis's fault table decides for real runs. Client and harness traffic is never
/// faulted: the table knows only nodes and delivers anything else.
impl LinkPolicy for crate::nemesis::LinkTable {
    fn decide(&mut self, src: &str, dest: &str, ty: &str, now_us: u64) -> Decision {
        use crate::nemesis::Decision as N;
        match crate::nemesis::LinkTable::decide(self, src, dest, ty, now_us) {
            N::Deliver { copies } => Decision::Deliver(
                copies
                    .iter()
                    .map(|c| Delivery {
                        delay_us: c.delay_us,
                        fifo: c.fifo,
                    })
                    .collect(),
            ),
            N::Drop { cause } => Decision::Drop(cause.as_str()),
            N::Hold => Decision::Hold,
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// A message handed to a local endpoint (client or harness).
#[derive(Debug, Clone)]
pub struct Delivered {
    /// Sender address.
    pub src: String,
    /// The raw body JSON.
    pub body: String,
    /// Microseconds since the run's start, at delivery.
    pub at_us: u64,
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
    /// Connections the gate refused are counted there, never reported as this.
    Faulty {
        /// The node.
        node: String,
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
}

#[derive(Clone)]
enum Sink {
    Tcp(TcpSink),
    Local(mpsc::Sender<Delivered>),
}

/// Lines bound for node sockets, gathered while routing one read's worth of frames and
/// written once per destination: one syscall per destination per batch.
#[derive(Default)]
struct Batch {
    /// (destination, link, bytes, messages)
    out: Vec<(usize, usize, Vec<u8>, u64)>,
}

impl Batch {
    fn add(&mut self, dest: usize, link: usize, line: &[u8]) {
        match self
            .out
            .iter_mut()
            .find(|(d, l, _, _)| *d == dest && *l == link)
        {
            Some((_, _, bytes, n)) => {
                bytes.extend_from_slice(line);
                *n += 1;
            }
            None => self.out.push((dest, link, line.to_vec(), 1)),
        }
    }
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
    events: mpsc::UnboundedSender<RouterEvent>,
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
        };
        let (events, events_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            events,
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
        let mut batch = Batch::default();
        let mut st = self.lock();
        let out = f(st.policy.as_mut());
        release_opened(&mut st, now, &mut batch);
        drop(st);
        self.flush(&mut batch);
        self.shared.timer.notify_one();
        out
    }

    /// Starts logging every node-to-node message copy (see [`msglog`]); `nodes` are the
    /// addresses that are nodes.
    pub fn log_messages(&self, nodes: &[String]) {
        let mut st = self.lock();
        let is_node = st.addrs.iter().map(|a| nodes.contains(a)).collect();
        st.log = Some(MessageLog::new(is_node));
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
        st.sinks[i] = Some(Sink::Local(tx));
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
        self.event(RouterEvent::Faulty {
            node: node.to_string(),
            what,
        });
    }

    fn event(&self, e: RouterEvent) {
        let _ = self.shared.events.send(e);
    }

    fn route(&self, src: &str, dest: &str, ty: &str, salient: msglog::Salient, line: Vec<u8>) {
        let mut batch = Batch::default();
        self.route_into(src, dest, ty, salient, line, &mut batch);
        self.flush(&mut batch);
    }

    /// Writes a batch: straight to each socket when it has no backlog, else queued.
    fn flush(&self, batch: &mut Batch) {
        if batch.out.is_empty() {
            return;
        }
        let mut st = self.lock();
        for (dest, link, bytes, n) in batch.out.drain(..) {
            write_or_queue(&mut st, dest, link, bytes, n);
        }
    }

    fn route_into(
        &self,
        src: &str,
        dest: &str,
        ty: &str,
        salient: msglog::Salient,
        line: Vec<u8>,
        batch: &mut Batch,
    ) {
        let now = self.now_us();
        let mut st = self.lock();
        let n = st.addrs.len();
        let Some(&s) = st.index.get(src) else { return };
        let ty_id = if let Some((c, id)) = st.type_counts.get_mut(ty) {
            *c += 1;
            *id
        } else {
            let id = u16::try_from(st.type_names.len()).unwrap_or(u16::MAX);
            if id < u16::MAX {
                st.type_names.push(ty.to_string());
            }
            st.type_counts.insert(ty.to_string(), (1, id));
            id
        };
        let Some(&d) = st.index.get(dest) else {
            drop(st);
            self.event(RouterEvent::Faulty {
                node: src.to_string(),
                what: format!("sent a {ty} message to unknown address '{dest}'"),
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
        release_opened(&mut st, now, batch);
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
                    deliver_copy(&mut st, d, link, bytes, seq, copy, now, batch);
                }
            }
        }
        let wake = !st.delayed.is_empty();
        drop(st);
        if wake {
            self.shared.timer.notify_one();
        }
    }

    async fn timer_loop(self) {
        loop {
            let mut batch = Batch::default();
            let next = {
                let now = self.now_us();
                let mut st = self.lock();
                while let Some(Reverse((at, seq))) = st.delayed.peek().copied() {
                    if at > now {
                        break;
                    }
                    st.delayed.pop();
                    if let Some((p, fifo)) = st.delayed_items.remove(&seq) {
                        if fifo {
                            st.fifo_in_flight[p.link] -= 1;
                        }
                        push_to_sink(&mut st, p.dest, p.link, p.line, p.log, now, &mut batch);
                    }
                }
                st.delayed.peek().map(|Reverse((at, _))| *at)
            };
            self.flush(&mut batch);
            match next {
                Some(at) => {
                    let deadline = self.shared.start + std::time::Duration::from_micros(at);
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => {}
                        _ = self.shared.timer.notified() => {}
                    }
                }
                None => self.shared.timer.notified().await,
            }
        }
    }

    async fn accept_loop(self, listener: TcpListener) {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    if !peer.ip().is_loopback() {
                        continue;
                    }
                    let r = self.clone();
                    conns.spawn(async move { r.serve(stream).await });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    }

    async fn serve(self, stream: TcpStream) {
        let gate = self.shared.gate.clone();
        let Some(waiting) = gate.await_hello() else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let (mut rd, wr) = stream.into_split();
        let mut dec = LineDecoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        let hello = tokio::time::timeout(
            std::time::Duration::from_millis(HELLO_TIMEOUT_MS),
            read_first_line(&mut rd, &mut dec, &mut buf),
        )
        .await;
        drop(waiting);
        // Whatever goes wrong before admission is the connection's, not a node's.
        let admitted = match hello {
            Ok(Ok(line)) => gate.admit_line(&line),
            Ok(Err((reason, what))) => {
                gate.reject(reason, &what);
                Err(reason)
            }
            Err(_elapsed) => {
                let what = format!("{} bytes", dec.pending());
                gate.reject(Refusal::NoHelloInTime, &what);
                Err(Refusal::NoHelloInTime)
            }
        };
        let Ok((node, _incarnation)) = admitted else {
            return;
        };
        let conn_id = self
            .shared
            .next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = mpsc::channel::<Vec<u8>>(DEST_QUEUE_MAX);
        let wr = Arc::new(wr);
        let dest_index;
        {
            let mut st = self.lock();
            let Some(&i) = st.index.get(&node) else {
                // The gate admits only nodes, and every node is an address.
                drop(st);
                gate.reject(Refusal::NotANode, &node);
                return;
            };
            // A connection of an earlier incarnation may still be here, its EOF not read
            // yet: the gate admitted this one because squall started it since.
            st.sinks[i] = Some(Sink::Tcp(TcpSink {
                wr: wr.clone(),
                tx,
                backlog: false,
            }));
            st.conn[i] = conn_id;
            dest_index = i;
        }
        // Owned by this task: if the run aborts it mid-read, dropping the set aborts the
        // writer too. A detached writer would hold a router clone, whose state holds the
        // writer's own sender, and outlive the run with every buffer of it.
        let mut writer = JoinSet::new();
        writer.spawn(self.clone().write_loop(wr, rx, dest_index, conn_id));
        self.event(RouterEvent::Connected { node: node.clone() });
        let outcome = self.read_loop(&node, &mut rd, &mut dec, &mut buf).await;
        if let Err(what) = outcome {
            self.event(RouterEvent::Faulty {
                node: node.clone(),
                what,
            });
        }
        {
            let mut st = self.lock();
            let i = st.index[&node];
            if st.conn[i] == conn_id {
                st.sinks[i] = None;
                st.conn[i] = 0;
            }
        }
        writer.abort_all();
        self.event(RouterEvent::Disconnected { node });
    }

    /// Drains a connection's backlog; clears `backlog` once the queue is empty.
    async fn write_loop(
        self,
        wr: Arc<tokio::net::tcp::OwnedWriteHalf>,
        mut rx: mpsc::Receiver<Vec<u8>>,
        dest: usize,
        conn_id: u64,
    ) {
        let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            let Some(first) = rx.recv().await else { return };
            out.extend_from_slice(&first);
            loop {
                while out.len() < 64 * 1024 {
                    match rx.try_recv() {
                        Ok(more) => out.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                let mut at = 0;
                while at < out.len() {
                    if wr.writable().await.is_err() {
                        return;
                    }
                    match wr.try_write(&out[at..]) {
                        Ok(n) => at += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(_) => return,
                    }
                }
                out.clear();
                let mut st = self.lock();
                if rx.is_empty() {
                    if st.conn[dest] == conn_id {
                        if let Some(Sink::Tcp(sink)) = &mut st.sinks[dest] {
                            sink.backlog = false;
                        }
                    }
                    break;
                }
            }
        }
    }

    async fn read_loop(
        &self,
        node: &str,
        rd: &mut tokio::net::tcp::OwnedReadHalf,
        dec: &mut LineDecoder,
        buf: &mut [u8],
    ) -> Result<(), String> {
        let mut garbage_reported = false;
        let mut batch = Batch::default();
        loop {
            loop {
                let line = match dec.next_frame() {
                    Ok(Some(line)) => line,
                    Ok(None) => break,
                    Err(e) => return Err(format!("sent an oversized line: {e}")),
                };
                if line.is_empty() {
                    continue;
                }
                let head = match EnvelopeHead::parse(line) {
                    Ok(h) => h,
                    Err(e) => {
                        if !garbage_reported {
                            garbage_reported = true;
                            self.event(RouterEvent::Faulty {
                                node: node.to_string(),
                                what: format!(
                                    "sent a line that is not an envelope ({e}): {}",
                                    sample(line)
                                ),
                            });
                        }
                        continue;
                    }
                };
                if head.src != node {
                    if !garbage_reported {
                        garbage_reported = true;
                        self.event(RouterEvent::Faulty {
                            node: node.to_string(),
                            what: format!(
                                "sent a message with src '{}' on its own connection",
                                head.src
                            ),
                        });
                    }
                    continue;
                }
                // The type, and the key and label the message log keeps, in one pass.
                let (ty, salient) = msglog::read_body(head.body.get()).unwrap_or_default();
                let mut owned = Vec::with_capacity(line.len() + 1);
                owned.extend_from_slice(line);
                owned.push(b'\n');
                self.route_into(node, head.dest, &ty, salient, owned, &mut batch);
            }
            self.flush(&mut batch);
            match rd.read(buf).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => dec.push(&buf[..n]),
            }
        }
    }
}

fn sample(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(&line[..line.len().min(120)]).to_string();
    if line.len() > 120 {
        format!("{s}...")
    } else {
        s
    }
}

/// Releases the held messages of the links the policy reports as opened.
fn release_opened(st: &mut State, now: u64, batch: &mut Batch) {
    let opened = st.policy.take_released();
    for (src, dest) in opened {
        let (Some(&s), Some(&d)) = (st.index.get(&src), st.index.get(&dest)) else {
            continue;
        };
        let link = s * st.addrs.len() + d;
        release_link(st, link, now, batch);
    }
}

/// Delivers one link's held messages, in the order they were held.
fn release_link(st: &mut State, link: usize, now: u64, batch: &mut Batch) {
    let dest = link % st.addrs.len();
    while let Some((line, seq)) = st.held[link].pop_front() {
        let copy = Delivery {
            delay_us: 0,
            fifo: true,
        };
        deliver_copy(st, dest, link, line, seq, copy, now, batch);
    }
}

fn count_drop(stats: &mut LinkStats, cause: &str) {
    *stats.dropped.entry(cause.to_string()).or_insert(0) += 1;
}

#[allow(clippy::too_many_arguments)]
fn deliver_copy(
    st: &mut State,
    dest: usize,
    link: usize,
    line: Vec<u8>,
    log: u64,
    copy: Delivery,
    now: u64,
    batch: &mut Batch,
) {
    let mut at = now + copy.delay_us;
    if copy.fifo {
        at = at.max(st.fifo_last_us[link]);
        st.fifo_last_us[link] = at;
    }
    let must_queue = at > now || (copy.fifo && st.fifo_in_flight[link] > 0);
    if !must_queue {
        push_to_sink(st, dest, link, line, log, now, batch);
        return;
    }
    if st.delayed_items.len() >= LINK_QUEUE_MAX * 4 {
        count_drop(&mut st.links[link], "overflow");
        st.settle(log, Fate::Overflow, now);
        return;
    }
    st.seq += 1;
    let seq = st.seq;
    if copy.fifo {
        st.fifo_in_flight[link] += 1;
    }
    st.delayed.push(Reverse((at, seq)));
    st.delayed_items.insert(
        seq,
        (
            Pending {
                dest,
                link,
                line,
                log,
            },
            copy.fifo,
        ),
    );
}

/// Hands a copy to its destination's connection (or inbox). A logged copy counts as
/// delivered here, though a socket write may still find the connection gone.
fn push_to_sink(
    st: &mut State,
    dest: usize,
    link: usize,
    line: Vec<u8>,
    log: u64,
    now: u64,
    batch: &mut Batch,
) {
    match &st.sinks[dest] {
        None => {
            count_drop(&mut st.links[link], "dest_down");
            st.settle(log, Fate::DestDown, now);
        }
        Some(Sink::Tcp(_)) => {
            batch.add(dest, link, &line);
            st.settle(log, Fate::Delivered, now);
        }
        Some(Sink::Local(tx)) => {
            let n = st.addrs.len();
            let src = st.addrs[link / n].clone();
            let delivered = match EnvelopeHead::parse(trim_newline(&line)) {
                Ok(head) => Delivered {
                    src,
                    body: head.body.get().to_string(),
                    at_us: now,
                },
                Err(_) => return,
            };
            match tx.try_send(delivered) {
                Ok(()) => st.links[link].delivered += 1,
                Err(_) => count_drop(&mut st.links[link], "overflow"),
            }
        }
    }
}

fn write_or_queue(st: &mut State, dest: usize, link: usize, bytes: Vec<u8>, msgs: u64) {
    let Some(Sink::Tcp(sink)) = &mut st.sinks[dest] else {
        *st.links[link]
            .dropped
            .entry("dest_down".into())
            .or_insert(0) += msgs;
        return;
    };
    let mut rest = &bytes[..];
    if !sink.backlog {
        match sink.wr.try_write(rest) {
            Ok(n) if n == rest.len() => {
                st.links[link].delivered += msgs;
                return;
            }
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                *st.links[link]
                    .dropped
                    .entry("dest_down".into())
                    .or_insert(0) += msgs;
                return;
            }
        }
    }
    if sink.tx.try_send(rest.to_vec()).is_ok() {
        sink.backlog = true;
        st.links[link].delivered += msgs;
    } else {
        *st.links[link].dropped.entry("overflow".into()).or_insert(0) += msgs;
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// A connection's first non-empty line, or why there is none.
async fn read_first_line(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    dec: &mut LineDecoder,
    buf: &mut [u8],
) -> Result<Vec<u8>, (Refusal, String)> {
    loop {
        match dec.next_frame() {
            Err(e) => return Err((Refusal::NotAHello, format!("oversized first line: {e}"))),
            Ok(Some([])) => continue,
            Ok(Some(line)) => return Ok(line.to_vec()),
            Ok(None) => match rd.read(buf).await {
                Ok(0) | Err(_) => {
                    let what = match dec.pending() {
                        0 => String::new(),
                        n => format!("{n} bytes without a newline"),
                    };
                    return Err((Refusal::ClosedBeforeHello, what));
                }
                Ok(n) => dec.push(&buf[..n]),
            },
        }
    }
}

#[cfg(test)]
mod tests;
