//! Client workers and the history recorder.
//!
//! Each client worker `cK` is a local router endpoint that plays a sequence of Jepsen
//! processes: one op in flight at a time, recorded as `invoke` then `ok` / `fail` / `info`.
//! After an `info` (timeout or indefinite error) the worker takes a fresh process id, since
//! the old process may still have an op in flight. Ops are issued open loop by the
//! schedule both modes share ([`OpClock`]): `rate / clients` ops per second per worker, a
//! worker behind its schedule issuing at once and counting the op as late.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::ops::{ClientOp, ClientReply, Request, Response};
use proto::Errorness;
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use workloads::history::{completion_value, op_value, Event, EventType};
use workloads::workload::Target;
use workloads::Workload;

use crate::lifecycle::OpClock;
use crate::router::{Delivered, Router};

/// The seed of client `index` (0-based) of a run with `seed`, in both modes: lockstep
/// clients draw the same start offsets as free-running ones.
pub fn client_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_mul(0x9e37_79b9)
        .wrapping_add(index as u64 + 1)
}

/// Longest the recorder buffers events before writing them out.
pub const HISTORY_FLUSH_MS: u64 = 100;

/// Appends events to `history.jsonl`, flushing at least every [`HISTORY_FLUSH_MS`].
///
/// A write that fails (a full disk) is not retried and nothing more is written: the
/// history would have a hole the checkers cannot see. [`Recorder::failed`] turns to the
/// error, and the run stops at once on it.
#[derive(Clone)]
pub struct Recorder {
    // Unbounded: one event per op start and end, so bounded by the clients' op rate
    // times the run's length, and a full channel must not make a client drop an event.
    tx: mpsc::UnboundedSender<Event>,
    start: Instant,
    failed: watch::Receiver<Option<String>>,
}

impl Recorder {
    /// Opens the history file and starts the writer task; the returned handle finishes
    /// when every recorder clone is dropped and all events are on disk.
    pub fn start(
        path: &Path,
        start: Instant,
    ) -> anyhow::Result<(Recorder, tokio::task::JoinHandle<()>)> {
        let file = std::fs::File::create(path)?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let (failed_tx, failed) = watch::channel(None);
        let shown = path.display().to_string();
        let handle = tokio::spawn(async move {
            let mut out = std::io::BufWriter::new(file);
            let mut tick = tokio::time::interval(Duration::from_millis(HISTORY_FLUSH_MS));
            // Indices are given here, in the order lines reach the file, so they are dense
            // and file order is index order whatever the order clients recorded in.
            let mut next_index = 0u64;
            let mut broken = false;
            let fail = |e: std::io::Error| {
                let _ = failed_tx.send(Some(format!("writing {shown}: {e}")));
            };
            loop {
                tokio::select! {
                    ev = rx.recv() => match ev {
                        Some(_) if broken => {}
                        Some(mut ev) => {
                            ev.index = next_index;
                            next_index += 1;
                            let written = serde_json::to_writer(&mut out, &ev)
                                .map_err(std::io::Error::from)
                                .and_then(|()| out.write_all(b"\n"));
                            if let Err(e) = written {
                                broken = true;
                                fail(e);
                            }
                        }
                        None => break,
                    },
                    _ = tick.tick(), if !broken => {
                        if let Err(e) = out.flush() {
                            broken = true;
                            fail(e);
                        }
                    }
                }
            }
            if !broken {
                if let Err(e) = out.flush().and_then(|()| out.get_ref().sync_data()) {
                    fail(e);
                }
            }
            // A failed BufWriter must not retry its buffer when dropped.
            let _ = out.into_parts();
        });
        Ok((Recorder { tx, start, failed }, handle))
    }

    /// Turns to the error once writing the history failed.
    pub fn failed(&self) -> watch::Receiver<Option<String>> {
        self.failed.clone()
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Records one event, timed now; the writer assigns its index.
    pub fn record(
        &self,
        process: u64,
        ty: EventType,
        f: &str,
        value: serde_json::Value,
        node: Option<&str>,
        error: Option<String>,
    ) {
        let ev = Event {
            index: 0,
            process,
            ty,
            f: f.to_string(),
            value: value.into(),
            time: self.now_ns(),
            node: node.map(str::to_string),
            error,
        };
        let _ = self.tx.send(ev);
    }
}

/// What clients share.
pub struct ClientShared {
    /// The op generator.
    pub workload: Mutex<Box<dyn Workload>>,
    /// The next fresh Jepsen process id.
    pub next_process: AtomicU64,
    /// Ops issued after their scheduled start.
    pub late_ops: AtomicU64,
    /// Node ids ops may be sent to.
    pub nodes: Vec<String>,
    /// Per node (in `nodes` order), its restarts so far, as the run observes them.
    pub restarts: Arc<Mutex<Vec<Restarts>>>,
}

/// How often a node came back after a kill, and when it last did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restarts {
    /// Restarts so far.
    pub count: u64,
    /// When the last one answered `init` (ns since the run started; 0 where unknown).
    pub last_ns: u64,
}

/// The index of the node an op aimed at `target` goes to, among `restarts.len()` nodes.
/// Both modes draw from `rng` the same way: one draw for [`Target::Any`], none for
/// [`Target::Node`], and for [`Target::Restarted`] a coin, then (on tails) one draw
/// among the restarted nodes; with no node restarted yet it is [`Target::Any`].
pub fn pick_node(target: Target, restarts: &[Restarts], rng: &mut ChaCha8Rng) -> usize {
    let n = restarts.len().max(1);
    match target {
        Target::Any => rng.gen_range(0..n),
        Target::Node(i) => i % n,
        Target::Restarted => {
            let back: Vec<usize> = (0..restarts.len())
                .filter(|&i| restarts[i].count > 0)
                .collect();
            if back.is_empty() {
                return rng.gen_range(0..n);
            }
            if rng.gen_bool(0.5) {
                *back
                    .iter()
                    .max_by_key(|&&i| (restarts[i].last_ns, restarts[i].count, i))
                    .expect("a restarted node")
            } else {
                back[rng.gen_range(0..back.len())]
            }
        }
    }
}

/// Settings of one client worker.
#[derive(Debug, Clone)]
pub struct ClientOpts {
    /// Seconds between op starts for this worker.
    pub interval: Duration,
    /// How long to wait for a reply before recording `info`.
    pub op_timeout: Duration,
    /// Seed of this worker's RNG (node choice, op generation).
    pub seed: u64,
}

/// The outcome of one request.
pub enum Answer {
    /// The node replied.
    Reply(ClientReply),
    /// The node answered the request (`in_reply_to` names it) with a body that is no
    /// reply at all; the text is the body, cut short.
    Malformed(String),
    /// No reply within the timeout.
    Timeout,
}

impl Answer {
    /// The node's reply, if it gave one.
    pub fn reply(&self) -> Option<&ClientReply> {
        match self {
            Answer::Reply(reply) => Some(reply),
            Answer::Malformed(_) | Answer::Timeout => None,
        }
    }
}

/// Just enough of a body to tell whether it answers a request.
#[derive(serde::Deserialize)]
struct InReplyTo {
    in_reply_to: u64,
}

/// The request a body answers, if it names one.
pub fn in_reply_to(body: &str) -> Option<u64> {
    serde_json::from_str::<InReplyTo>(body)
        .ok()
        .map(|r| r.in_reply_to)
}

/// What a body that answers `op` (names it in `in_reply_to`) means. A typed op's reply
/// must parse as its [`Response`]; a [`ClientOp::Body`]'s must be a JSON object of type
/// `<f>_ok` with the fields the op names, or an `error` (whose missing `code` is
/// indefinite). Anything else is malformed, with the reason.
pub fn parse_answer(op: &ClientOp, body: &str) -> Answer {
    let cut = || crate::text::truncate(body, 120);
    let ClientOp::Body(b) = op else {
        return match serde_json::from_str::<Response>(body) {
            Ok(Response {
                reply: ClientReply::Body(_),
                ..
            })
            | Err(_) => Answer::Malformed(cut()),
            Ok(r) => Answer::Reply(r.reply),
        };
    };
    let Ok(mut m) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(body) else {
        return Answer::Malformed(format!("not a JSON object: {}", cut()));
    };
    if m.get("type").and_then(|t| t.as_str()) == Some("error") {
        return match serde_json::from_str::<Response>(body) {
            Ok(
                r @ Response {
                    reply: ClientReply::Error { .. },
                    ..
                },
            ) => Answer::Reply(r.reply),
            _ => Answer::Malformed(format!("an error whose code is no number: {}", cut())),
        };
    }
    if let Some(why) = b.reply_problem(&m) {
        return Answer::Malformed(format!("{why}: {}", cut()));
    }
    m.remove("in_reply_to");
    m.remove("msg_id");
    Answer::Reply(ClientReply::Body(m))
}

/// The reply type an op expects: `propose` is answered by `propose_ok`, and so on.
fn reply_fits(op: &ClientOp, reply: &ClientReply) -> bool {
    matches!(
        (op, reply),
        (_, ClientReply::Error { .. })
            | (ClientOp::Echo { .. }, ClientReply::EchoOk { .. })
            | (ClientOp::Propose { .. }, ClientReply::ProposeOk { .. })
            | (ClientOp::Read { .. }, ClientReply::ReadOk { .. })
            | (ClientOp::Write { .. }, ClientReply::WriteOk)
            | (ClientOp::Cas { .. }, ClientReply::CasOk)
            | (ClientOp::Body(_), ClientReply::Body(_))
            | (ClientOp::Mcast { .. }, ClientReply::McastOk)
            | (ClientOp::McastRead, ClientReply::McastReadOk { .. })
            | (ClientOp::Transfer { .. }, ClientReply::TransferOk { .. })
            | (ClientOp::Snapshot, ClientReply::SnapshotOk { .. })
            | (ClientOp::Wait { .. }, ClientReply::WaitOk)
    )
}

/// The wire name of a reply's type, for messages.
fn reply_type(reply: &ClientReply) -> String {
    serde_json::to_value(reply)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// One client endpoint: sends requests and matches replies by `msg_id`.
pub struct Client {
    /// Its address, `cK`.
    pub addr: String,
    router: Router,
    inbox: mpsc::Receiver<Delivered>,
    next_msg_id: u64,
    /// Who answered the last call, if anyone did.
    replier: Option<String>,
}

impl Client {
    /// Registers endpoint `addr` with the router.
    pub fn new(addr: &str, router: &Router) -> Client {
        let inbox = router.register_local(addr, 1024);
        Client {
            addr: addr.to_string(),
            router: router.clone(),
            inbox,
            next_msg_id: 0,
            replier: None,
        }
    }

    /// The node that answered the last call (any node may answer), if one did.
    pub fn replier(&self) -> Option<&str> {
        self.replier.as_deref()
    }

    /// The router the client sends through.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Sends `op` to `node` and waits for its reply.
    pub async fn call(&mut self, node: &str, op: &ClientOp, timeout: Duration) -> Answer {
        self.next_msg_id += 1;
        self.replier = None;
        let msg_id = self.next_msg_id;
        let body = serde_json::to_string(&Request {
            msg_id,
            op: op.clone(),
        })
        .expect("requests serialise");
        self.router.send_local(&self.addr, node, &body);
        let deadline = Instant::now() + timeout;
        loop {
            tokio::select! {
                got = self.inbox.recv() => {
                    let Some(d) = got else { return Answer::Timeout };
                    // A late reply to an op already timed out, or a body that names no
                    // request: ignore. Any node may answer (a follower forwards to its
                    // leader), so the replier is kept: a bad reply is its fault, not the
                    // asked node's (a node could otherwise forge one to blame another).
                    if in_reply_to(&d.body) != Some(msg_id) {
                        continue;
                    }
                    self.replier = Some(d.src.clone());
                    return parse_answer(op, &d.body);
                }
                _ = tokio::time::sleep_until(deadline) => return Answer::Timeout,
            }
        }
    }
}

/// The completion event an `answer` implies: its type, value and error text.
pub struct Completion {
    /// `ok`, `fail` or `info`.
    pub ty: EventType,
    /// The event's value.
    pub value: serde_json::Value,
    /// Why it failed or is unknown.
    pub error: Option<String>,
    /// The node broke the protocol answering: what it did, for `faulty_nodes`.
    pub fault: Option<String>,
}

impl Completion {
    /// What `answer` to `op` means for the history: a reply of the op's own type is
    /// `ok`, a definite error `fail`, an indefinite error or a timeout `info`. A reply of
    /// another type (`echo_ok` to a `propose`) or a body that is no reply is a protocol
    /// fault of the node: the op is `info`, since nothing it said can be believed.
    pub fn of(op: &ClientOp, answer: &Answer) -> Completion {
        let fault = match answer {
            Answer::Reply(reply) if !reply_fits(op, reply) => Some(format!(
                "answered a {} request with {}",
                op.f(),
                reply_type(reply)
            )),
            Answer::Malformed(body) => Some(format!(
                "answered a {} request with a body that is no reply: {body}",
                op.f()
            )),
            _ => None,
        };
        if let Some(what) = fault {
            return Completion {
                ty: EventType::Info,
                value: op_value(op),
                error: Some(format!("protocol fault: {what}")),
                fault: Some(what),
            };
        }
        match answer {
            Answer::Reply(ClientReply::Error { code, text }) => Completion {
                ty: match code.errorness() {
                    Errorness::Definite => EventType::Fail,
                    Errorness::Indefinite => EventType::Info,
                },
                value: op_value(op),
                error: Some(format!("error {}: {text}", code.code())),
                fault: None,
            },
            Answer::Reply(reply) => Completion {
                ty: EventType::Ok,
                value: completion_value(op, reply),
                error: None,
                fault: None,
            },
            Answer::Timeout | Answer::Malformed(_) => Completion {
                ty: EventType::Info,
                value: op_value(op),
                error: Some("timeout".into()),
                fault: None,
            },
        }
    }

    /// Whether the process that saw it must be retired (outcome unknown).
    pub fn retires(&self) -> bool {
        self.ty == EventType::Info
    }
}

/// Records the completion of one call, and a protocol fault of the node that answered
/// it, if any. Returns true if the process must be retired (outcome unknown).
pub fn record_call(
    rec: &Recorder,
    router: &Router,
    replier: Option<&str>,
    process: u64,
    node: &str,
    op: &ClientOp,
    answer: &Answer,
) -> bool {
    let c = Completion::of(op, answer);
    let retire = c.retires();
    if let Some(what) = c.fault {
        router.node_fault(replier.unwrap_or(node), what);
    }
    rec.record(process, c.ty, op.f(), c.value, Some(node), c.error);
    retire
}

/// Sends the workload's setup ops (Maelstrom broadcast's `topology`) before any client
/// starts, each to its node in order and recorded like any op, through `client`.
pub async fn run_setup(
    client: &mut Client,
    shared: &ClientShared,
    rec: &Recorder,
    timeout: Duration,
) {
    let setup = shared
        .workload
        .lock()
        .expect("workload lock")
        .setup_ops(&shared.nodes);
    for (node, op) in setup {
        let process = shared.next_process.fetch_add(1, Ordering::SeqCst);
        call_recorded(client, rec, process, &node, &op, timeout).await;
    }
}

/// One op of `process` at `node`, recorded: its invoke, the call, its completion (and
/// a protocol fault of the node that answered, if any). Returns the answer and whether
/// the process must be retired (outcome unknown).
pub async fn call_recorded(
    client: &mut Client,
    rec: &Recorder,
    process: u64,
    node: &str,
    op: &ClientOp,
    timeout: Duration,
) -> (Answer, bool) {
    rec.record(
        process,
        EventType::Invoke,
        op.f(),
        op_value(op),
        Some(node),
        None,
    );
    let answer = client.call(node, op, timeout).await;
    let retire = record_call(
        rec,
        client.router(),
        client.replier(),
        process,
        node,
        op,
        &answer,
    );
    (answer, retire)
}

/// Tells the workload what `answer` said to `op`, if it was a reply.
pub fn observe(shared: &ClientShared, op: &ClientOp, answer: &Answer) {
    if let Some(reply) = answer.reply() {
        shared
            .workload
            .lock()
            .expect("workload lock")
            .observe(op, reply);
    }
}

/// Runs one client worker until `stop` becomes true; the op in flight then completes (or
/// times out) before the worker returns its client for reuse.
pub async fn run_client(
    mut client: Client,
    shared: Arc<ClientShared>,
    rec: Recorder,
    opts: ClientOpts,
    mut stop: watch::Receiver<bool>,
) -> Client {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut process = shared.next_process.fetch_add(1, Ordering::SeqCst);
    // Staggered across one interval so workers do not fire together.
    let base = Instant::now();
    let mut clock = OpClock::new(opts.interval.as_nanos() as u64, &mut rng);
    loop {
        if *stop.borrow() {
            return client;
        }
        let next_start = base + Duration::from_nanos(clock.next_start());
        tokio::select! {
            _ = tokio::time::sleep_until(next_start) => {}
            _ = stop.changed() => continue,
        }
        let now = Instant::now().duration_since(base).as_nanos() as u64;
        if clock.take(now) {
            shared.late_ops.fetch_add(1, Ordering::Relaxed);
        }
        let (op, target) = shared
            .workload
            .lock()
            .expect("workload lock")
            .next_targeted(&mut rng);
        let restarts = shared.restarts.lock().expect("restarts lock").clone();
        let node = shared.nodes[pick_node(target, &restarts, &mut rng)].clone();
        let (answer, retire) =
            call_recorded(&mut client, &rec, process, &node, &op, opts.op_timeout).await;
        observe(&shared, &op, &answer);
        if retire {
            process = shared.next_process.fetch_add(1, Ordering::SeqCst);
        }
    }
}
