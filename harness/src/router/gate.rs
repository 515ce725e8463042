//! [`Gate`]: who may connect to a run's listener, and the count of those turned away.
//!
//! Anything on the host can open a TCP connection to loopback, so a `hello` alone proves
//! nothing. Every node is started with the run's secret in `SQUALL_TOKEN` and must repeat
//! it in its `hello`; the supervisor tells the gate which incarnation of each node it
//! started last ([`Gate::spawned`]), and the gate admits one connection per incarnation:
//!
//! - no token, or the wrong one: refused;
//! - an address that is not a node (a client `cK`, `harness`, `router`, anything else):
//!   refused, since clients and the harness are in-process channels that no connection
//!   can claim;
//! - an incarnation other than the one squall started last, or one that already has its
//!   connection: refused, so a live node's connection is never replaced, and a node that
//!   squall restarted is admitted however late the old connection's EOF arrives.
//!
//! A refused connection, like one that never says hello or says something else first, is
//! closed and counted here ([`Rejections`], `router.rejected_connections` in
//! `metrics.json`); it is never blamed on a node and never changes a verdict.
//!
//! A process that can read a node's environment (the same user, via
//! `/proc/<pid>/environ`) learns the token; it still cannot take an address that is
//! connected, nor a client's or the harness's, and can at most race a freshly started
//! node to its own first `hello`.
//!
//! [`Book`] is the decision without IO or clocks; [`Gate`] shares it between the
//! supervisor, which starts processes, and the listener, which admits connections.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Connections that may be between accept and hello at once; more are refused at once.
pub const PENDING_HELLOS_MAX: usize = 64;
/// Refused connections kept as samples in `metrics.json`.
pub const REJECTION_SAMPLES_MAX: usize = 10;
/// Bytes of a refused connection's first line kept in a sample.
pub const SAMPLE_BYTES_MAX: usize = 120;

/// Why a connection was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Closed before sending a whole first line.
    ClosedBeforeHello,
    /// Sent nothing complete within the hello timeout.
    NoHelloInTime,
    /// The first line was not a `hello` envelope to `router` (garbage, oversized, another
    /// message, a `src` that is not the `node_id`).
    NotAHello,
    /// No token, or not the run's.
    BadToken,
    /// Claimed an address that is not a node of the run (a client, `harness`, unknown).
    NotANode,
    /// Claimed a node whose current incarnation already has its connection.
    Duplicate,
    /// Claimed an incarnation of the node other than the one squall started last, or a
    /// node squall has not started.
    WrongIncarnation,
    /// Too many connections were waiting to say hello.
    TooManyPending,
}

impl Refusal {
    /// The name counted in `metrics.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ClosedBeforeHello => "closed_before_hello",
            Refusal::NoHelloInTime => "no_hello_in_time",
            Refusal::NotAHello => "not_a_hello",
            Refusal::BadToken => "bad_token",
            Refusal::NotANode => "not_a_node",
            Refusal::Duplicate => "duplicate",
            Refusal::WrongIncarnation => "wrong_incarnation",
            Refusal::TooManyPending => "too_many_pending",
        }
    }
}

/// What a `hello` claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The address it wants.
    pub node_id: String,
    /// The token it gave (empty: none).
    pub token: String,
    /// The incarnation it gave, if any.
    pub incarnation: Option<u64>,
}

/// One refused connection, for `metrics.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// Milliseconds since the gate was made (the run's start, near enough).
    pub at_ms: u64,
    /// Why.
    pub reason: Refusal,
    /// The address the hello claimed, if it got that far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed: Option<String>,
    /// What it sent first (at most [`SAMPLE_BYTES_MAX`] bytes; the token is never kept).
    pub detail: String,
}

/// The refused connections of a run: `router.rejected_connections` in `metrics.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rejections {
    /// Every refused connection.
    pub total: u64,
    /// Counts by [`Refusal::as_str`].
    pub by_reason: BTreeMap<String, u64>,
    /// The first [`REJECTION_SAMPLES_MAX`].
    pub samples: Vec<Rejected>,
}

impl Rejections {
    /// For a "did not start" reason: what was refused, and the likely cause when
    /// connections came without the token (a node written before it was required).
    pub fn startup_hint(&self) -> String {
        if self.total == 0 {
            return String::new();
        }
        let reasons: Vec<String> = self
            .by_reason
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let mut hint = format!(
            "; {} connection(s) refused ({})",
            self.total,
            reasons.join(", ")
        );
        if self.by_reason.contains_key(Refusal::BadToken.as_str()) {
            hint.push_str(": a node must repeat SQUALL_TOKEN in its hello (PROTOCOL.md §4)");
        }
        hint
    }

    fn add(&mut self, r: Rejected) {
        self.total += 1;
        *self.by_reason.entry(r.reason.as_str().into()).or_insert(0) += 1;
        if self.samples.len() < REJECTION_SAMPLES_MAX {
            self.samples.push(r);
        }
    }
}

/// Per node: the incarnation squall started last and whether it has its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    incarnation: u64,
    admitted: bool,
}

/// The admission decision, without IO: the nodes, their current incarnations, the token.
#[derive(Debug, Clone)]
pub struct Book {
    token: String,
    /// `None` until the supervisor starts the node.
    nodes: BTreeMap<String, Option<Slot>>,
}

impl Book {
    /// A book for `nodes`, none started yet.
    pub fn new(token: &str, nodes: &[String]) -> Book {
        assert!(!token.is_empty(), "an empty token would admit anyone");
        Book {
            token: token.to_string(),
            nodes: nodes.iter().map(|n| (n.clone(), None)).collect(),
        }
    }

    /// Squall started `incarnation` of `node`: from now on only that one is admitted.
    pub fn spawned(&mut self, node: &str, incarnation: u64) {
        if let Some(slot) = self.nodes.get_mut(node) {
            *slot = Some(Slot {
                incarnation,
                admitted: false,
            });
        }
    }

    /// Admits `claim` (and remembers it: the incarnation's one connection), or says why
    /// not. Returns the incarnation admitted.
    pub fn admit(&mut self, claim: &Claim) -> Result<u64, Refusal> {
        if !same_secret(claim.token.as_bytes(), self.token.as_bytes()) {
            return Err(Refusal::BadToken);
        }
        let slot = match self.nodes.get_mut(&claim.node_id) {
            None => return Err(Refusal::NotANode),
            Some(None) => return Err(Refusal::WrongIncarnation),
            Some(Some(slot)) => slot,
        };
        if claim.incarnation.is_some_and(|i| i != slot.incarnation) {
            return Err(Refusal::WrongIncarnation);
        }
        if slot.admitted {
            return Err(Refusal::Duplicate);
        }
        slot.admitted = true;
        Ok(slot.incarnation)
    }
}

/// The claim of a `hello` envelope to `router` whose `src` is its `node_id`; `None` for
/// any other line.
pub fn claim_of(line: &[u8]) -> Option<Claim> {
    let head = proto::EnvelopeHead::parse(line).ok()?;
    if head.dest != proto::ROUTER {
        return None;
    }
    match serde_json::from_str::<proto::body::Control>(head.body.get()).ok()? {
        proto::body::Control::Hello {
            node_id,
            token,
            incarnation,
        } if node_id == head.src => Some(Claim {
            node_id,
            token,
            incarnation,
        }),
        _ => None,
    }
}

/// Compares two secrets in time that depends only on their lengths.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Inner {
    token: String,
    created: std::time::Instant,
    book: Mutex<(Book, Rejections)>,
    pending: std::sync::atomic::AtomicUsize,
}

/// The [`Book`] of one run, shared by the supervisor and the listener; cheap to clone.
#[derive(Clone)]
pub struct Gate(Arc<Inner>);

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of logs.
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

impl Gate {
    /// A gate for the nodes of one run with a fresh random token (128 bits from the
    /// OS-seeded generator). The token is not derived from the run's seed: it is no part
    /// of what a seed reproduces.
    pub fn new(nodes: &[String]) -> Gate {
        let token = format!("{:032x}", rand::random::<u128>());
        Gate::with_token(&token, nodes)
    }

    /// A gate with a given token (tests).
    pub fn with_token(token: &str, nodes: &[String]) -> Gate {
        Gate(Arc::new(Inner {
            token: token.to_string(),
            created: std::time::Instant::now(),
            book: Mutex::new((Book::new(token, nodes), Rejections::default())),
            pending: std::sync::atomic::AtomicUsize::new(0),
        }))
    }

    /// The secret nodes get in `SQUALL_TOKEN`.
    pub fn token(&self) -> &str {
        &self.0.token
    }

    /// See [`Book::spawned`]; the supervisor calls it before it starts the process.
    pub fn spawned(&self, node: &str, incarnation: u64) {
        self.lock().0.spawned(node, incarnation);
    }

    /// See [`Book::admit`]; a refusal is counted with `detail` (what was sent).
    pub fn admit(&self, claim: &Claim, detail: &str) -> Result<u64, Refusal> {
        let mut guard = self.lock();
        let out = guard.0.admit(claim);
        if let Err(reason) = out {
            let r = self.rejected(reason, Some(claim.node_id.clone()), detail);
            guard.1.add(r);
        }
        out
    }

    /// Judges a connection's first line: the node and incarnation it is admitted as, or
    /// the refusal (counted).
    pub fn admit_line(&self, line: &[u8]) -> Result<(String, u64), Refusal> {
        let text = String::from_utf8_lossy(line);
        let Some(claim) = claim_of(line) else {
            self.reject(Refusal::NotAHello, &text);
            return Err(Refusal::NotAHello);
        };
        let incarnation = self.admit(&claim, &text)?;
        Ok((claim.node_id, incarnation))
    }

    /// Counts a connection refused before it made a claim.
    pub fn reject(&self, reason: Refusal, detail: &str) {
        let r = self.rejected(reason, None, detail);
        self.lock().1.add(r);
    }

    /// A connection starts waiting for its hello; `None` (refused and counted) if
    /// [`PENDING_HELLOS_MAX`] already are. The ticket ends the wait when dropped.
    pub fn await_hello(&self) -> Option<PendingHello> {
        use std::sync::atomic::Ordering;
        let before = self.0.pending.fetch_add(1, Ordering::AcqRel);
        let ticket = PendingHello(self.clone());
        if before >= PENDING_HELLOS_MAX {
            drop(ticket);
            self.reject(Refusal::TooManyPending, "");
            return None;
        }
        Some(ticket)
    }

    /// What was refused so far.
    pub fn rejections(&self) -> Rejections {
        self.lock().1.clone()
    }

    fn rejected(&self, reason: Refusal, claimed: Option<String>, detail: &str) -> Rejected {
        Rejected {
            at_ms: self.0.created.elapsed().as_millis() as u64,
            reason,
            claimed,
            detail: redact(detail, &self.0.token),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Book, Rejections)> {
        self.0.book.lock().expect("gate lock poisoned")
    }
}

/// A connection waiting for its hello (see [`Gate::await_hello`]).
pub struct PendingHello(Gate);

impl Drop for PendingHello {
    fn drop(&mut self) {
        (self.0)
            .0
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// `line` cut to [`SAMPLE_BYTES_MAX`] bytes, with the run's token blanked out.
fn redact(line: &str, token: &str) -> String {
    let line = line.replace(token, "<token>");
    crate::text::truncate(&line, SAMPLE_BYTES_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> Vec<String> {
        vec!["n1".into(), "n2".into()]
    }

    fn claim(node: &str, token: &str, incarnation: Option<u64>) -> Claim {
        Claim {
            node_id: node.into(),
            token: token.into(),
            incarnation,
        }
    }

    #[test]
    fn hello_without_the_token_is_refused() {
        let mut book = Book::new("t0k", &nodes());
        book.spawned("n1", 0);
        assert_eq!(book.admit(&claim("n1", "", None)), Err(Refusal::BadToken));
        assert_eq!(
            book.admit(&claim("n1", "t0K", None)),
            Err(Refusal::BadToken)
        );
        assert_eq!(book.admit(&claim("n1", "t0", None)), Err(Refusal::BadToken));
        assert_eq!(book.admit(&claim("n1", "t0k", None)), Ok(0));
    }

    #[test]
    fn clients_and_harness_cannot_be_claimed_even_with_the_token() {
        let mut book = Book::new("t", &nodes());
        for addr in ["c1", "harness", "router", "n3", ""] {
            assert_eq!(
                book.admit(&claim(addr, "t", None)),
                Err(Refusal::NotANode),
                "{addr}"
            );
        }
    }

    #[test]
    fn second_hello_for_a_connected_incarnation_is_refused() {
        let mut book = Book::new("t", &nodes());
        book.spawned("n2", 0);
        assert_eq!(book.admit(&claim("n2", "t", Some(0))), Ok(0));
        assert_eq!(
            book.admit(&claim("n2", "t", Some(0))),
            Err(Refusal::Duplicate)
        );
        assert_eq!(book.admit(&claim("n2", "t", None)), Err(Refusal::Duplicate));
        assert_eq!(
            book.admit(&claim("n2", "t", Some(1))),
            Err(Refusal::WrongIncarnation),
            "a future incarnation is not squall's"
        );
    }

    #[test]
    fn restarted_node_is_admitted_before_its_old_connection_closes() {
        let mut book = Book::new("t", &nodes());
        book.spawned("n1", 0);
        assert_eq!(book.admit(&claim("n1", "t", Some(0))), Ok(0));
        // Killed and restarted; the old connection's EOF has not arrived yet.
        book.spawned("n1", 1);
        assert_eq!(
            book.admit(&claim("n1", "t", Some(0))),
            Err(Refusal::WrongIncarnation),
            "a stale incarnation"
        );
        assert_eq!(book.admit(&claim("n1", "t", Some(1))), Ok(1));
        assert_eq!(book.admit(&claim("n1", "t", None)), Err(Refusal::Duplicate));
    }

    #[test]
    fn only_a_hello_to_the_router_from_its_node_id_is_a_claim() {
        let ok = br#"{"src":"n1","dest":"router","body":{"type":"hello","node_id":"n1","token":"t","incarnation":2}}"#;
        assert_eq!(claim_of(ok), Some(claim("n1", "t", Some(2))));
        for bad in [
            &br#"{"src":"n2","dest":"router","body":{"type":"hello","node_id":"n1","token":"t"}}"#
                [..],
            br#"{"src":"n1","dest":"n2","body":{"type":"hello","node_id":"n1","token":"t"}}"#,
            br#"{"src":"n1","dest":"router","body":{"type":"init_ok","in_reply_to":1}}"#,
            b"GET / HTTP/1.1",
            b"",
        ] {
            assert_eq!(claim_of(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn node_not_started_yet_is_refused() {
        let mut book = Book::new("t", &nodes());
        assert_eq!(
            book.admit(&claim("n1", "t", None)),
            Err(Refusal::WrongIncarnation)
        );
    }

    #[test]
    fn rejections_are_counted_sampled_and_never_keep_the_token() {
        let gate = Gate::with_token("sekrit", &nodes());
        let hello = r#"{"type":"hello","node_id":"c1","token":"sekrit"}"#;
        for _ in 0..REJECTION_SAMPLES_MAX + 5 {
            assert_eq!(
                gate.admit(&claim("c1", "sekrit", None), hello),
                Err(Refusal::NotANode)
            );
        }
        gate.reject(Refusal::ClosedBeforeHello, "");
        let r = gate.rejections();
        assert_eq!(r.total, REJECTION_SAMPLES_MAX as u64 + 6);
        assert_eq!(r.by_reason["not_a_node"], REJECTION_SAMPLES_MAX as u64 + 5);
        assert_eq!(r.by_reason["closed_before_hello"], 1);
        assert_eq!(r.samples.len(), REJECTION_SAMPLES_MAX);
        assert_eq!(r.samples[0].claimed.as_deref(), Some("c1"));
        assert!(
            !r.samples[0].detail.contains("sekrit"),
            "{:?}",
            r.samples[0]
        );
        assert!(!format!("{gate:?}").contains("sekrit"));
    }

    #[test]
    fn startup_hint_names_the_missing_token() {
        let gate = Gate::with_token("t", &nodes());
        assert_eq!(gate.rejections().startup_hint(), "");
        gate.spawned("n1", 0);
        let _ = gate.admit(&claim("n1", "", None), "");
        let hint = gate.rejections().startup_hint();
        assert!(hint.contains("bad_token 1"), "{hint}");
        assert!(hint.contains("SQUALL_TOKEN"), "{hint}");
    }

    #[test]
    fn pending_hellos_are_bounded() {
        let gate = Gate::with_token("t", &nodes());
        let tickets: Vec<PendingHello> = (0..PENDING_HELLOS_MAX)
            .map(|_| gate.await_hello().expect("room"))
            .collect();
        assert!(gate.await_hello().is_none());
        assert_eq!(gate.rejections().by_reason["too_many_pending"], 1);
        drop(tickets);
        assert!(gate.await_hello().is_some());
    }

    #[test]
    fn fresh_gates_have_fresh_tokens() {
        let a = Gate::new(&nodes());
        let b = Gate::new(&nodes());
        assert_eq!(a.token().len(), 32);
        assert_ne!(a.token(), b.token());
    }
}
