//! `--scheduler adversary`: a lockstep scheduler that delivers every node message but
//! chooses *when*, to keep instances undecided for as long as it can (FLP, shown).
//!
//! The default scheduler (`random`) sends each node message after its hop and lets the
//! seed break ties. The adversary keeps node-to-node messages in its own pool instead
//! and follows two rules, both generic (they read a message's body `type` and, if it has
//! one, its `key`, never what the type means):
//!
//! 1. **Starve the decisive kinds.** A message of a *decisive* type waits up to
//!    [`BOUND_US`] of virtual time (plus its hop) before it is delivered; every other
//!    message goes after its hop, as under `random`. A type is decisive when it is named in
//!    the scheduler (`adversary:accept,candidate`), when it is one of the bundled
//!    algorithm's defaults ([`default_hold`]: `accept` for Paxos, `candidate` for the
//!    voting algorithms), or as soon as delivering a message of that type has made its
//!    receiver report progress (an `accepted` or a `decided` report) — so against a node
//!    the scheduler knows nothing about it learns the kinds that move an instance forward
//!    and holds them from then on. Against Paxos this is the duel of the seed: an `accept`
//!    waits while the proposers time out, and the next `prepare` reaches the acceptors
//!    just before the old ballot's `accept` does, which is then refused.
//! 2. **Balance who is heard first.** When a decisive message is due for a destination
//!    that has not yet received that type for that `key`, the adversary delivers first
//!    the pending message of the same type and key to that destination whose sender has
//!    been heard first at the fewest destinations (ties: the oldest). Against
//!    majority voting this spreads the candidates so that no value gets a majority: the
//!    split vote of seed 003, with no delay fault.
//!
//! **Fairness.** During the faulty part of the run (up to `--time-limit`) every node
//! message is delivered at most [`BOUND_US`] of virtual time after its hop ends; after the
//! time limit the adversary stops holding and every message goes after its hop, so the
//! recovery window shows the algorithm deciding once timing is kind. Nothing is dropped,
//! duplicated or crashed: the adversary runs only with `--nemesis none`. Per-link FIFO is
//! not kept (an asynchronous network may reorder), and at most [`POOL_MAX`] messages are
//! held at once; past that new messages go after their hop.
//!
//! [`InstanceProgress`] counts, for every scheduler, how many steps and ballots each
//! instance stayed undecided; `metrics.json` has it under `instances`.

use std::collections::{BTreeMap, BTreeSet};

use proto::{EnvelopeHead, Report};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The longest a decisive message waits beyond its hop, in virtual µs (2 s): longer than
/// a bundled Paxos proposer's give-up time (three phases of 100 ms) plus its longest
/// backoff (1 s), so a held `accept` always meets a newer ballot.
pub const BOUND_US: u64 = 2_000_000;

/// The most node messages the adversary holds at once.
pub const POOL_MAX: usize = 100_000;

pub use crate::config::Scheduler;

/// The decisive message types of a bundled algorithm: what the adversary holds from the
/// first message on (it learns the rest as it goes).
pub fn default_hold(algorithm: &str) -> &'static [&'static str] {
    match algorithm {
        "paxos" | "multi-paxos" => &["accept"],
        "majority-vote" | "tiebreak-wait-all" | "tiebreak-timeout" => &["candidate"],
        _ => &[],
    }
}

/// A node message in the adversary's pool.
pub struct Pending {
    /// Sending node (index).
    pub src: usize,
    /// Receiving node (index).
    pub dest: usize,
    /// The receiver's epoch when it was sent.
    pub epoch: u64,
    /// The envelope line.
    pub line: String,
    /// Body `type`.
    pub ty: String,
    /// Body `key`, as JSON text, if there is one.
    key: Option<String>,
    /// Virtual µs it was sent.
    sent_us: u64,
    /// Its hop, µs.
    hop_us: u64,
    seq: u64,
}

/// Counters for `metrics.json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdversaryCounts {
    /// Node messages that went through the pool.
    pub messages: u64,
    /// Delivered later than their hop.
    pub held: u64,
    /// Delivered ahead of another due one to balance who is heard first.
    pub balanced: u64,
    /// Longest wait beyond the hop, virtual µs.
    pub max_wait_us: u64,
    /// Delivered (the rest were still pending when the run ended).
    pub delivered: u64,
}

/// The adversary's state.
pub struct Adversary {
    pool: BTreeMap<u64, Pending>,
    hold: BTreeSet<String>,
    learned: BTreeSet<String>,
    /// Destinations a sender was heard first at, per (key, type, sender).
    firsts: BTreeMap<(String, String, usize), u32>,
    /// (key, type, destination) that have heard that type for that key.
    heard: BTreeSet<(String, String, usize)>,
    holding: bool,
    seq: u64,
    /// What it did.
    pub counts: AdversaryCounts,
}

impl Adversary {
    /// An adversary holding `hold` (or the defaults of `algorithm`).
    pub fn new(hold: Option<&[String]>, algorithm: &str) -> Adversary {
        let hold = match hold {
            Some(h) => h.iter().cloned().collect(),
            None => default_hold(algorithm)
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        Adversary {
            pool: BTreeMap::new(),
            hold,
            learned: BTreeSet::new(),
            firsts: BTreeMap::new(),
            heard: BTreeSet::new(),
            holding: true,
            seq: 0,
            counts: AdversaryCounts::default(),
        }
    }

    /// Stops holding (the time limit): every pending message is due after its hop.
    pub fn release(&mut self) {
        self.holding = false;
    }

    /// Takes a message `src` sent to `dest` at `now_us`, to arrive no sooner than
    /// `hop_us` later.
    pub fn push(
        &mut self,
        src: usize,
        dest: usize,
        epoch: u64,
        line: String,
        now_us: u64,
        hop_us: u64,
    ) {
        let (ty, key) = type_and_key(&line);
        self.seq += 1;
        self.counts.messages += 1;
        let p = Pending {
            src,
            dest,
            epoch,
            line,
            ty,
            key,
            sent_us: now_us,
            hop_us,
            seq: self.seq,
        };
        self.pool.insert(self.seq, p);
    }

    fn decisive(&self, ty: &str) -> bool {
        self.hold.contains(ty) || self.learned.contains(ty)
    }

    fn ready_at(&self, p: &Pending) -> u64 {
        let earliest = p.sent_us.saturating_add(p.hop_us);
        if self.holding && self.pool.len() <= POOL_MAX && self.decisive(&p.ty) {
            earliest.saturating_add(BOUND_US)
        } else {
            earliest
        }
    }

    /// The virtual time of the next delivery, if anything is pending.
    pub fn next_time(&self) -> Option<u64> {
        self.pool.values().map(|p| self.ready_at(p)).min()
    }

    /// The message to deliver at `now_us` (the clock is at or past
    /// [`Adversary::next_time`]).
    pub fn pop(&mut self, now_us: u64) -> Option<Pending> {
        let (_, seq) = self
            .pool
            .values()
            .map(|p| (self.ready_at(p), p.seq))
            .filter(|&(at, _)| at <= now_us)
            .min()?;
        let mut pick = seq;
        let first = &self.pool[&seq];
        if let (true, Some(key)) = (self.decisive(&first.ty), first.key.clone()) {
            let (ty, dest) = (first.ty.clone(), first.dest);
            let slot = (key.clone(), ty.clone(), dest);
            if !self.heard.contains(&slot) {
                let fewest = self
                    .pool
                    .values()
                    .filter(|p| {
                        p.dest == dest
                            && p.ty == ty
                            && p.key.as_deref() == Some(key.as_str())
                            && p.sent_us.saturating_add(p.hop_us) <= now_us
                    })
                    .map(|p| {
                        let n = self.firsts.get(&(key.clone(), ty.clone(), p.src));
                        (n.copied().unwrap_or(0), p.seq)
                    })
                    .min();
                if let Some((_, s)) = fewest {
                    if s != seq {
                        self.counts.balanced += 1;
                    }
                    pick = s;
                }
                let src = self.pool[&pick].src;
                self.heard.insert(slot);
                *self.firsts.entry((key, ty, src)).or_default() += 1;
            }
        }
        let p = self.pool.remove(&pick)?;
        let wait = now_us.saturating_sub(p.sent_us.saturating_add(p.hop_us));
        if wait > 0 {
            self.counts.held += 1;
        }
        self.counts.max_wait_us = self.counts.max_wait_us.max(wait);
        self.counts.delivered += 1;
        Some(p)
    }

    /// Notes that delivering a message of type `ty` made its receiver report `report`s.
    pub fn observe<'a>(&mut self, ty: &str, reports: impl IntoIterator<Item = &'a Report>) {
        let progress = reports
            .into_iter()
            .any(|r| matches!(r, Report::Accepted { .. } | Report::Decided { .. }));
        if progress && !self.decisive(ty) {
            self.learned.insert(ty.to_string());
        }
    }

    /// Messages still pending.
    pub fn pending(&self) -> usize {
        self.pool.len()
    }

    /// For `metrics.json`.
    pub fn summary(&self) -> serde_json::Value {
        json!({
            "bound_us": BOUND_US,
            "hold": self.hold,
            "learned": self.learned,
            "counts": self.counts,
            "pending_at_end": self.pool.len(),
        })
    }
}

/// A body's `type` and `key` (as JSON text).
fn type_and_key(line: &str) -> (String, Option<String>) {
    let Ok(head) = EnvelopeHead::parse(line.as_bytes()) else {
        return (String::new(), None);
    };
    let ty = head.body_type().unwrap_or_default();
    #[derive(Deserialize)]
    struct Keyed<'a> {
        #[serde(borrow)]
        key: Option<&'a serde_json::value::RawValue>,
    }
    let key = serde_json::from_str::<Keyed>(head.body.get())
        .ok()
        .and_then(|k| k.key.map(|k| k.get().to_string()));
    (ty.to_string(), key)
}

/// How long each instance (a `key` of the reports and of client proposals) stayed
/// undecided, in steps, ballots and virtual time; kept under every scheduler.
#[derive(Debug, Default)]
pub struct InstanceProgress {
    by_key: BTreeMap<u64, Instance>,
}

#[derive(Debug, Clone, Copy)]
struct Instance {
    first_step: u64,
    first_us: u64,
    ballots: u32,
    decided: Option<(u64, u64)>,
}

impl InstanceProgress {
    const KEYS_MAX: usize = 1_000_000;

    fn entry(&mut self, key: u64, step: u64, now_us: u64) -> Option<&mut Instance> {
        if self.by_key.len() >= Self::KEYS_MAX && !self.by_key.contains_key(&key) {
            return None;
        }
        Some(self.by_key.entry(key).or_insert(Instance {
            first_step: step,
            first_us: now_us,
            ballots: 0,
            decided: None,
        }))
    }

    /// A client proposed for `key`.
    pub fn proposed(&mut self, key: u64, step: u64, now_us: u64) {
        self.entry(key, step, now_us);
    }

    /// A node reported `report` at `step`.
    pub fn report(&mut self, report: &Report, step: u64, now_us: u64) {
        let (key, ballot) = match report {
            Report::BallotStarted { key, .. } => (*key, true),
            Report::Decided { key, .. } => (*key, false),
            _ => return,
        };
        let Some(inst) = self.entry(key, step, now_us) else {
            return;
        };
        if inst.decided.is_none() {
            if ballot {
                inst.ballots += 1;
            } else {
                inst.decided = Some((step, now_us));
            }
        }
    }

    /// The instance undecided longest (in steps, then the lowest key), at the run's end
    /// (`steps`, `now_us`).
    pub fn longest(&self, steps: u64, now_us: u64) -> Option<Undecided> {
        self.by_key
            .iter()
            .map(|(&key, i)| {
                let (s, t) = i.decided.unwrap_or((steps, now_us));
                Undecided {
                    key,
                    steps: s.saturating_sub(i.first_step),
                    virtual_ms: t.saturating_sub(i.first_us) as f64 / 1e3,
                    ballots: i.ballots,
                    decided: i.decided.is_some(),
                }
            })
            .max_by_key(|u| (u.steps, std::cmp::Reverse(u.key)))
    }

    /// The summary for `metrics.json`, at the run's end (`steps`, `now_us`).
    pub fn summary(&self, steps: u64, now_us: u64) -> serde_json::Value {
        let decided = self.by_key.values().filter(|i| i.decided.is_some()).count();
        let ballots: Vec<u32> = self
            .by_key
            .values()
            .filter(|i| i.decided.is_some() && i.ballots > 0)
            .map(|i| i.ballots)
            .collect();
        let mean = if ballots.is_empty() {
            0.0
        } else {
            ballots.iter().map(|&b| b as f64).sum::<f64>() / ballots.len() as f64
        };
        json!({
            "count": self.by_key.len(),
            "decided": decided,
            "ballots_to_decide": {
                "mean": mean,
                "max": ballots.iter().max().copied().unwrap_or(0),
            },
            "longest_undecided": self.longest(steps, now_us),
        })
    }
}

/// How long one instance stayed undecided.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Undecided {
    /// The instance.
    pub key: u64,
    /// Steps from its first proposal or ballot to its first decision (or the run's end).
    pub steps: u64,
    /// The same span in virtual ms.
    pub virtual_ms: f64,
    /// Ballots started for it before it was decided.
    pub ballots: u32,
    /// Whether it was decided at last.
    pub decided: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(src: &str, dest: &str, ty: &str, key: u64) -> String {
        format!(r#"{{"src":"{src}","dest":"{dest}","body":{{"type":"{ty}","key":{key}}}}}"#)
    }

    #[test]
    fn schedulers_parse_and_print() {
        assert_eq!(Scheduler::parse("random").unwrap(), Scheduler::Random);
        let a = Scheduler::parse("adversary:accept, vote").unwrap();
        assert_eq!(
            a,
            Scheduler::Adversary {
                hold: Some(vec!["accept".into(), "vote".into()])
            }
        );
        assert_eq!(Scheduler::parse(&a.to_string()).unwrap(), a);
        for bad in ["", "adversary:", "fifo", "adversary:,"] {
            assert!(Scheduler::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decisive_messages_wait_the_bound_and_others_their_hop() {
        let mut a = Adversary::new(None, "paxos");
        a.push(0, 1, 0, line("n1", "n2", "accept", 1), 0, 100);
        a.push(0, 2, 0, line("n1", "n3", "prepare", 1), 0, 100);
        assert_eq!(a.next_time(), Some(100));
        assert_eq!(a.pop(100).unwrap().ty, "prepare");
        assert_eq!(a.next_time(), Some(100 + BOUND_US));
        assert!(a.pop(100).is_none());
        a.release();
        assert_eq!(a.next_time(), Some(100));
        let p = a.pop(200).unwrap();
        assert_eq!(p.ty, "accept");
        assert_eq!((a.counts.held, a.counts.delivered), (1, 2));
    }

    #[test]
    fn a_type_whose_delivery_reported_progress_is_held_from_then_on() {
        let mut a = Adversary::new(None, "some-node");
        a.push(0, 1, 0, line("n1", "n2", "propose", 1), 0, 100);
        assert_eq!(a.next_time(), Some(100));
        let decided = Report::Decided {
            key: 1,
            value: 1,
            rounds: None,
        };
        a.observe("propose", [&decided]);
        assert_eq!(a.next_time(), Some(100 + BOUND_US));
    }

    #[test]
    fn the_first_hearing_is_spread_over_senders() {
        // Three proposers' candidates to four undecided nodes: each sender is heard
        // first at no more than two of them.
        let mut a = Adversary::new(None, "majority-vote");
        for src in 0..3 {
            for dest in 3..7 {
                a.push(src, dest, 0, line("x", "y", "candidate", 5), 0, 100);
            }
        }
        let mut first = BTreeMap::new();
        while let Some(t) = a.next_time() {
            let p = a.pop(t).unwrap();
            first.entry(p.dest).or_insert(p.src);
        }
        let mut per_sender = [0; 3];
        for src in first.values() {
            per_sender[*src] += 1;
        }
        assert!(per_sender.iter().all(|&n| n <= 2), "{per_sender:?}");
        assert!(a.counts.balanced > 0);
    }
}
