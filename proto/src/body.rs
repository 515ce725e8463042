//! Body conventions (Maelstrom's): every body is a JSON object with a string `type`;
//! requests carry a `msg_id`, replies an `in_reply_to`; failures are `error` bodies with a
//! numeric `code`.

use serde::{Deserialize, Serialize};

/// Whether an error proves the operation did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errorness {
    /// The operation certainly did not take effect: the op is recorded as `fail`.
    Definite,
    /// The operation may or may not have taken effect: the op is recorded as `info`.
    Indefinite,
}

/// Numeric error codes, Maelstrom's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u32", from = "u32")]
pub enum ErrorCode {
    /// 0: the request timed out inside the node. Indefinite.
    Timeout,
    /// 1: the destination node does not exist. Definite.
    NodeNotFound,
    /// 10: the node does not support this request type. Definite.
    NotSupported,
    /// 11: the node cannot serve the request right now (no leader, no quorum). Definite.
    TemporarilyUnavailable,
    /// 12: the request was malformed. Definite.
    MalformedRequest,
    /// 13: the node failed while handling the request. Indefinite.
    Crash,
    /// 14: the operation was aborted before taking effect. Definite.
    Abort,
    /// 20: the key does not exist. Definite.
    KeyDoesNotExist,
    /// 21: the key already exists. Definite.
    KeyAlreadyExists,
    /// 22: a precondition (a CAS's expected value) did not hold. Definite.
    PreconditionFailed,
    /// 30: a transaction conflicted. Definite.
    TxnConflict,
    /// Any other code: treated as indefinite, since nothing is known of it.
    Other(u32),
}

impl ErrorCode {
    /// The numeric code on the wire.
    pub fn code(self) -> u32 {
        match self {
            ErrorCode::Timeout => 0,
            ErrorCode::NodeNotFound => 1,
            ErrorCode::NotSupported => 10,
            ErrorCode::TemporarilyUnavailable => 11,
            ErrorCode::MalformedRequest => 12,
            ErrorCode::Crash => 13,
            ErrorCode::Abort => 14,
            ErrorCode::KeyDoesNotExist => 20,
            ErrorCode::KeyAlreadyExists => 21,
            ErrorCode::PreconditionFailed => 22,
            ErrorCode::TxnConflict => 30,
            ErrorCode::Other(c) => c,
        }
    }

    /// Decides whether an op answered with this error is `fail` or `info`.
    pub fn errorness(self) -> Errorness {
        match self {
            ErrorCode::Timeout | ErrorCode::Crash | ErrorCode::Other(_) => Errorness::Indefinite,
            _ => Errorness::Definite,
        }
    }
}

impl From<ErrorCode> for u32 {
    fn from(c: ErrorCode) -> u32 {
        c.code()
    }
}

impl From<u32> for ErrorCode {
    fn from(c: u32) -> ErrorCode {
        match c {
            0 => ErrorCode::Timeout,
            1 => ErrorCode::NodeNotFound,
            10 => ErrorCode::NotSupported,
            11 => ErrorCode::TemporarilyUnavailable,
            12 => ErrorCode::MalformedRequest,
            13 => ErrorCode::Crash,
            14 => ErrorCode::Abort,
            20 => ErrorCode::KeyDoesNotExist,
            21 => ErrorCode::KeyAlreadyExists,
            22 => ErrorCode::PreconditionFailed,
            30 => ErrorCode::TxnConflict,
            other => ErrorCode::Other(other),
        }
    }
}

/// The control bodies exchanged between the harness and a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// First line a node sends on its connection, to `router`: who it is, proved by the
    /// run's secret. The router refuses a hello without the right token, for an address
    /// that is not a node, or for an incarnation that is not the one squall started or
    /// that already has its connection (PROTOCOL.md §4).
    Hello {
        /// The node's id, as in `SQUALL_NODE_ID`.
        node_id: String,
        /// `SQUALL_TOKEN`: the run's secret. Empty (missing) is refused.
        #[serde(default)]
        token: String,
        /// `SQUALL_INCARNATION`, if the node says it: must be the incarnation squall
        /// started last.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incarnation: Option<u64>,
    },
    /// The harness tells a node its id and the cluster.
    Init {
        /// Request id.
        msg_id: u64,
        /// The node's own id.
        node_id: String,
        /// Every node id in the cluster, the node's own included, in order.
        node_ids: Vec<String>,
    },
    /// The node is ready.
    InitOk {
        /// Echo of the init's `msg_id`.
        in_reply_to: u64,
        /// The node can be driven in lockstep mode.
        #[serde(default)]
        lockstep: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_classify() {
        for c in [0u32, 1, 10, 11, 12, 13, 14, 20, 21, 22, 30, 99] {
            assert_eq!(ErrorCode::from(c).code(), c);
        }
        assert_eq!(ErrorCode::Timeout.errorness(), Errorness::Indefinite);
        assert_eq!(ErrorCode::Crash.errorness(), Errorness::Indefinite);
        assert_eq!(ErrorCode::from(99).errorness(), Errorness::Indefinite);
        assert_eq!(
            ErrorCode::PreconditionFailed.errorness(),
            Errorness::Definite
        );
        assert_eq!(
            ErrorCode::TemporarilyUnavailable.errorness(),
            Errorness::Definite
        );
    }

    #[test]
    fn hello_carries_token_and_incarnation() {
        let hello = Control::Hello {
            node_id: "n2".into(),
            token: "s3cret".into(),
            incarnation: Some(1),
        };
        assert_eq!(
            serde_json::to_string(&hello).unwrap(),
            r#"{"type":"hello","node_id":"n2","token":"s3cret","incarnation":1}"#
        );
        // A hello written before the token parses, so the router can say what it lacks.
        let old: Control = serde_json::from_str(r#"{"type":"hello","node_id":"n2"}"#).unwrap();
        assert_eq!(
            old,
            Control::Hello {
                node_id: "n2".into(),
                token: String::new(),
                incarnation: None
            }
        );
    }

    #[test]
    fn control_bodies_are_maelstrom_shaped() {
        let init = Control::Init {
            msg_id: 1,
            node_id: "n1".into(),
            node_ids: vec!["n1".into()],
        };
        let json = serde_json::to_value(&init).unwrap();
        assert_eq!(json["type"], "init");
        let ok: Control = serde_json::from_str(r#"{"type":"init_ok","in_reply_to":1}"#).unwrap();
        assert_eq!(
            ok,
            Control::InitOk {
                in_reply_to: 1,
                lockstep: false
            }
        );
    }
}
