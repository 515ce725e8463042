//! The replicated state machine both `raft` and `multi-paxos` drive: a map of integer
//! keys to integer values, answering Maelstrom's `lin-kv` ops.
//!
//! A command is applied once per log position on every replica, in log order, so every
//! replica computes the same answers. A client request may reach the log twice (a
//! duplicated `forward`, a retry through a second leader); the store applies only the
//! first copy: each client issues its requests one at a time with rising `msg_id`s, so a
//! command whose `msg_id` is not above the highest applied for its client is a stale
//! copy, and skipping it is allowed (the client either got its answer from the first
//! copy or gave up on it, recording `info`).
//!
//! Both algorithms also share here how a request reaches the leader ([`Forwarded`],
//! [`Waiting::to_leader`]), how the node that took it answers once it applies it
//! ([`Waiting::answer`]) and their timing parameters ([`timing`], [`batch_us`]).

use std::collections::BTreeMap;

use proto::ops::{ClientOp, ClientReply};
use proto::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::algo::{Algorithm, ClientReq, Config, Ctx, NodeId};

/// A state-machine command as it sits in a log (bincode-friendly, unlike `ClientOp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmd {
    /// Changes nothing: a new leader's first entry, or a hole filled.
    Noop,
    /// `read {key}`.
    Read {
        /// The key.
        key: u64,
    },
    /// `write {key, value}`.
    Write {
        /// The key.
        key: u64,
        /// The new value.
        value: u64,
    },
    /// `cas {key, from, to}`.
    Cas {
        /// The key.
        key: u64,
        /// The expected value.
        from: u64,
        /// The new value.
        to: u64,
    },
}

impl Cmd {
    /// The command for a client op; `None` for ops the store does not serve.
    pub fn of(op: &ClientOp) -> Option<Cmd> {
        Some(match *op {
            ClientOp::Read { key } => Cmd::Read { key },
            ClientOp::Write { key, value } => Cmd::Write { key, value },
            ClientOp::Cas { key, from, to } => Cmd::Cas { key, from, to },
            _ => return None,
        })
    }
}

/// Who asked for a command, so the node that took the request answers it once applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The node the client sent the request to.
    pub node: String,
    /// The client address.
    pub client: String,
    /// The request's `msg_id`.
    pub msg_id: u64,
}

/// A command with its origin (none for no-ops).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// What to do.
    pub cmd: Cmd,
    /// Who asked.
    pub origin: Option<Origin>,
}

impl Command {
    /// A no-op.
    pub fn noop() -> Command {
        Command {
            cmd: Cmd::Noop,
            origin: None,
        }
    }
}

/// The store: key → value, plus the highest `msg_id` applied per client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kv {
    map: BTreeMap<u64, u64>,
    applied_msg: BTreeMap<String, u64>,
}

impl Kv {
    /// Applies `command`; `None` if it was a stale copy (or a no-op), else the answer.
    pub fn apply(&mut self, command: &Command) -> Option<ClientReply> {
        if let Some(o) = &command.origin {
            let last = self.applied_msg.entry(o.client.clone()).or_insert(0);
            if o.msg_id <= *last {
                return None;
            }
            *last = o.msg_id;
        }
        match command.cmd {
            Cmd::Noop => None,
            ref cmd => Some(self.answer(cmd, true)),
        }
    }

    /// The answer `cmd` gets from the current state; changes it only if `change`.
    pub fn answer(&mut self, cmd: &Cmd, change: bool) -> ClientReply {
        let missing = |key: u64| ClientReply::Error {
            code: ErrorCode::KeyDoesNotExist,
            text: format!("key {key} does not exist"),
        };
        match *cmd {
            Cmd::Noop => ClientReply::Error {
                code: ErrorCode::MalformedRequest,
                text: "no-op".into(),
            },
            Cmd::Read { key } => match self.map.get(&key) {
                Some(v) => ClientReply::ReadOk { value: Some(*v) },
                None => missing(key),
            },
            Cmd::Write { key, value } => {
                if change {
                    self.map.insert(key, value);
                }
                ClientReply::WriteOk
            }
            Cmd::Cas { key, from, to } => match self.map.get(&key).copied() {
                None => missing(key),
                Some(v) if v != from => ClientReply::Error {
                    code: ErrorCode::PreconditionFailed,
                    text: format!("key {key} holds {v}, not {from}"),
                },
                Some(_) => {
                    if change {
                        self.map.insert(key, to);
                    }
                    ClientReply::CasOk
                }
            },
        }
    }

    /// The value of `key`, if written.
    pub fn get(&self, key: u64) -> Option<u64> {
        self.map.get(&key).copied()
    }
}

/// Requests this node took from clients and still owes an answer: one per client, since a
/// client has one request in flight (a newer one means the older was given up).
#[derive(Debug, Clone, Default)]
pub struct Waiting {
    by_client: BTreeMap<String, ClientReq>,
}

impl Waiting {
    /// Remembers that `req` waits here, forgetting the client's older request.
    pub fn add(&mut self, req: &ClientReq) {
        self.by_client.insert(req.client.clone(), req.clone());
    }

    /// The waiting request `origin` names, if it waits here; forgets it.
    pub fn take(&mut self, node: &str, origin: &Origin) -> Option<ClientReq> {
        if origin.node != node {
            return None;
        }
        match self.by_client.get(&origin.client) {
            Some(req) if req.msg_id == origin.msg_id => self.by_client.remove(&origin.client),
            _ => None,
        }
    }

    /// Node `node` applied `command`, which the store answered `reply` (`None` for a
    /// no-op or a stale copy): answers its client if the request waits here.
    pub fn answer<A: Algorithm>(
        &mut self,
        node: &str,
        command: &Command,
        reply: Option<ClientReply>,
        ctx: &mut Ctx<A>,
    ) {
        if let (Some(reply), Some(o)) = (reply, &command.origin) {
            if let Some(req) = self.take(node, o) {
                ctx.reply(&req, reply);
            }
        }
    }
}

/// What a replica does with a client request: answer it now, or log it.
#[derive(Debug)]
pub enum Intake {
    /// Answer at once: an op the store does not serve, or a read answered locally.
    Reply(ClientReply),
    /// Append to the log; the request waits in [`Waiting`] until its entry is applied.
    Log(Command),
}

impl Waiting {
    /// Takes client request `req` at node `node`. A read is answered from `kv` at once
    /// when `local_read` (the mutants that skip the log for reads); every other supported
    /// op waits here and goes to the log with its origin.
    pub fn intake(&mut self, req: &ClientReq, node: &str, kv: &mut Kv, local_read: bool) -> Intake {
        let Some(cmd) = Cmd::of(&req.op) else {
            return Intake::Reply(crate::algo::not_supported(&req.op));
        };
        if local_read && matches!(cmd, Cmd::Read { .. }) {
            return Intake::Reply(kv.answer(&cmd, false));
        }
        self.add(req);
        Intake::Log(Command {
            cmd,
            origin: Some(Origin {
                node: node.to_string(),
                client: req.client.clone(),
                msg_id: req.msg_id,
            }),
        })
    }
}

/// Most hops a forwarded request takes before it is dropped (the client times out).
pub const FORWARD_HOPS_MAX: u32 = 2;

/// A client request that travels to the leader: the command with its origin, and the
/// nodes it went through (both algorithms' `forward` message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarded {
    /// The command with its origin.
    pub command: Command,
    /// Nodes it went through.
    pub hops: u32,
}

impl Waiting {
    /// At `node`, which does not lead and believes `leader` does: sends `command` (after
    /// `hops` hops) on to the leader, wrapped by `forward`, while hops remain and the
    /// leader is another node; otherwise refuses it with 11 if the request waits here (it
    /// never reached a log).
    pub fn to_leader<A: Algorithm>(
        &mut self,
        node: &str,
        leader: Option<&NodeId>,
        command: Command,
        hops: u32,
        forward: impl FnOnce(Forwarded) -> A::Msg,
        ctx: &mut Ctx<A>,
    ) {
        match leader {
            Some(l) if hops < FORWARD_HOPS_MAX && l != node => {
                let f = Forwarded {
                    command,
                    hops: hops + 1,
                };
                ctx.send(l, forward(f));
            }
            _ => {
                if let Some(req) = command.origin.and_then(|o| self.take(node, &o)) {
                    let code = ErrorCode::TemporarilyUnavailable;
                    let text = "no leader known".to_string();
                    ctx.reply(&req, ClientReply::Error { code, text });
                }
            }
        }
    }
}

/// The batching delay in microseconds: `--param batch_us`, else `batch_ms` × 1000,
/// default 2 ms; 0 turns batching off.
pub fn batch_us(config: &Config) -> Result<u64, String> {
    match config.params.get("batch_us") {
        Some(_) => config.param("batch_us", 0),
        None => Ok(config.param("batch_ms", 2u64)?.saturating_mul(1_000)),
    }
}

/// `heartbeat_ms` (default 50) and `election_ms` (default 300) of a leader-based
/// replica, checked: `0 < heartbeat_ms < election_ms`.
pub fn timing(config: &Config) -> Result<(u64, u64), String> {
    let heartbeat_ms = config.param("heartbeat_ms", 50)?;
    let election_ms = config.param("election_ms", 300)?;
    if heartbeat_ms == 0 || election_ms <= heartbeat_ms {
        return Err("need 0 < heartbeat_ms < election_ms".into());
    }
    Ok((heartbeat_ms, election_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(cmd: Cmd, client: &str, msg_id: u64) -> Command {
        Command {
            cmd,
            origin: Some(Origin {
                node: "n1".into(),
                client: client.into(),
                msg_id,
            }),
        }
    }

    #[test]
    fn lin_kv_answers_and_stale_copies_are_skipped() {
        let mut kv = Kv::default();
        let r = kv.apply(&cmd(Cmd::Read { key: 1 }, "c1", 1));
        assert!(matches!(
            r,
            Some(ClientReply::Error {
                code: ErrorCode::KeyDoesNotExist,
                ..
            })
        ));
        let w = cmd(Cmd::Write { key: 1, value: 5 }, "c1", 2);
        assert_eq!(kv.apply(&w), Some(ClientReply::WriteOk));
        let c = kv.apply(&cmd(
            Cmd::Cas {
                key: 1,
                from: 4,
                to: 6,
            },
            "c2",
            1,
        ));
        assert!(matches!(
            c,
            Some(ClientReply::Error {
                code: ErrorCode::PreconditionFailed,
                ..
            })
        ));
        let c = kv.apply(&cmd(
            Cmd::Cas {
                key: 1,
                from: 5,
                to: 6,
            },
            "c2",
            2,
        ));
        assert_eq!(c, Some(ClientReply::CasOk));
        // A duplicated write of c1's request 2 must not undo the CAS.
        assert_eq!(kv.apply(&w), None);
        assert_eq!(kv.get(1), Some(6));
    }
}
