//! Out-of-band reports a node sends to the `harness` address. They are evidence for
//! checkers and ground truth for benchmarks; no reply is expected.

use serde::{Deserialize, Serialize};

use crate::ops::Ballot;

/// A report body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Report {
    /// The node learned that `value` is decided for instance `key`.
    Decided {
        /// The instance.
        key: u64,
        /// The decided value.
        value: u64,
        /// Rounds the node's own proposer needed, if it proposed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rounds: Option<u32>,
    },
    /// An acceptor accepted `value` at `ballot` (phase 2); the harness derives the round in
    /// which a value was first chosen by a majority from these.
    Accepted {
        /// The instance.
        key: u64,
        /// The ballot of the accept.
        ballot: Ballot,
        /// The accepted value.
        value: u64,
    },
    /// A proposer started a ballot (phase 1) for instance `key`.
    BallotStarted {
        /// The instance.
        key: u64,
        /// The new ballot.
        ballot: Ballot,
    },
}
