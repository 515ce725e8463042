//! The node shell: one TCP connection to the router, timers, real fsync.
//!
//! Two loops share one [`Shell`], chosen by the harness's `init`:
//!
//! - **free-running** (the default): single-threaded (a current-thread tokio runtime):
//!   read every complete line available, hand each to the algorithm, apply the effects
//!   in order, flush, then sleep until the next line or the next timer. Timers are set
//!   in microseconds and kept at that resolution (a `timerfd`, [`clock`]).
//! - **lockstep** (`init` carries `"lockstep": true`, PROTOCOL.md §10): blocking and
//!   clockless. Each line received is one step: the algorithm handles it, its effects are
//!   applied in order, and the step's lines go out followed by `step_done`. Timers are not
//!   kept here: `SetTimer`
//!   and `CancelTimer` become `timer_set` / `timer_cancel` to the harness, which sends
//!   `timer_fired` in virtual time ([`crate::lockstep::VirtualTimers`] maps the
//!   algorithm's timers to ids). The RNG is seeded from `SQUALL_SEED` as always, so a
//!   node's output is a function of the lines it is given.
//!
//! **Effects leave in the order recorded, in both modes.** Output lines are buffered, but
//! a `Sync` that follows buffered lines first writes them out, so a message recorded
//! before a sync is on the wire before the sync starts, exactly as recorded: an algorithm
//! that answers before it syncs can be caught by a kill between the two. In lockstep the
//! node then sends `sync_wait` and waits for the harness's `sync_go` before syncing, which
//! is where the harness kills a node in the middle of a step.
//!
//! Every `init_ok` says `"lockstep": true`: every bundled algorithm runs in both modes.
//!
//! With [`SYNC_COUNT_ENV`] set, a free-running node counts the fsyncs it does and, on
//! SIGTERM (the harness's teardown), writes `squall-node: N fsyncs` to stderr and exits 0
//! instead of dying of the signal (`squall bench kv` reads the line from the node's log).
//!
//! Only this module (and [`crate::storage`]) touches sockets, clocks and the disk.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context};
use proto::body::Control;
use proto::envelope::frame_raw;
use proto::lockstep::{InitMode, Lockstep};
use proto::ops::{ClientReply, Request, Response};
use proto::{EnvelopeHead, LineDecoder, HARNESS, ROUTER};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::algo::{Algorithm, ClientReq, Config, Ctx, Effect};
use crate::lockstep::VirtualTimers;
use crate::storage::Storage;
use clock::UsTimer;

mod clock;

/// Set (to anything) in a node's environment: count fsyncs and say how many on SIGTERM.
pub const SYNC_COUNT_ENV: &str = "SQUALL_COUNT_SYNCS";

/// Everything a node process is started with (environment plus command line).
#[derive(Debug, Clone)]
pub struct Launch {
    /// `SQUALL_NODE_ID`.
    pub node_id: String,
    /// `SQUALL_ROUTER`: host:port of the router.
    pub router: String,
    /// `SQUALL_DATA_DIR`: the durable directory, kept across restarts.
    pub data_dir: PathBuf,
    /// `SQUALL_SEED`.
    pub seed: u64,
    /// `SQUALL_INCARNATION`: how many times this node was started before (0 first).
    pub incarnation: u64,
    /// `SQUALL_TOKEN`: the run's secret, repeated in `hello` (empty if unset).
    pub token: String,
    /// `--bug` mutants.
    pub bugs: BTreeSet<String>,
    /// `--param key=value` settings.
    pub params: BTreeMap<String, String>,
}

impl Launch {
    /// Reads the `SQUALL_*` environment.
    pub fn from_env(
        bugs: BTreeSet<String>,
        params: BTreeMap<String, String>,
    ) -> anyhow::Result<Launch> {
        fn var(name: &str) -> anyhow::Result<String> {
            std::env::var(name).with_context(|| format!("environment variable {name} is not set"))
        }
        Ok(Launch {
            node_id: var("SQUALL_NODE_ID")?,
            router: var("SQUALL_ROUTER")?,
            data_dir: PathBuf::from(var("SQUALL_DATA_DIR")?),
            seed: var("SQUALL_SEED")?
                .parse()
                .context("SQUALL_SEED is not a u64")?,
            incarnation: std::env::var("SQUALL_INCARNATION")
                .ok()
                .map(|v| v.parse())
                .transpose()
                .context("SQUALL_INCARNATION is not a u64")?
                .unwrap_or(0),
            token: std::env::var("SQUALL_TOKEN").unwrap_or_default(),
            bugs,
            params,
        })
    }
}

/// The RNG seed of one incarnation of one node: a function of the run seed only.
pub fn node_seed(seed: u64, node_id: &str, incarnation: u64) -> u64 {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for b in node_id.bytes().chain(incarnation.to_le_bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        h ^= h >> 29;
    }
    h
}

/// Runs algorithm `A` until the router closes the connection.
pub fn run<A: Algorithm>(launch: Launch) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async::<A>(launch))
}

struct Timers<T: Ord + Clone> {
    by_timer: BTreeMap<T, (Instant, u64)>,
    by_deadline: BTreeSet<(Instant, u64, T)>,
    seq: u64,
}

impl<T: Ord + Clone> Timers<T> {
    fn new() -> Self {
        Timers {
            by_timer: BTreeMap::new(),
            by_deadline: BTreeSet::new(),
            seq: 0,
        }
    }

    fn set(&mut self, timer: T, at: Instant) {
        self.cancel(&timer);
        self.seq += 1;
        self.by_timer.insert(timer.clone(), (at, self.seq));
        self.by_deadline.insert((at, self.seq, timer));
    }

    fn cancel(&mut self, timer: &T) {
        if let Some((at, seq)) = self.by_timer.remove(timer) {
            self.by_deadline.remove(&(at, seq, timer.clone()));
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(at, _, _)| *at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<T> {
        let (at, _, _) = self.by_deadline.first()?;
        if *at > now {
            return None;
        }
        let (_, _, timer) = self.by_deadline.pop_first().expect("first exists");
        self.by_timer.remove(&timer);
        Some(timer)
    }
}

struct Shell<A: Algorithm> {
    algo: A,
    ctx: Ctx<A>,
    storage: Storage,
    timers: Timers<A::Timer>,
    /// `Some` in lockstep mode: timers live in the harness, in virtual time.
    virtual_timers: Option<VirtualTimers<A::Timer>>,
    /// Effects recorded but not applied yet: those after a sync that waits for `out`.
    queued: VecDeque<Effect<A>>,
    out: Vec<u8>,
    /// Syncs that wrote something.
    syncs: u64,
}

impl<A: Algorithm> Shell<A> {
    /// Applies the recorded effects in order, up to a `Sync` that would overtake lines
    /// still in `out`. Returns `Ok(true)` when it stopped there: the caller writes `out`
    /// and calls again; `Ok(false)` once every effect is applied.
    fn apply(&mut self) -> anyhow::Result<bool> {
        let me = self.ctx.id().clone();
        self.queued.extend(self.ctx.take_effects());
        while let Some(effect) = self.queued.pop_front() {
            match effect {
                Effect::Send { to, msg } => {
                    let body = serde_json::to_string(&msg)?;
                    self.out.extend_from_slice(&frame_raw(&me, &to, &body));
                }
                Effect::Reply {
                    client,
                    in_reply_to,
                    reply,
                } => {
                    let body = serde_json::to_string(&Response { in_reply_to, reply })?;
                    self.out.extend_from_slice(&frame_raw(&me, &client, &body));
                }
                Effect::Report(report) => {
                    // Free-running nodes stamp the moment; lockstep nodes read no clock.
                    let mono_ns = match self.virtual_timers {
                        None => Some(proto::report::monotonic_ns()),
                        Some(_) => None,
                    };
                    let body = serde_json::to_string(&proto::Stamped { report, mono_ns })?;
                    self.out.extend_from_slice(&frame_raw(&me, HARNESS, &body));
                }
                Effect::SetTimer { timer, after_us } => match &mut self.virtual_timers {
                    Some(vt) => {
                        let body = serde_json::to_string(&vt.set(timer, after_us))?;
                        self.out.extend_from_slice(&frame_raw(&me, HARNESS, &body));
                    }
                    None => {
                        let at = Instant::now() + std::time::Duration::from_micros(after_us);
                        self.timers.set(timer, at);
                    }
                },
                Effect::CancelTimer { timer } => match &mut self.virtual_timers {
                    Some(vt) => {
                        if let Some(cancel) = vt.cancel(&timer) {
                            let body = serde_json::to_string(&cancel)?;
                            self.out.extend_from_slice(&frame_raw(&me, HARNESS, &body));
                        }
                    }
                    None => self.timers.cancel(&timer),
                },
                Effect::Persist(record) => self.storage.append(&record)?,
                Effect::Sync if !self.out.is_empty() => {
                    self.queued.push_front(Effect::Sync);
                    return Ok(true);
                }
                Effect::Sync => {
                    self.syncs += u64::from(self.storage.unsynced_bytes() > 0);
                    self.storage.sync()?;
                }
            }
        }
        Ok(false)
    }

    fn on_line(&mut self, line: &[u8]) -> anyhow::Result<()> {
        let head = match EnvelopeHead::parse(line) {
            Ok(h) => h,
            Err(e) => {
                eprintln!(
                    "squall-node: unparseable envelope ({e}): {}",
                    String::from_utf8_lossy(line)
                );
                return Ok(());
            }
        };
        let src = head.src.to_string();
        if src.starts_with('c') {
            match serde_json::from_str::<Request>(head.body.get()) {
                Ok(req) => {
                    let req = ClientReq {
                        client: src,
                        msg_id: req.msg_id,
                        op: req.op,
                    };
                    self.algo.on_client(req, &mut self.ctx);
                }
                Err(e) => {
                    let msg_id = serde_json::from_str::<serde_json::Value>(head.body.get())
                        .ok()
                        .and_then(|v| v.get("msg_id").and_then(|m| m.as_u64()));
                    if let Some(msg_id) = msg_id {
                        let reply = ClientReply::Error {
                            code: proto::ErrorCode::MalformedRequest,
                            text: format!("cannot parse request: {e}"),
                        };
                        let body = serde_json::to_string(&Response {
                            in_reply_to: msg_id,
                            reply,
                        })?;
                        self.out
                            .extend_from_slice(&frame_raw(self.ctx.id(), &src, &body));
                    }
                }
            }
        } else if src.starts_with('n') {
            match serde_json::from_str::<A::Msg>(head.body.get()) {
                Ok(msg) => self.algo.on_msg(src, msg, &mut self.ctx),
                Err(e) => eprintln!("squall-node: dropping message from {src}: {e}"),
            }
        } else if src == HARNESS {
            // In lockstep the harness fires timers; anything else from it after init
            // (and everything in free-running mode) is ignored.
            if let (Some(vt), Ok(Lockstep::TimerFired { timer_id })) = (
                &mut self.virtual_timers,
                serde_json::from_str::<Lockstep>(head.body.get()),
            ) {
                match vt.fire(timer_id) {
                    Some(timer) => self.algo.on_timer(timer, &mut self.ctx),
                    None => eprintln!("squall-node: timer_fired for unknown timer {timer_id}"),
                }
            }
        }
        Ok(())
    }

    /// Applies every recorded effect, writing `out` to `wr` whenever a sync must wait
    /// for it (free-running).
    async fn drain(&mut self, wr: &mut (impl AsyncWriteExt + Unpin)) -> anyhow::Result<()> {
        while self.apply()? {
            wr.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Applies every recorded effect; whenever a sync must wait for `out`, writes it and
    /// `sync_wait` and blocks until the harness answers `sync_go` (lockstep).
    fn drain_lockstep(
        &mut self,
        stream: &mut std::net::TcpStream,
        dec: &mut LineDecoder,
    ) -> anyhow::Result<()> {
        while self.apply()? {
            let body = serde_json::to_string(&Lockstep::SyncWait)?;
            self.out
                .extend_from_slice(&frame_raw(self.ctx.id(), HARNESS, &body));
            stream.write_all(&self.out)?;
            self.out.clear();
            wait_sync_go(stream, dec)?;
        }
        Ok(())
    }

    /// Ends a lockstep step: `step_done` after everything the step produced.
    fn step_done(&mut self) -> anyhow::Result<()> {
        let body = serde_json::to_string(&Lockstep::StepDone)?;
        self.out
            .extend_from_slice(&frame_raw(self.ctx.id(), HARNESS, &body));
        Ok(())
    }
}

async fn run_async<A: Algorithm>(launch: Launch) -> anyhow::Result<()> {
    let stream = TcpStream::connect(&launch.router)
        .await
        .with_context(|| format!("connect to router at {}", launch.router))?;
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let hello = serde_json::to_string(&Control::Hello {
        node_id: launch.node_id.clone(),
        token: launch.token.clone(),
        incarnation: Some(launch.incarnation),
    })?;
    wr.write_all(&frame_raw(&launch.node_id, ROUTER, &hello))
        .await?;

    let mut dec = LineDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Wait for init.
    let (init_id, node_ids, mode) = loop {
        if let Some(line) = dec.next_frame()? {
            let head = EnvelopeHead::parse(line).context("envelope before init")?;
            if let Ok(Control::Init {
                msg_id,
                node_id,
                node_ids,
            }) = serde_json::from_str::<Control>(head.body.get())
            {
                if node_id != launch.node_id {
                    bail!(
                        "init names {node_id}, but SQUALL_NODE_ID is {}",
                        launch.node_id
                    );
                }
                break (msg_id, node_ids, InitMode::of(head.body.get()));
            }
            continue;
        }
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        dec.push(&buf[..n]);
    };

    let config = Config {
        id: launch.node_id.clone(),
        node_ids,
        bugs: launch.bugs.clone(),
        params: launch.params.clone(),
    };
    let algo = A::new(&config).map_err(|e| anyhow::anyhow!(e))?;
    let (storage, recovered) = Storage::open::<A::Record>(&launch.data_dir)?;
    let seed = node_seed(launch.seed, &launch.node_id, launch.incarnation);
    let mut shell = Shell {
        algo,
        ctx: Ctx::new(config, seed),
        storage,
        timers: Timers::new(),
        virtual_timers: mode.lockstep.then(VirtualTimers::new),
        queued: VecDeque::new(),
        out: Vec::new(),
        syncs: 0,
    };

    let ok = serde_json::to_string(&Control::InitOk {
        in_reply_to: init_id,
        lockstep: true,
    })?;
    shell
        .out
        .extend_from_slice(&frame_raw(&launch.node_id, HARNESS, &ok));
    shell.algo.on_start(recovered, &mut shell.ctx);

    if mode.lockstep {
        // The init step: init_ok and on_start's effects, then step_done.
        let mut stream = rd
            .reunite(wr)
            .map_err(|e| anyhow::anyhow!("reunite socket halves: {e}"))?
            .into_std()?;
        stream.set_nonblocking(false)?;
        shell.drain_lockstep(&mut stream, &mut dec)?;
        shell.step_done()?;
        return lockstep_loop(shell, stream, dec);
    }
    shell.drain(&mut wr).await?;

    let mut term = match std::env::var_os(SYNC_COUNT_ENV) {
        Some(_) => Some(
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("listen for SIGTERM")?,
        ),
        None => None,
    };
    let mut wake = UsTimer::new().context("create the timer fd")?;
    loop {
        while let Some(line) = dec.next_frame()? {
            shell.on_line(line)?;
            shell.drain(&mut wr).await?;
        }
        let now = Instant::now();
        while let Some(timer) = shell.timers.pop_due(now) {
            shell.algo.on_timer(timer, &mut shell.ctx);
            shell.drain(&mut wr).await?;
        }
        if !shell.out.is_empty() {
            wr.write_all(&shell.out).await?;
            shell.out.clear();
        }
        wake.arm(shell.timers.next_deadline())?;
        tokio::select! {
            r = rd.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Ok(());
                }
                dec.push(&buf[..n]);
            }
            r = wake.expired() => r?,
            Some(()) = recv_opt(&mut term) => {
                eprintln!("squall-node: {} fsyncs", shell.syncs);
                return Ok(());
            }
        }
    }
}

async fn recv_opt(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// The lockstep loop: one received line, one step, one `step_done`; no clock is read.
fn lockstep_loop<A: Algorithm>(
    mut shell: Shell<A>,
    mut stream: std::net::TcpStream,
    mut dec: LineDecoder,
) -> anyhow::Result<()> {
    use std::io::Read as _;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if !shell.out.is_empty() {
            stream.write_all(&shell.out)?;
            shell.out.clear();
        }
        while let Some(line) = dec.next_frame()? {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            shell.on_line(line)?;
            shell.drain_lockstep(&mut stream, &mut dec)?;
            shell.step_done()?;
            stream.write_all(&shell.out)?;
            shell.out.clear();
        }
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Ok(());
        }
        dec.push(&buf[..n]);
    }
}

/// Reads until the harness's `sync_go` (lockstep, inside a step); anything else is a
/// protocol error, since the harness sends nothing else while a node waits.
fn wait_sync_go(stream: &mut std::net::TcpStream, dec: &mut LineDecoder) -> anyhow::Result<()> {
    use std::io::Read as _;
    let mut buf = [0u8; 4096];
    loop {
        if let Some(line) = dec.next_frame()? {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let head = EnvelopeHead::parse(line).context("envelope while waiting for sync_go")?;
            match serde_json::from_str::<Lockstep>(head.body.get()) {
                Ok(Lockstep::SyncGo) if head.src == HARNESS => return Ok(()),
                _ => bail!("expected sync_go, got {}", String::from_utf8_lossy(line)),
            }
        }
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            bail!("connection closed while waiting for sync_go");
        }
        dec.push(&buf[..n]);
    }
}

/// Prints the registry as JSON (used by the harness to validate names).
pub fn print_list_json(list: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, list)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::{ClientReq, NodeId};

    /// Answers every message with `before`, persists and syncs it, then answers `after`:
    /// the shape of an acceptor that acknowledges before its record is durable.
    struct SendThenSync;

    impl Algorithm for SendThenSync {
        type Msg = String;
        type Timer = u8;
        type Record = String;

        fn new(_: &Config) -> Result<Self, String> {
            Ok(SendThenSync)
        }
        fn on_start(&mut self, _: Vec<String>, _: &mut Ctx<Self>) {}
        fn on_msg(&mut self, from: NodeId, msg: String, ctx: &mut Ctx<Self>) {
            ctx.send(&from, "before".to_string());
            ctx.persist(msg);
            ctx.sync();
            ctx.send(&from, "after".to_string());
        }
        fn on_client(&mut self, _: ClientReq, _: &mut Ctx<Self>) {}
        fn on_timer(&mut self, _: u8, _: &mut Ctx<Self>) {}
    }

    fn shell(dir: &std::path::Path, lockstep: bool) -> Shell<SendThenSync> {
        let ids = vec!["n1".to_string(), "n2".to_string()];
        let config = Config::new("n1", &ids);
        let (storage, _) = Storage::open::<String>(dir).expect("open storage");
        Shell {
            algo: SendThenSync,
            ctx: Ctx::new(config, 1),
            storage,
            timers: Timers::new(),
            virtual_timers: lockstep.then(VirtualTimers::new),
            queued: VecDeque::new(),
            out: Vec::new(),
            syncs: 0,
        }
    }

    /// The records another process would find in `dir` now (what survives a SIGKILL).
    fn durable(dir: &std::path::Path) -> Vec<String> {
        Storage::open::<String>(dir).expect("reopen storage").1
    }

    fn bodies(out: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(out)
            .lines()
            .map(|l| {
                let head = EnvelopeHead::parse(l.as_bytes()).expect("an envelope");
                head.body.get().to_string()
            })
            .collect()
    }

    #[test]
    fn a_send_recorded_before_a_sync_leaves_before_the_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut shell = shell(dir.path(), false);
        shell
            .algo
            .on_msg("n2".to_string(), "promised".to_string(), &mut shell.ctx);
        assert!(
            shell.apply().unwrap(),
            "stops at the sync: `before` must leave first"
        );
        assert_eq!(bodies(&shell.out), [r#""before""#]);
        assert!(durable(dir.path()).is_empty(), "not synced yet");
        shell.out.clear();
        assert!(!shell.apply().unwrap());
        assert_eq!(bodies(&shell.out), [r#""after""#]);
        assert_eq!(durable(dir.path()), ["promised"]);
    }

    #[test]
    fn a_sync_with_nothing_buffered_does_not_stop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut shell = shell(dir.path(), false);
        shell.ctx.persist("r".to_string());
        shell.ctx.sync();
        shell.ctx.send("n2", "x".to_string());
        assert!(!shell.apply().unwrap());
        assert_eq!(durable(dir.path()), ["r"]);
        assert_eq!(bodies(&shell.out), [r#""x""#]);
    }

    /// In lockstep the node writes what it recorded before a sync, then `sync_wait`, and
    /// syncs only after `sync_go`: a harness that kills it there loses the record but not
    /// the message.
    #[test]
    fn lockstep_waits_for_sync_go_between_a_send_and_its_sync() {
        use std::io::{BufRead as _, BufReader};
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let path = dir.path().to_path_buf();
        let node = std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            let mut shell = shell(&path, true);
            shell
                .algo
                .on_msg("n2".to_string(), "promised".to_string(), &mut shell.ctx);
            let mut dec = LineDecoder::new();
            shell.drain_lockstep(&mut stream, &mut dec).expect("drain");
            bodies(&shell.out)
        });
        let (harness, _) = listener.accept().expect("accept");
        let mut lines = BufReader::new(harness.try_clone().expect("clone")).lines();
        let mut next = || lines.next().expect("a line").expect("read");
        assert!(next().contains(r#""before""#));
        assert!(next().contains("sync_wait"));
        assert!(
            durable(dir.path()).is_empty(),
            "the node waits before it syncs"
        );
        let go = serde_json::to_string(&Lockstep::SyncGo).unwrap();
        (&harness)
            .write_all(&frame_raw(HARNESS, "n1", &go))
            .expect("send sync_go");
        let rest = node.join().expect("node thread");
        assert_eq!(rest, [r#""after""#], "the rest stays buffered for the step");
        assert_eq!(durable(dir.path()), ["promised"]);
    }

    #[test]
    fn node_seed_depends_on_all_inputs() {
        let a = node_seed(7, "n1", 0);
        assert_eq!(a, node_seed(7, "n1", 0));
        assert_ne!(a, node_seed(8, "n1", 0));
        assert_ne!(a, node_seed(7, "n2", 0));
        assert_ne!(a, node_seed(7, "n1", 1));
    }

    #[test]
    fn timers_fire_in_deadline_order_and_reset() {
        let mut t = Timers::new();
        let now = Instant::now();
        t.set("a", now + std::time::Duration::from_millis(5));
        t.set("b", now + std::time::Duration::from_millis(1));
        t.set("a", now + std::time::Duration::from_millis(2));
        let later = now + std::time::Duration::from_millis(10);
        assert_eq!(t.pop_due(later), Some("b"));
        assert_eq!(t.pop_due(later), Some("a"));
        assert_eq!(t.pop_due(later), None);
        t.set("c", later);
        t.cancel(&"c");
        assert_eq!(t.next_deadline(), None);
    }
}
