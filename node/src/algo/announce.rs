//! Telling every peer of a decision until each acknowledges it.
//!
//! A node that decides owes its peers the news: reads answer from local knowledge, so a
//! peer that never hears the decision can never answer one. [`Announcements`] keeps, per
//! key, the peers that have not acknowledged yet and the retry delay, doubling from a base
//! to a cap. The algorithm sends its own decision message and owns its timer; this only
//! says to whom and when.

use std::collections::{BTreeMap, BTreeSet};

use super::{Algorithm, Config, Ctx, NodeId};

/// A retry delay that starts at `base_ms` and doubles up to `max_ms`: the
/// `retry_ms` and `retry_ms_max` parameters of the algorithms that retransmit.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// The first delay.
    pub base_ms: u64,
    /// The cap.
    pub max_ms: u64,
}

impl Retry {
    /// `--param retry_ms` (default 100) and `retry_ms_max` (default 1600), checked.
    pub fn from_params(config: &Config) -> Result<Retry, String> {
        let base_ms = config.param("retry_ms", 100u64)?;
        let max_ms = config.param("retry_ms_max", 1600u64)?;
        if base_ms == 0 || max_ms < base_ms {
            return Err("need 0 < retry_ms <= retry_ms_max".to_string());
        }
        Ok(Retry { base_ms, max_ms })
    }

    /// The delay after `ms`: doubled, at most the cap.
    pub fn next(&self, ms: u64) -> u64 {
        (ms * 2).min(self.max_ms)
    }

    /// Announcements that retry on this schedule.
    pub fn announcements(&self) -> Announcements {
        Announcements::new(self.base_ms, self.max_ms)
    }
}

#[derive(Debug)]
struct Pending {
    unacked: BTreeSet<NodeId>,
    retry_ms: u64,
}

/// Decisions some peers have not acknowledged, with their retry backoff.
#[derive(Debug)]
pub struct Announcements {
    retry: Retry,
    pending: BTreeMap<u64, Pending>,
}

impl Announcements {
    /// Retries start after `base_ms` and double up to `max_ms`.
    pub fn new(base_ms: u64, max_ms: u64) -> Self {
        assert!(base_ms > 0, "a zero retry delay would spin");
        let max_ms = max_ms.max(base_ms);
        Announcements {
            retry: Retry { base_ms, max_ms },
            pending: BTreeMap::new(),
        }
    }

    /// Starts announcing `key` to `peers`. Returns the peers to tell now and the delay
    /// after which to fire the announce timer.
    pub fn start(
        &mut self,
        key: u64,
        peers: impl IntoIterator<Item = NodeId>,
    ) -> (Vec<NodeId>, u64) {
        let unacked: BTreeSet<NodeId> = peers.into_iter().collect();
        let to_tell = unacked.iter().cloned().collect();
        self.pending.insert(
            key,
            Pending {
                unacked,
                retry_ms: self.retry.base_ms,
            },
        );
        (to_tell, self.retry.base_ms)
    }

    /// `peer` acknowledged `key`. True when that was the last one: cancel the timer.
    pub fn ack(&mut self, key: u64, peer: &str) -> bool {
        let Some(p) = self.pending.get_mut(&key) else {
            return false;
        };
        p.unacked.remove(peer);
        if p.unacked.is_empty() {
            self.pending.remove(&key);
            return true;
        }
        false
    }

    /// The announce timer of `key` fired: the peers to tell again and the next delay, or
    /// `None` if everyone already knows.
    pub fn retry(&mut self, key: u64) -> Option<(Vec<NodeId>, u64)> {
        let p = self.pending.get_mut(&key)?;
        p.retry_ms = self.retry.next(p.retry_ms);
        Some((p.unacked.iter().cloned().collect(), p.retry_ms))
    }
}

impl Announcements {
    /// Sends `msg` (the decision of `key`) to every peer and arms `timer` to repeat it.
    pub fn announce<A: Algorithm>(
        &mut self,
        key: u64,
        msg: A::Msg,
        timer: A::Timer,
        ctx: &mut Ctx<A>,
    ) {
        let (peers, delay) = self.start(key, ctx.config().peers().cloned());
        tell(&peers, msg, timer, delay, ctx);
    }

    /// `timer` fired: sends `msg` again to the peers that have not acknowledged, and
    /// re-arms `timer` with the next backoff. Nothing if the announcement is over.
    pub fn repeat<A: Algorithm>(
        &mut self,
        key: u64,
        msg: impl FnOnce() -> A::Msg,
        timer: A::Timer,
        ctx: &mut Ctx<A>,
    ) {
        let Some((peers, delay)) = self.retry(key) else {
            return;
        };
        tell(&peers, msg(), timer, delay, ctx);
    }

    /// `peer` knows the decision of `key`. Once every peer does, cancels `timer` and
    /// persists `done`, unsynced on purpose: losing it only costs a repeat.
    pub fn acked<A: Algorithm>(
        &mut self,
        key: u64,
        peer: &str,
        timer: A::Timer,
        done: A::Record,
        ctx: &mut Ctx<A>,
    ) {
        if self.ack(key, peer) {
            ctx.cancel_timer(timer);
            ctx.persist(done);
        }
    }
}

/// Sends `msg` to each of `peers` and arms `timer` to fire after `delay_ms`.
fn tell<A: Algorithm>(
    peers: &[NodeId],
    msg: A::Msg,
    timer: A::Timer,
    delay_ms: u64,
    ctx: &mut Ctx<A>,
) {
    for peer in peers {
        ctx.send(peer, msg.clone());
    }
    ctx.set_timer(timer, delay_ms);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_to_the_cap_and_ends_on_the_last_ack() {
        let mut a = Announcements::new(100, 300);
        let (peers, delay) = a.start(7, ["n2".to_string(), "n3".to_string()]);
        assert_eq!(
            (peers, delay),
            (vec!["n2".to_string(), "n3".to_string()], 100)
        );
        assert_eq!(
            a.retry(7),
            Some((vec!["n2".to_string(), "n3".to_string()], 200))
        );
        assert!(!a.ack(7, "n2"));
        assert_eq!(a.retry(7), Some((vec!["n3".to_string()], 300)));
        assert_eq!(a.retry(7), Some((vec!["n3".to_string()], 300)));
        assert!(a.ack(7, "n3"));
        assert_eq!(a.retry(7), None);
        assert!(!a.ack(7, "n3"), "a late duplicate ack changes nothing");
    }
}
