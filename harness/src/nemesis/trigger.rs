//! Triggers: faults fired by the protocol messages the router sees.
//!
//! # Trigger language
//!
//! An event with an `on` field fires on a message instead of (or after) a time:
//!
//! ```json
//! { "id": 7, "on": { "msg_type": "accept", "nth": 3, "src": "n1" },
//!   "action": "kill", "node": "$src" }
//! ```
//!
//! - The router shows every envelope it routes to the trigger set, whatever its fate
//!   afterwards (delivered, dropped, held): node to node, client to node, node to
//!   client, node to harness.
//! - A message *matches* event `e` when all of these hold:
//!   1. its body `type` equals `on.msg_type` exactly (case-sensitive, no patterns);
//!   2. if `on.src` is given, its sender equals it; if `on.dest` is given, its
//!      receiver equals it;
//!   3. if the action names `$src`, the sender is a cluster node; if it names
//!      `$dest`, the receiver is a cluster node (so `kill $src` never aims at a client);
//!   4. if `e` also has `at_ms`, the message is seen at or after `at_ms` (the trigger
//!      is armed at `at_ms`; matches before it are not counted);
//!   5. `e` has not fired yet.
//! - Matches are counted per event, from 1. The match whose count equals `on.nth`
//!   (default 1) fires `e`; each event fires at most once. Events fired by the same
//!   message fire in schedule order.
//! - On firing, every `$src` in the action's node fields (`node`, the endpoints in
//!   `cut` and `links`) becomes the matched message's sender, and every `$dest` its
//!   receiver. `$src` / `$dest` are only allowed in events with `on`.
//! - An event whose trigger never matches `nth` times never fires; the run ends with a
//!   warning naming it (see [`Confirmations`](super::Confirmations)) and saying which
//!   of three things happened ([`TriggerSet::unfired_why`]): no message of its type was
//!   seen at all (a type the algorithm does not send, or a typo), messages of its type
//!   were seen but none passed its filters, or it matched fewer than `nth` times.
//! - A trigger whose `msg_type` is [`DRAWN_TYPE`] names no type until it is armed: the
//!   first node-to-node message seen once it is armed resolves it to one of the
//!   node-to-node types seen so far, that message's included — those its `src` sent, if
//!   it names one, so the type is one that node uses (at most [`SEEN_TYPES_MAX`] types
//!   per sender are remembered). The `pick` counts, modulo the messages seen, through
//!   the types in name order, each taking as many counts as it was sent: frequent types
//!   are likely, so the kill lands soon after arming. From
//!   then on it matches like any other, starting with that message. The run's own
//!   traffic decides the type, so a seed needs no knowledge of a node's message names,
//!   and in lockstep the same seed resolves it the same way.
//!
//! The router applies the fired actions before deciding the matched message's own
//! fate, so a partition fired by a message already cuts that message; process actions
//! go to the supervisor, which acts as soon as it can.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Schedule, Trigger, DRAWN_TYPE, TARGET_DEST, TARGET_SRC};

/// Node-to-node message types remembered for drawn triggers.
pub const SEEN_TYPES_MAX: usize = 64;

#[derive(Debug, Clone)]
struct Armed {
    id: u32,
    trigger: Trigger,
    armed_at_ms: Option<u64>,
    action: Action,
    needs_src_node: bool,
    needs_dest_node: bool,
    matches: u64,
    fired: bool,
}

/// The schedule's triggered events and their match counts.
#[derive(Debug, Clone, Default)]
pub struct TriggerSet {
    nodes: BTreeSet<String>,
    armed: Vec<Armed>,
    /// Per message type some trigger names: how many were seen, and the indices into
    /// `armed` of its triggers, in schedule order.
    by_type: BTreeMap<String, Candidates>,
    /// Indices into `armed` of drawn triggers not resolved yet, in schedule order.
    drawn: Vec<usize>,
    /// Node-to-node message types seen so far per sender, with how often each was sent
    /// (kept only while `drawn` is not empty).
    seen_types: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Default)]
struct Candidates {
    seen: u64,
    armed: Vec<usize>,
}

impl TriggerSet {
    /// The triggered events of a (validated) schedule.
    pub fn new(schedule: &Schedule) -> Self {
        let mut set = TriggerSet {
            nodes: schedule.nodes.iter().cloned().collect(),
            ..TriggerSet::default()
        };
        for event in &schedule.events {
            let Some(trigger) = &event.on else { continue };
            let names = event.action.nodes();
            if trigger.msg_type == DRAWN_TYPE {
                set.drawn.push(set.armed.len());
            } else {
                set.by_type
                    .entry(trigger.msg_type.clone())
                    .or_default()
                    .armed
                    .push(set.armed.len());
            }
            set.armed.push(Armed {
                id: event.id,
                trigger: trigger.clone(),
                armed_at_ms: event.at_ms,
                action: event.action.clone(),
                needs_src_node: names.contains(&TARGET_SRC),
                needs_dest_node: names.contains(&TARGET_DEST),
                matches: 0,
                fired: false,
            });
        }
        set
    }

    /// Whether there are no triggered events at all (the router may skip `observe`).
    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// Shows one routed message; returns the events it fires, with `$src` / `$dest`
    /// resolved, in schedule order. Allocates nothing when nothing fires.
    pub fn observe(
        &mut self,
        src: &str,
        dest: &str,
        msg_type: &str,
        now_ms: u64,
    ) -> Vec<(u32, Action)> {
        let mut fired = Vec::new();
        let (src_is_node, dest_is_node) = (self.nodes.contains(src), self.nodes.contains(dest));
        if !self.drawn.is_empty() && src_is_node && dest_is_node {
            self.resolve_drawn(src, msg_type, now_ms);
        }
        let Some(candidates) = self.by_type.get_mut(msg_type) else {
            return fired;
        };
        candidates.seen += 1;
        for &i in &candidates.armed {
            let a = &mut self.armed[i];
            let matches = !a.fired
                && accepts(a.trigger.src.as_deref(), src)
                && accepts(a.trigger.dest.as_deref(), dest)
                && (!a.needs_src_node || src_is_node)
                && (!a.needs_dest_node || dest_is_node)
                && is_armed(a.armed_at_ms, now_ms);
            if !matches {
                continue;
            }
            a.matches += 1;
            if a.matches == a.trigger.nth {
                a.fired = true;
                let mut action = a.action.clone();
                action.map_nodes(|node| {
                    if node == TARGET_SRC {
                        *node = src.to_string();
                    } else if node == TARGET_DEST {
                        *node = dest.to_string();
                    }
                });
                fired.push((a.id, action));
            }
        }
        fired
    }

    /// Notes a node-to-node message type and gives every armed drawn trigger its type:
    /// one its `src` has sent, when it names a sender, else one any node has sent. The
    /// pick is weighted by how often each type was sent, so the kill most likely waits
    /// for a message the node sends often and lands within its window.
    fn resolve_drawn(&mut self, src: &str, msg_type: &str, now_ms: u64) {
        let sent = self.seen_types.entry(src.to_string()).or_default();
        if let Some(n) = sent.get_mut(msg_type) {
            *n += 1;
        } else if sent.len() < SEEN_TYPES_MAX {
            sent.insert(msg_type.to_string(), 1);
        }
        let mut waiting = Vec::new();
        for i in std::mem::take(&mut self.drawn) {
            let a = &mut self.armed[i];
            let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
            let senders: Vec<&BTreeMap<String, u64>> = match &a.trigger.src {
                Some(from) => self.seen_types.get(from).into_iter().collect(),
                None => self.seen_types.values().collect(),
            };
            for (ty, n) in senders.into_iter().flatten() {
                *seen.entry(ty.as_str()).or_default() += n;
            }
            let total: u64 = seen.values().sum();
            if !is_armed(a.armed_at_ms, now_ms) || total == 0 {
                waiting.push(i);
                continue;
            }
            let mut pick = a.trigger.pick.unwrap_or(0) % total;
            let ty = seen
                .iter()
                .find(|(_, &n)| {
                    let here = pick < n;
                    pick = pick.saturating_sub(n);
                    here
                })
                .map(|(ty, _)| ty.to_string())
                .expect("pick < total");
            a.trigger.msg_type = ty.clone();
            let list = &mut self.by_type.entry(ty).or_default().armed;
            list.push(i);
            list.sort_unstable();
        }
        self.drawn = waiting;
        if self.drawn.is_empty() {
            self.seen_types = BTreeMap::new();
        }
    }

    /// Ids of triggered events that have not fired, in schedule order.
    pub fn unfired(&self) -> Vec<u32> {
        self.armed
            .iter()
            .filter(|a| !a.fired)
            .map(|a| a.id)
            .collect()
    }

    /// Why each triggered event has not fired (so far), in schedule order. The words
    /// name the trigger but not the event or its `nth`, so the events one trigger
    /// starves read alike and collapse into one warning.
    pub fn unfired_why(&self) -> Vec<(u32, String)> {
        self.armed
            .iter()
            .filter(|a| !a.fired)
            .map(|a| {
                let t = &a.trigger;
                let seen = self.by_type.get(&t.msg_type).map_or(0, |c| c.seen);
                let filter = t.filter_words(a.armed_at_ms);
                let why = if seen == 0 {
                    format!(
                        "its trigger never matched: no '{}' message was seen in the run at \
                         all (a message type the nodes never send?)",
                        t.msg_type
                    )
                } else if a.matches == 0 {
                    format!(
                        "its trigger never matched: {seen} '{}' messages were seen, none{}",
                        t.msg_type,
                        if filter.is_empty() {
                            " to or from a cluster node".to_string()
                        } else {
                            filter
                        }
                    )
                } else {
                    format!(
                        "its trigger ('{}'{filter}) matched only {} times before it was \
                         disarmed, short of the nth match it waits for",
                        t.msg_type, a.matches
                    )
                };
                (a.id, why)
            })
            .collect()
    }
}

/// An address filter: `None` accepts anything, `Some(x)` only `x`.
fn accepts(filter: Option<&str>, address: &str) -> bool {
    match filter {
        None => true,
        Some(want) => want == address,
    }
}

/// A trigger without `at_ms` is always armed; with it, from `at_ms` on.
fn is_armed(armed_at_ms: Option<u64>, now_ms: u64) -> bool {
    match armed_at_ms {
        None => true,
        Some(at_ms) => now_ms >= at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(events: &str) -> TriggerSet {
        let json = format!(
            r#"{{"nodes": ["n1", "n2", "n3"], "time_limit_ms": 10000, "events": {events}}}"#
        );
        TriggerSet::new(&Schedule::from_json(&json).expect("valid schedule"))
    }

    fn kill(node: &str) -> Action {
        Action::Kill {
            node: node.to_string(),
        }
    }

    #[test]
    fn fires_on_the_nth_match_once_with_src_resolved() {
        let mut t = set(
            r#"[{"id": 7, "on": {"msg_type": "accept", "nth": 3}, "action": "kill", "node": "$src"}]"#,
        );
        assert!(t.observe("n1", "n2", "accept", 0).is_empty());
        assert!(t.observe("n1", "n2", "prepare", 0).is_empty());
        assert!(t.observe("n2", "n3", "accept", 0).is_empty());
        assert_eq!(t.observe("n3", "n1", "accept", 0), vec![(7, kill("n3"))]);
        assert!(
            t.observe("n3", "n1", "accept", 0).is_empty(),
            "fires at most once"
        );
        assert!(t.unfired().is_empty());
    }

    #[test]
    fn unfired_triggers_say_whether_their_type_was_never_seen_or_matched_too_rarely() {
        let mut t = set(
            r#"[{"id": 1, "on": {"msg_type": "promis"}, "action": "kill", "node": "n1"},
                {"id": 2, "on": {"msg_type": "promise", "src": "n2", "nth": 5},
                 "action": "kill", "node": "n2"},
                {"id": 3, "on": {"msg_type": "promise", "src": "n2", "nth": 7},
                 "action": "kill", "node": "n2"},
                {"id": 4, "on": {"msg_type": "promise", "dest": "n9"},
                 "action": "kill", "node": "n3"}]"#,
        );
        for _ in 0..3 {
            t.observe("n2", "n1", "promise", 0);
        }
        let why = t.unfired_why();
        let ids: Vec<u32> = why.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![1, 2, 3, 4]);
        assert!(why[0].1.contains("no 'promis' message was seen"), "{why:?}");
        assert_eq!(
            why[1].1,
            "its trigger ('promise' from n2) matched only 3 times before it was disarmed, \
             short of the nth match it waits for"
        );
        assert_eq!(why[1].1, why[2].1, "events one trigger starves read alike");
        assert!(
            why[3]
                .1
                .contains("3 'promise' messages were seen, none to n9"),
            "{why:?}"
        );
    }

    #[test]
    fn filters_on_src_and_dest() {
        let mut t = set(
            r#"[{"id": 1, "on": {"msg_type": "accept", "src": "n2", "dest": "n3"},
                 "action": "pause", "node": "$dest"}]"#,
        );
        assert!(t.observe("n1", "n3", "accept", 0).is_empty());
        assert!(t.observe("n2", "n1", "accept", 0).is_empty());
        let want = Action::Pause { node: "n3".into() };
        assert_eq!(t.observe("n2", "n3", "accept", 0), vec![(1, want)]);
    }

    #[test]
    fn placeholders_only_match_nodes() {
        let mut t =
            set(r#"[{"id": 1, "on": {"msg_type": "write"}, "action": "kill", "node": "$src"}]"#);
        assert!(
            t.observe("c1", "n1", "write", 0).is_empty(),
            "a client is not killable"
        );
        assert_eq!(t.unfired(), vec![1]);
        assert_eq!(t.observe("n1", "n2", "write", 0), vec![(1, kill("n1"))]);
    }

    #[test]
    fn at_ms_arms_the_trigger() {
        let mut t = set(
            r#"[{"id": 1, "at_ms": 500, "on": {"msg_type": "accept"}, "action": "clog", "node": "$src"}]"#,
        );
        assert!(t.observe("n1", "n2", "accept", 499).is_empty());
        let want = Action::Clog { node: "n1".into() };
        assert_eq!(t.observe("n1", "n2", "accept", 500), vec![(1, want)]);
    }

    #[test]
    fn one_message_fires_several_events_in_schedule_order() {
        let mut t = set(
            r#"[{"id": 2, "on": {"msg_type": "accept"}, "action": "partition", "shape": "one-way",
                 "cut": [["$src", "$dest"]]},
                {"id": 1, "on": {"msg_type": "accept"}, "action": "kill", "node": "$dest"}]"#,
        );
        let fired = t.observe("n1", "n2", "accept", 0);
        let ids: Vec<u32> = fired.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![2, 1]);
        assert_eq!(fired[0].1.nodes(), ["n1", "n2"]);
        assert!(TriggerSet::new(
            &Schedule::from_json(r#"{"nodes": ["n1"], "time_limit_ms": 1, "events": []}"#)
                .expect("valid")
        )
        .is_empty());
    }

    #[test]
    fn a_drawn_trigger_takes_a_type_seen_by_the_time_it_is_armed() {
        let mut t = set(
            r#"[{"id": 3, "at_ms": 100, "on": {"msg_type": "$drawn", "pick": 5, "src": "n2"},
                 "action": "kill", "node": "n2"}]"#,
        );
        // Sent by n2 before arming: accept, prepare (clients' traffic and other
        // senders' types do not count).
        assert!(t.observe("n2", "n1", "prepare", 10).is_empty());
        assert!(t.observe("c1", "n2", "propose", 20).is_empty());
        assert!(t.observe("n3", "n1", "promise", 25).is_empty());
        assert!(t.observe("n2", "n1", "accept", 30).is_empty());
        // Armed at 100, resolved by the next node-to-node message: n2 sent accept once
        // and prepare once, and 5 mod 2 = 1 falls on prepare.
        assert!(t.observe("n3", "n1", "promise", 100).is_empty());
        assert!(t.observe("n2", "n1", "accept", 110).is_empty());
        let want = Action::Kill { node: "n2".into() };
        assert_eq!(t.observe("n2", "n3", "prepare", 120), vec![(3, want)]);
        assert!(t.unfired().is_empty());
    }
}
