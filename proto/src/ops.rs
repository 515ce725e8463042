//! Client operations (harness client -> node) and their replies (node -> client).
//!
//! One enum per direction, tagged by the body's `type`. Values are integers: workloads
//! make them unique per op where the checker relies on that.

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
    /// Move `amount` from the asked node's account to node `to`'s (workload `bank`).
    Transfer {
        /// The receiving node's id.
        to: String,
        /// How much.
        amount: u64,
    },
    /// Start a global snapshot at the asked node (workload `bank`).
    Snapshot,
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
            ClientOp::Transfer { .. } => "transfer",
            ClientOp::Snapshot => "snapshot",
        }
    }
}

/// A reply body to a client request (without `in_reply_to`, see [`Response`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        /// Numeric error code.
        code: ErrorCode,
        /// Human-readable detail.
        #[serde(default)]
        text: String,
    },
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
