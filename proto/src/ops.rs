//! Client operations (harness client -> node) and their replies (node -> client).
//!
//! One enum per direction, tagged by the body's `type`. The bundled workloads' values are
//! integers: workloads make them unique per op where the checker relies on that. The
//! Maelstrom workloads (unique-ids, g-set, the counters, ...) send [`BodyOp`]s: a body of
//! any fields and any JSON values, answered by a [`ClientReply::Body`] checked only for the
//! reply type and the fields its op names ([`BodyOp::reply_problem`]).

use serde::{Deserialize, Serialize};

use crate::body::ErrorCode;

/// A Paxos-style ballot: a round number made unique by the proposing node's id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    /// The round number, starting at 1.
    pub round: u64,
    /// The proposer that owns this ballot.
    pub node: String,
}

/// A client request body (without `msg_id`, see [`Request`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientOp {
    /// Echo the string back (workload `echo`).
    Echo {
        /// The payload to echo.
        echo: String,
    },
    /// Propose `value` for write-once instance `key`; the reply carries the decided value.
    Propose {
        /// The instance.
        key: u64,
        /// The proposed value.
        value: u64,
    },
    /// Read the value of `key` (decided value for write-once; register value for kv).
    Read {
        /// The instance or register.
        key: u64,
    },
    /// Write `value` to register `key`.
    Write {
        /// The register.
        key: u64,
        /// The new value.
        value: u64,
    },
    /// Compare-and-set register `key` from `from` to `to`.
    Cas {
        /// The register.
        key: u64,
        /// The expected current value.
        from: u64,
        /// The new value.
        to: u64,
    },
    /// Multicast `value` to the group (workload `multicast`); `mcast_ok` once this node
    /// has sent it.
    Mcast {
        /// The value; the workload makes each one unique in the run.
        value: u64,
    },
    /// Every value this node delivered so far, in delivery order (workload `multicast`).
    McastRead,
    /// Move `amount` from the asked node's account to node `to`'s (workload `bank`).
    Transfer {
        /// The receiving node's id.
        to: String,
        /// How much.
        amount: u64,
    },
    /// Start a global snapshot at the asked node (workloads `bank` and `deadlock`).
    Snapshot,
    /// Make the asked node wait for node `on` (workload `deadlock`): it sends `on` a
    /// request and is blocked until `on` grants it; `wait_ok` once it waits.
    Wait {
        /// The node waited for.
        on: String,
    },
    /// A request of a Maelstrom workload, any body (its `type` is [`BodyOp::f`]).
    #[serde(untagged)]
    Body(BodyOp),
}

/// The op names of Maelstrom's workloads, so that [`ClientOp::f`] stays a `&'static str`.
pub const BODY_OP_NAMES: &[&str] = &[
    "generate",
    "add",
    "read",
    "broadcast",
    "topology",
    "send",
    "poll",
    "commit_offsets",
    "list_committed_offsets",
    "txn",
];

/// A Maelstrom workload's request: `type` plus any fields with any JSON values, and the
/// fields its `<type>_ok` reply must carry. Serialised as the body alone.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyOp {
    /// The request's `type`, one of [`BODY_OP_NAMES`] (`other` for anything else).
    pub f: &'static str,
    /// The other fields of the body.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Fields an `ok` reply must have, or it is malformed.
    pub reply_fields: &'static [&'static str],
}

impl BodyOp {
    /// A request of type `f` with the fields of `fields` (an object; anything else is no
    /// fields) whose ok reply must carry `reply_fields`.
    pub fn new(
        f: &'static str,
        fields: serde_json::Value,
        reply_fields: &'static [&'static str],
    ) -> BodyOp {
        let fields = match fields {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        BodyOp {
            f,
            fields,
            reply_fields,
        }
    }

    /// Why `reply` (a body, `type` included) is no good answer to this op: `None` for an
    /// `<f>_ok` with every field the op needs.
    pub fn reply_problem(
        &self,
        reply: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<String> {
        let ty = reply.get("type").and_then(|t| t.as_str()).unwrap_or("?");
        if ty != format!("{}_ok", self.f) {
            return Some(format!("answered with {ty}"));
        }
        self.reply_fields
            .iter()
            .find(|f| !reply.contains_key(**f))
            .map(|f| format!("{ty} has no {f}"))
    }
}

// A JSON value holds no NaN, so its equality is an equivalence.
impl Eq for BodyOp {}

impl Serialize for BodyOp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = self.fields.clone();
        m.insert("type".into(), self.f.into());
        m.serialize(s)
    }
}

impl<'de> Deserialize<'de> for BodyOp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut fields = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let ty = fields.remove("type");
        let f = ty
            .as_ref()
            .and_then(|t| t.as_str())
            .and_then(|t| BODY_OP_NAMES.iter().find(|n| **n == t))
            .copied()
            .unwrap_or("other");
        Ok(BodyOp {
            f,
            fields,
            reply_fields: &[],
        })
    }
}

/// The balance every account of workload `bank` starts with; the bank's total is this
/// times the number of nodes, whatever the transfers do.
pub const BANK_INITIAL_BALANCE: u64 = 100;

impl ClientOp {
    /// The op's function name as recorded in histories (`propose`, `read`, ...).
    pub fn f(&self) -> &'static str {
        match self {
            ClientOp::Echo { .. } => "echo",
            ClientOp::Propose { .. } => "propose",
            ClientOp::Read { .. } => "read",
            ClientOp::Write { .. } => "write",
            ClientOp::Cas { .. } => "cas",
            ClientOp::Body(b) => b.f,
            ClientOp::Mcast { .. } => "mcast",
            ClientOp::McastRead => "mcast_read",
            ClientOp::Transfer { .. } => "transfer",
            ClientOp::Snapshot => "snapshot",
            ClientOp::Wait { .. } => "wait",
        }
    }
}

/// A reply body to a client request (without `in_reply_to`, see [`Response`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientReply {
    /// Reply to [`ClientOp::Echo`].
    EchoOk {
        /// The echoed payload.
        echo: String,
    },
    /// Reply to [`ClientOp::Propose`]: the value decided for the instance.
    ProposeOk {
        /// The decided value (not necessarily the one proposed).
        value: u64,
        /// Rounds the deciding proposer needed, where the algorithm counts them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rounds: Option<u32>,
        /// The ballot that decided, where the algorithm has ballots.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ballot: Option<Ballot>,
    },
    /// Reply to [`ClientOp::Read`]; `null` if nothing is decided or written yet.
    ReadOk {
        /// The value read.
        value: Option<u64>,
    },
    /// Reply to [`ClientOp::Write`].
    WriteOk,
    /// Reply to [`ClientOp::Cas`].
    CasOk,
    /// Reply to [`ClientOp::Mcast`]: the node has multicast the value.
    McastOk,
    /// Reply to [`ClientOp::McastRead`].
    McastReadOk {
        /// The values this node delivered, in delivery order.
        delivered: Vec<u64>,
    },
    /// Reply to [`ClientOp::Transfer`]: the money left the account as transfer number
    /// `seq` on the link to the receiver (1, 2, .. per directed link).
    TransferOk {
        /// The transfer's number on its link.
        seq: u64,
    },
    /// Reply to [`ClientOp::Snapshot`]: the snapshot started, under this id.
    SnapshotOk {
        /// The snapshot's id, unique in the run (`n1#3`).
        id: String,
    },
    /// The request failed; the code decides whether it surely did not happen.
    Error {
        /// Numeric error code; a missing one reads as 13 (crash): indefinite, since the
        /// node did not say the request surely failed.
        #[serde(default = "missing_code")]
        code: ErrorCode,
        /// Human-readable detail.
        #[serde(default)]
        text: String,
    },
    /// Reply to [`ClientOp::Wait`]: the node now waits for the node asked.
    WaitOk,
    /// The reply to a [`BodyOp`]: its fields, `type` included.
    #[serde(untagged)]
    Body(serde_json::Map<String, serde_json::Value>),
}

// A JSON value holds no NaN, so its equality is an equivalence.
impl Eq for ClientReply {}

/// An error without a code: indefinite.
fn missing_code() -> ErrorCode {
    ErrorCode::Crash
}

/// A client request as it travels: the op plus its `msg_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Unique per client; replies name it in `in_reply_to`.
    pub msg_id: u64,
    /// The operation.
    #[serde(flatten)]
    pub op: ClientOp,
}

/// A reply as it travels: the reply plus `in_reply_to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request's `msg_id`.
    pub in_reply_to: u64,
    /// The reply.
    #[serde(flatten)]
    pub reply: ClientReply,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_shapes() {
        let req = Request {
            msg_id: 4,
            op: ClientOp::Propose { key: 2, value: 9 },
        };
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"propose","msg_id":4,"key":2,"value":9})
        );
        let resp: Response = serde_json::from_str(
            r#"{"type":"error","in_reply_to":4,"code":11,"text":"no quorum"}"#,
        )
        .unwrap();
        assert_eq!(resp.in_reply_to, 4);
        assert_eq!(
            resp.reply,
            ClientReply::Error {
                code: ErrorCode::TemporarilyUnavailable,
                text: "no quorum".into()
            }
        );
        let ok: Response =
            serde_json::from_str(r#"{"type":"propose_ok","in_reply_to":4,"value":9}"#).unwrap();
        assert_eq!(
            ok.reply,
            ClientReply::ProposeOk {
                value: 9,
                rounds: None,
                ballot: None
            }
        );
    }
}
