//! Client operations (harness client -> node) and their replies (node -> client).
//!
//! One enum per direction, tagged by the body's `type`. Values are integers: workloads
//! make them unique per op where the checker relies on that.

use std::collections::BTreeMap;

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
    /// Maelstrom `broadcast`'s setup: the neighbours of every node, sent to each node
    /// before any client op.
    Topology {
        /// Node id to the ids it should talk to.
        topology: BTreeMap<String, Vec<String>>,
    },
    /// Maelstrom `broadcast`: spread `message` to every node.
    Broadcast {
        /// The value (unique per op).
        message: u64,
    },
    /// Maelstrom `broadcast`'s `read`: every message the node has seen. It has no key,
    /// so it is `read` on the wire and only ever sent, never parsed, as a request.
    #[serde(rename = "read", skip_deserializing)]
    ReadAll {},
    /// Maelstrom `kafka`: append `msg` to log `key`; the reply gives its offset.
    Send {
        /// The log.
        key: String,
        /// The value (unique per op).
        msg: u64,
    },
    /// Maelstrom `kafka`: messages of each log from its given offset on.
    Poll {
        /// Log to the first offset wanted.
        offsets: BTreeMap<String, u64>,
    },
    /// Maelstrom `kafka`: the client has processed each log up to its offset.
    CommitOffsets {
        /// Log to committed offset.
        offsets: BTreeMap<String, u64>,
    },
    /// Maelstrom `kafka`: the committed offset of each log.
    ListCommittedOffsets {
        /// The logs asked about.
        keys: Vec<String>,
    },
}

impl ClientOp {
    /// The op's function name as recorded in histories (`propose`, `read`, ...).
    pub fn f(&self) -> &'static str {
        match self {
            ClientOp::Echo { .. } => "echo",
            ClientOp::Propose { .. } => "propose",
            ClientOp::Read { .. } => "read",
            ClientOp::Write { .. } => "write",
            ClientOp::Cas { .. } => "cas",
            ClientOp::Topology { .. } => "topology",
            ClientOp::Broadcast { .. } => "broadcast",
            ClientOp::ReadAll {} => "read",
            ClientOp::Send { .. } => "send",
            ClientOp::Poll { .. } => "poll",
            ClientOp::CommitOffsets { .. } => "commit_offsets",
            ClientOp::ListCommittedOffsets { .. } => "list_committed_offsets",
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
    /// Reply to [`ClientOp::Topology`].
    TopologyOk,
    /// Reply to [`ClientOp::Broadcast`].
    BroadcastOk,
    /// Reply to [`ClientOp::ReadAll`]: `read_ok` on the wire like [`ClientReply::ReadOk`],
    /// so it is parsed by [`Response::parse_for`], which knows the request.
    #[serde(rename = "read_ok", skip_deserializing)]
    MessagesOk {
        /// Every message the node has seen.
        messages: Vec<u64>,
    },
    /// Reply to [`ClientOp::Send`].
    SendOk {
        /// Where the message landed in its log.
        offset: u64,
    },
    /// Reply to [`ClientOp::Poll`].
    PollOk {
        /// Log to `[offset, msg]` pairs.
        msgs: BTreeMap<String, Vec<(u64, u64)>>,
    },
    /// Reply to [`ClientOp::CommitOffsets`].
    CommitOffsetsOk,
    /// Reply to [`ClientOp::ListCommittedOffsets`].
    ListCommittedOffsetsOk {
        /// Log to committed offset (logs with none left out).
        offsets: BTreeMap<String, u64>,
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

/// A `read_ok` that answers a [`ClientOp::ReadAll`].
#[derive(Deserialize)]
struct MessagesOk {
    in_reply_to: u64,
    #[serde(rename = "type")]
    ty: String,
    messages: Vec<u64>,
}

impl Response {
    /// Parses the reply to `op`: as [`Response`], except that the `read_ok` of a
    /// [`ClientOp::ReadAll`] carries `messages` ([`ClientReply::MessagesOk`]).
    pub fn parse_for(op: &ClientOp, body: &str) -> Result<Response, serde_json::Error> {
        if let ClientOp::ReadAll {} = op {
            if let Ok(r) = serde_json::from_str::<MessagesOk>(body) {
                if r.ty == "read_ok" {
                    return Ok(Response {
                        in_reply_to: r.in_reply_to,
                        reply: ClientReply::MessagesOk {
                            messages: r.messages,
                        },
                    });
                }
            }
        }
        serde_json::from_str(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maelstrom_broadcast_and_kafka_shapes() {
        let read = Request {
            msg_id: 2,
            op: ClientOp::ReadAll {},
        };
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            serde_json::json!({"type":"read","msg_id":2})
        );
        let body = r#"{"type":"read_ok","in_reply_to":2,"messages":[3,1]}"#;
        assert_eq!(
            Response::parse_for(&ClientOp::ReadAll {}, body)
                .unwrap()
                .reply,
            ClientReply::MessagesOk {
                messages: vec![3, 1]
            }
        );
        let poll = r#"{"type":"poll_ok","in_reply_to":5,"msgs":{"k1":[[1000,9],[1001,5]]}}"#;
        let op = ClientOp::Poll {
            offsets: BTreeMap::from([("k1".to_string(), 1000)]),
        };
        let got = Response::parse_for(&op, poll).unwrap().reply;
        assert_eq!(
            got,
            ClientReply::PollOk {
                msgs: BTreeMap::from([("k1".to_string(), vec![(1000, 9), (1001, 5)])])
            }
        );
        let err = r#"{"type":"error","in_reply_to":2,"code":11}"#;
        assert!(matches!(
            Response::parse_for(&ClientOp::ReadAll {}, err)
                .unwrap()
                .reply,
            ClientReply::Error { .. }
        ));
    }

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
