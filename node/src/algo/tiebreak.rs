//! `tiebreak-wait-all` and `tiebreak-timeout`: majority voting that breaks split votes with a
//! deterministic rule.
//!
//! From *Consensus, FLP and Paxos* (seed 003), sections "Tiebreaking" and "Fault-Tolerant
//! Tiebreaking". Voting is exactly [`super::majority_vote`] (`onCandidate`, `onVote`, one
//! vote per node, a strict majority wins). What changes is the end: when no value can reach
//! a majority, the seed takes "all the candidates that got any votes, sort them in some
//! arbitrary order, and then pick the first", written as
//! `outcome.complete(Collections.min(tally.keySet()))` — the bully algorithm applied to
//! values. [`tiebreak`] is that rule: the smallest value with at least one vote.
//!
//! The two variants differ only in *when* the tie-break may run, which the seed shows is the
//! whole problem:
//!
//! - **wait-all** runs it once votes from all N nodes are in (`votesTallied ==
//!   nodeIds.size()`). Every node then holds the same full tally, so all pick the same
//!   winner: agreement holds. But "if a fault takes down any node before that node casts its
//!   vote, then we'll never have all votes in, and then we won't terminate". Expected: a
//!   3-3 tie on seven nodes whose seventh node is dead never decides.
//! - **timeout** also runs it when `--param tiebreak_ms` (default 300) has passed since the
//!   node voted, with whatever votes it has. This is the fault-tolerant trigger the seed
//!   warns about: "if more votes arrive after we run the tiebreaker, they can change the
//!   algorithm's answer". A vote delayed past the timeout reaches some nodes in time and
//!   others too late; they tie-break over different tallies and decide different values.
//!   Expected: agreement violations under delay or partition, each side reporting and
//!   answering its own decision. Without a failure detector there is no right timeout.
//!
//! In both variants a strict majority decides as soon as it appears, and a node that learns
//! a decision from a peer ([`super::majority_vote::Msg::Decided`]) adopts it.

use super::majority_vote::{Rule, Tally, Voting};
use super::Config;

/// The seed's tie-break: the smallest value that received any vote.
pub fn tiebreak(tally: &Tally) -> Option<u64> {
    tally.candidates().next()
}

/// Tie-break only once every node has voted.
#[derive(Debug, Clone)]
pub struct WaitAll;

impl Rule for WaitAll {
    fn new(_config: &Config) -> Result<Self, String> {
        Ok(WaitAll)
    }

    fn on_tally(&self, tally: &Tally, nodes: usize) -> Option<u64> {
        tally.majority(nodes).or_else(|| {
            if tally.voters() == nodes {
                tiebreak(tally)
            } else {
                None
            }
        })
    }
}

/// Tie-break once every node has voted, or when the timeout passes, whichever is first.
#[derive(Debug, Clone)]
pub struct AfterTimeout {
    timeout_ms: u64,
}

impl Rule for AfterTimeout {
    const PARAMS: &'static [&'static str] = &["tiebreak_ms"];

    fn new(config: &Config) -> Result<Self, String> {
        let timeout_ms = config.param("tiebreak_ms", 300u64)?;
        Ok(AfterTimeout { timeout_ms })
    }

    fn on_tally(&self, tally: &Tally, nodes: usize) -> Option<u64> {
        WaitAll.on_tally(tally, nodes)
    }

    fn timeout_ms(&self) -> Option<u64> {
        Some(self.timeout_ms)
    }

    fn on_timeout(&self, tally: &Tally) -> Option<u64> {
        tiebreak(tally)
    }
}

/// The `tiebreak-wait-all` algorithm.
pub type TiebreakWaitAll = Voting<WaitAll>;

/// The `tiebreak-timeout` algorithm.
pub type TiebreakTimeout = Voting<AfterTimeout>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::NodeId;
    use std::collections::BTreeMap;

    fn tally(pairs: &[(&str, u64)]) -> Tally {
        let votes: BTreeMap<NodeId, u64> = pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        Tally::of(&votes)
    }

    #[test]
    fn tiebreak_picks_the_smallest_voted_value() {
        // The seed's example: Red 10, Blue 10, Green 5 has two pluralities; min breaks it.
        let t = tally(&[("n1", 30), ("n2", 30), ("n3", 20), ("n4", 20), ("n5", 10)]);
        assert_eq!(tiebreak(&t), Some(10));
        assert_eq!(tiebreak(&Tally::default()), None);
    }

    #[test]
    fn wait_all_waits_for_every_vote() {
        let partial = tally(&[("n1", 2), ("n2", 2), ("n3", 1), ("n4", 1)]);
        assert_eq!(WaitAll.on_tally(&partial, 5), None);
        let full = tally(&[("n1", 2), ("n2", 2), ("n3", 1), ("n4", 1), ("n5", 3)]);
        assert_eq!(WaitAll.on_tally(&full, 5), Some(1));
        let majority = tally(&[("n1", 2), ("n2", 2), ("n3", 2)]);
        assert_eq!(WaitAll.on_tally(&majority, 5), Some(2));
    }

    #[test]
    fn timeout_decides_on_what_it_has() {
        let rule = AfterTimeout { timeout_ms: 10 };
        let partial = tally(&[("n1", 2), ("n2", 2), ("n3", 5)]);
        assert_eq!(rule.on_tally(&partial, 5), None);
        assert_eq!(rule.on_timeout(&partial), Some(2));
    }
}
