//! Maelstrom's services, served inside the harness: `seq-kv`, `lin-kv`, `lww-kv` and
//! `lin-tso` are addresses any node can send to, with Maelstrom's bodies.
//!
//! - The kv services take `read {key}` → `read_ok {value}`, `write {key, value}` →
//!   `write_ok`, `cas {key, from, to, create_if_not_exists?}` → `cas_ok`; a missing key
//!   is error 20 (key-does-not-exist), a `from` that does not match error 22
//!   (precondition-failed). Keys and values are any JSON.
//! - `lin-kv` is one map, each request applied when it arrives: linearizable.
//! - `seq-kv` keeps each key's recent versions and may answer a read from an older one,
//!   but never older than what that client (the sender's address) saw or wrote last: a
//!   stale, per-client monotonic state, sequentially consistent as Maelstrom's is.
//!   Writes and cas act on the newest state and move the client there.
//! - `lww-kv` is [`LWW_REPLICAS`] replicas, each request served by one drawn at random;
//!   writes carry a timestamp, and now and then (one request in [`LWW_MERGE_EVERY`])
//!   the replicas merge, last writer wins per key. Reads may miss recent writes, and a
//!   cas may succeed on a replica that has not seen a newer write.
//! - `lin-tso` answers `ts` with `ts_ok {ts}`, strictly increasing.
//!
//! A [`Service`] is a pure state machine (`handle(src, body) -> reply`); every random
//! choice comes from its RNG, seeded from the run's seed and the service's name, so a run
//! replays its draws. The free-running shell ([`serve`]) owns one task per service.
//! Their traffic is counted and logged like nodes'.
//!
//! Service links are not faulted unless asked, as in Maelstrom. With `--fault-services`
//! the nemesis's link table holds the services next to the nodes: message faults on
//! every link (drop, delay, duplicate, reorder) and a clogged node's links reach them
//! too, and a partition of the nodes also cuts the node-service links that
//! [`partition_cut`] names (the services stand with the majority).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::router::Router;

/// The services' addresses.
pub const SERVICES: &[&str] = &["seq-kv", "lin-kv", "lww-kv", "lin-tso"];
/// Versions of each key `seq-kv` keeps for stale reads.
pub const SEQ_VERSIONS_MAX: usize = 16;
/// Replicas of `lww-kv`.
pub const LWW_REPLICAS: usize = 3;
/// `lww-kv` merges its replicas about once per this many requests.
pub const LWW_MERGE_EVERY: u32 = 4;
/// Requests waiting at one service before further ones are dropped (counted by the
/// router as `overflow`).
pub const INBOX_MAX: usize = 4096;

/// One key's versions in `seq-kv`: (global version, value), oldest first.
type Versions = VecDeque<(u64, Value)>;

/// What a service keeps.
#[derive(Debug)]
enum State {
    Lin(BTreeMap<String, Value>),
    Seq {
        keys: BTreeMap<String, Versions>,
        version: u64,
        /// Per client, the newest version it has seen.
        seen: BTreeMap<String, u64>,
    },
    /// Per replica, key -> (timestamp, value).
    Lww {
        replicas: Vec<BTreeMap<String, (u64, Value)>>,
        clock: u64,
    },
    Tso(u64),
}

/// One service: a state machine from request bodies to reply bodies.
#[derive(Debug)]
pub struct Service {
    name: &'static str,
    state: State,
    rng: ChaCha8Rng,
}

/// A request went wrong: Maelstrom's error code and text.
struct Refused(u32, String);

impl Service {
    /// The service `name` of a run with `seed`; `None` if no service has that name.
    pub fn new(name: &str, seed: u64) -> Option<Service> {
        let (name, state) = match name {
            "lin-kv" => ("lin-kv", State::Lin(BTreeMap::new())),
            "seq-kv" => (
                "seq-kv",
                State::Seq {
                    keys: BTreeMap::new(),
                    version: 0,
                    seen: BTreeMap::new(),
                },
            ),
            "lww-kv" => (
                "lww-kv",
                State::Lww {
                    replicas: vec![BTreeMap::new(); LWW_REPLICAS],
                    clock: 0,
                },
            ),
            "lin-tso" => ("lin-tso", State::Tso(0)),
            _ => return None,
        };
        let salt = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Some(Service {
            name,
            state,
            rng: ChaCha8Rng::seed_from_u64(seed ^ salt),
        })
    }

    /// The service's address.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The reply to request `body` from `src`; `None` for a body with no `msg_id` (no
    /// one could match a reply to it).
    pub fn handle(&mut self, src: &str, body: &str) -> Option<String> {
        let req: Value = serde_json::from_str(body).ok()?;
        let msg_id = req.get("msg_id")?.as_u64()?;
        let ty = req.get("type").and_then(Value::as_str).unwrap_or("");
        let mut reply = match self.answer(src, ty, &req) {
            Ok(v) => v,
            Err(Refused(code, text)) => json!({"type": "error", "code": code, "text": text}),
        };
        reply["in_reply_to"] = json!(msg_id);
        Some(reply.to_string())
    }

    fn answer(&mut self, src: &str, ty: &str, req: &Value) -> Result<Value, Refused> {
        if let State::Tso(last) = &mut self.state {
            if ty != "ts" {
                return Err(Refused(10, format!("lin-tso serves ts, not '{ty}'")));
            }
            *last += 1;
            return Ok(json!({"type": "ts_ok", "ts": *last}));
        }
        let field = |f: &str| {
            req.get(f)
                .cloned()
                .ok_or_else(|| Refused(12, format!("{ty} needs '{f}'")))
        };
        let key = field("key")?.to_string();
        let op = match ty {
            "read" => Op::Read,
            "write" => Op::Write(field("value")?),
            "cas" => Op::Cas {
                from: field("from")?,
                to: field("to")?,
                create: req
                    .get("create_if_not_exists")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
            _ => {
                return Err(Refused(
                    10,
                    format!("{} serves read, write, cas, not '{ty}'", self.name),
                ))
            }
        };
        let current = self.current(src, &key, matches!(op, Op::Read));
        let (reply, new) = op.apply(current)?;
        if let Some(v) = new {
            self.store(src, key, v);
        }
        Ok(reply)
    }

    /// The value a request from `src` sees at `key`: a read (`stale_ok`) may see an
    /// older state where the service allows it; a cas sees what it acts on.
    fn current(&mut self, src: &str, key: &str, stale_ok: bool) -> Option<Value> {
        match &mut self.state {
            State::Lin(map) => map.get(key).cloned(),
            State::Seq { keys, seen, .. } => {
                let floor = seen.get(src).copied().unwrap_or(0);
                let versions = keys.get(key)?;
                // Versions this client may still see: the one in force at its floor, and
                // every later one.
                let first = versions.iter().rposition(|(v, _)| *v <= floor).unwrap_or(0);
                let pick = if stale_ok {
                    self.rng.gen_range(first..versions.len())
                } else {
                    versions.len() - 1
                };
                let (v, value) = versions[pick].clone();
                let s = seen.entry(src.to_string()).or_insert(0);
                *s = (*s).max(v);
                Some(value)
            }
            State::Lww { replicas, .. } => {
                let r = self.rng.gen_range(0..replicas.len());
                if self.rng.gen_ratio(1, LWW_MERGE_EVERY) {
                    merge(replicas);
                }
                replicas[r].get(key).map(|(_, v)| v.clone())
            }
            State::Tso(_) => None,
        }
    }

    fn store(&mut self, src: &str, key: String, value: Value) {
        match &mut self.state {
            State::Lin(map) => {
                map.insert(key, value);
            }
            State::Seq {
                keys,
                version,
                seen,
            } => {
                *version += 1;
                let versions = keys.entry(key).or_default();
                versions.push_back((*version, value));
                if versions.len() > SEQ_VERSIONS_MAX {
                    versions.pop_front();
                }
                seen.insert(src.to_string(), *version);
            }
            State::Lww { replicas, clock } => {
                *clock += 1;
                let r = self.rng.gen_range(0..replicas.len());
                replicas[r].insert(key, (*clock, value));
            }
            State::Tso(_) => {}
        }
    }
}

/// Every replica takes, per key, the value with the newest timestamp.
fn merge(replicas: &mut [BTreeMap<String, (u64, Value)>]) {
    let mut newest: BTreeMap<String, (u64, Value)> = BTreeMap::new();
    for r in replicas.iter() {
        for (k, (ts, v)) in r {
            if newest.get(k).is_none_or(|(t, _)| t < ts) {
                newest.insert(k.clone(), (*ts, v.clone()));
            }
        }
    }
    for r in replicas.iter_mut() {
        r.clone_from(&newest);
    }
}

/// A kv request.
enum Op {
    Read,
    Write(Value),
    Cas {
        from: Value,
        to: Value,
        create: bool,
    },
}

impl Op {
    /// The reply to this op on `current`, and the value to store if it changes one.
    fn apply(self, current: Option<Value>) -> Result<(Value, Option<Value>), Refused> {
        let missing = || Refused(20, "key does not exist".into());
        match (self, current) {
            (Op::Read, Some(v)) => Ok((json!({"type": "read_ok", "value": v}), None)),
            (Op::Read, None) => Err(missing()),
            (Op::Write(v), _) => Ok((json!({"type": "write_ok"}), Some(v))),
            (
                Op::Cas {
                    to, create: true, ..
                },
                None,
            ) => Ok((json!({"type": "cas_ok"}), Some(to))),
            (Op::Cas { .. }, None) => Err(missing()),
            (Op::Cas { from, to, .. }, Some(v)) if v == from => {
                Ok((json!({"type": "cas_ok"}), Some(to)))
            }
            (Op::Cas { from, .. }, Some(v)) => {
                Err(Refused(22, format!("expected {from}, but had {v}")))
            }
        }
    }
}

/// Serves every service of [`SERVICES`] on `router` for a run with `seed`, one task
/// each in `tasks`, until the router drops their inboxes. The addresses must have been
/// declared when the router started.
pub fn serve(router: &Router, seed: u64, tasks: &mut JoinSet<()>) {
    for name in SERVICES {
        let mut svc = Service::new(name, seed).expect("a known service");
        let mut inbox = router.register_local(name, INBOX_MAX);
        let router = router.clone();
        tasks.spawn(async move {
            while let Some(d) = inbox.recv().await {
                if let Some(reply) = svc.handle(&d.src, &d.body) {
                    router.send_local(svc.name(), &d.src, &reply);
                }
            }
        });
    }
}

/// The node-service links a partition `cut` of `nodes` also cuts when service links are
/// faulted: a node cut off (in either direction) from more than half of the other nodes
/// stands in a minority, and loses every service both ways; the rest keep them. So an
/// isolated node loses the services and a majority never does.
pub fn partition_cut(nodes: &[String], cut: &[(String, String)]) -> Vec<(String, String)> {
    let mut apart: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (a, b) in cut {
        apart.entry(a).or_default().insert(b);
        apart.entry(b).or_default().insert(a);
    }
    let others = nodes.len().saturating_sub(1);
    let mut out = Vec::new();
    for node in nodes {
        let cut_from = apart.get(node.as_str()).map_or(0, |s| s.len());
        if 2 * cut_from > others {
            for svc in SERVICES {
                out.push((node.clone(), svc.to_string()));
                out.push((svc.to_string(), node.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
