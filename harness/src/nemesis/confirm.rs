//! Confirmation: every fault is counted, every event's outcome recorded, and a fault
//! that did not bite becomes a warning in the verdict, never silence.
//!
//! [`LinkCounters`] count the link table's decisions (the nemesis' view; the router
//! counts what it then delivered). [`ProcessCounters`] are filled by the supervisor.
//! [`Confirmations`] holds, per schedule event, whether and when it was applied and
//! the evidence that it took effect (a pid, a signal, the number of links cut, ...).
//!
//! Warnings are [`Warning`]s: a cause worded the same for every repeat, a count, and
//! the first few things it happened to. [`collapse`] merges repeats, so a plan that
//! arms 400 triggered events of which 300 never fire gives one warning with a count of
//! 300, not 300 lines that bury everything else.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use workloads::verdict::FaultSpan;

use super::{FaultKind, Schedule, TriggerSet};

/// Examples a collapsed [`Warning`] keeps.
pub const WARNING_EXAMPLES_MAX: usize = 3;

/// What a [`Warning`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// A fault the schedule asked for never took effect: the run did not test what it
    /// was asked to test.
    FaultNeverTookEffect,
    /// Anything else that may weaken the verdict (the configuration, say).
    Other,
}

/// One warning of `verdict.json`: a distinct cause, how many times it happened and
/// the first few things it happened to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// The cause, worded the same for every repeat.
    pub message: String,
    /// How many times it happened.
    pub count: u64,
    /// The first [`WARNING_EXAMPLES_MAX`] things it happened to, e.g.
    /// `event 84 (kill n2 on the 42nd promise from n2 to n3) at 5000 ms`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

impl Warning {
    /// A single warning about something other than a fault.
    pub fn other(message: impl Into<String>) -> Warning {
        Warning {
            kind: WarningKind::Other,
            message: message.into(),
            count: 1,
            examples: Vec::new(),
        }
    }

    /// A single "requested fault never took effect" warning.
    pub fn fault(message: impl Into<String>, example: Option<String>) -> Warning {
        Warning {
            kind: WarningKind::FaultNeverTookEffect,
            message: message.into(),
            count: 1,
            examples: example.into_iter().collect(),
        }
    }

    /// Whether it says a requested fault never took effect.
    pub fn is_fault(&self) -> bool {
        self.kind == WarningKind::FaultNeverTookEffect
    }
}

/// Merges warnings with the same kind and message, in order of first appearance:
/// counts add up, examples are kept up to [`WARNING_EXAMPLES_MAX`].
pub fn collapse(warnings: Vec<Warning>) -> Vec<Warning> {
    let mut out: Vec<Warning> = Vec::new();
    let mut index: BTreeMap<(bool, String), usize> = BTreeMap::new();
    for w in warnings {
        match index.get(&(w.is_fault(), w.message.clone())) {
            Some(&i) => {
                let into = &mut out[i];
                into.count += w.count;
                let room = WARNING_EXAMPLES_MAX.saturating_sub(into.examples.len());
                into.examples.extend(w.examples.into_iter().take(room));
            }
            None => {
                index.insert((w.is_fault(), w.message.clone()), out.len());
                let mut w = w;
                w.examples.truncate(WARNING_EXAMPLES_MAX);
                out.push(w);
            }
        }
    }
    out
}

/// Decisions on one directed link, for `metrics.json`'s `faults` section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCounters {
    /// Messages delivered (once or twice).
    pub delivered: u64,
    /// Messages dropped by a drop fault.
    pub dropped: u64,
    /// Messages dropped by a cut partition.
    pub cut: u64,
    /// Copies given a delay > 0 by a delay fault.
    pub delayed: u64,
    /// Extra copies made by a duplicate fault.
    pub duplicated: u64,
    /// Copies allowed to overtake earlier messages (`fifo: false`).
    pub reordered: u64,
    /// Messages held by a hold partition or a clog.
    pub held: u64,
}

impl LinkCounters {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &LinkCounters) {
        self.delivered += other.delivered;
        self.dropped += other.dropped;
        self.cut += other.cut;
        self.delayed += other.delayed;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.held += other.held;
    }
}

/// Per-link counters keyed `"n1->n2"` plus their per-kind total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounters {
    /// Links that saw at least one message.
    pub links: BTreeMap<String, LinkCounters>,
    /// Sum over all links.
    pub total: LinkCounters,
}

/// Process faults that took effect, summed over nodes (filled by the supervisor).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessCounters {
    /// SIGKILLs delivered.
    pub kills: u64,
    /// Restarts after a kill.
    pub restarts: u64,
    /// SIGSTOPs delivered.
    pub pauses: u64,
    /// SIGCONTs delivered.
    pub resumes: u64,
}

/// Warnings for requested fault kinds that never took effect (their counter is zero).
///
/// `partition` counts as having bitten if any message was cut or held; `clog` if any
/// message was held.
pub fn warnings(
    kinds: &BTreeSet<FaultKind>,
    counters: &FaultCounters,
    process: &ProcessCounters,
) -> Vec<Warning> {
    let t = &counters.total;
    let mut out = Vec::new();
    for &kind in kinds {
        let (count, evidence) = match kind {
            FaultKind::Partition => (t.cut + t.held, "message was cut or held by a partition"),
            FaultKind::Kill | FaultKind::Crash | FaultKind::KillOnSend => {
                (process.kills, "SIGKILL was delivered")
            }
            FaultKind::Pause => (process.pauses, "SIGSTOP was delivered"),
            FaultKind::Drop => (t.dropped, "message was dropped"),
            FaultKind::Delay => (t.delayed, "message was delayed"),
            FaultKind::Duplicate => (t.duplicated, "message was duplicated"),
            FaultKind::Reorder => (t.reordered, "message was reordered"),
            FaultKind::Clog => (t.held, "message was held by a clog"),
        };
        if count == 0 {
            out.push(Warning::fault(
                format!("fault kind '{kind}' was requested but never took effect: no {evidence}"),
                None,
            ));
        }
    }
    out
}

/// What happened to one schedule event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The event's id.
    pub id: u32,
    /// The event, for humans (`"kill n2 at 1500 ms"`).
    pub what: String,
    /// Whether it was carried out and took effect.
    pub applied: bool,
    /// When it was carried out (or found impossible), in ms since the run started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at_ms: Option<u64>,
    /// What shows that it took effect, or why it did not, in the order recorded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Value>,
}

/// One [`Confirmation`] per schedule event, in schedule order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Confirmations {
    /// The records.
    pub events: Vec<Confirmation>,
    #[serde(skip)]
    by_id: BTreeMap<u32, usize>,
}

impl Confirmations {
    /// An unapplied record for every event of `schedule`.
    pub fn new(schedule: &Schedule) -> Self {
        let events: Vec<Confirmation> = schedule
            .events
            .iter()
            .map(|e| Confirmation {
                id: e.id,
                what: e.describe(),
                applied: false,
                applied_at_ms: None,
                evidence: Vec::new(),
            })
            .collect();
        let by_id = events.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        Confirmations { events, by_id }
    }

    /// Records that event `id` was carried out at `now_ms`, with its evidence.
    pub fn applied(&mut self, id: u32, now_ms: u64, evidence: impl Into<Value>) {
        if let Some(c) = self.get_mut(id) {
            c.applied = true;
            c.applied_at_ms = Some(now_ms);
            c.evidence.push(evidence.into());
        }
    }

    /// Records that event `id` could not take effect at `now_ms` (e.g. the node to
    /// kill was already dead), and why.
    pub fn not_applied(&mut self, id: u32, now_ms: u64, reason: impl Into<String>) {
        if let Some(c) = self.get_mut(id) {
            c.applied = false;
            c.applied_at_ms = Some(now_ms);
            c.evidence.push(Value::String(reason.into()));
        }
    }

    /// Adds evidence that arrived later (the process was seen dead, say).
    pub fn add_evidence(&mut self, id: u32, evidence: impl Into<Value>) {
        if let Some(c) = self.get_mut(id) {
            c.evidence.push(evidence.into());
        }
    }

    /// The record of event `id`.
    pub fn get(&self, id: u32) -> Option<&Confirmation> {
        self.by_id.get(&id).map(|&i| &self.events[i])
    }

    /// Records why each triggered event that has not fired never did (see
    /// [`TriggerSet::unfired_why`]), at `now_ms`: when the triggers are disarmed.
    pub fn note_unfired(&mut self, triggers: &TriggerSet, now_ms: u64) {
        for (id, why) in triggers.unfired_why() {
            if self.get(id).is_some_and(|c| c.applied_at_ms.is_none()) {
                self.not_applied(id, now_ms, why);
            }
        }
    }

    /// A warning per event that never took effect — never reached (a trigger that did
    /// not fire, a run that ended early) or found impossible — collapsed: events that
    /// failed for the same reason make one warning with a count.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut out = Vec::new();
        for c in self.events.iter().filter(|c| !c.applied) {
            let (why, at) = match (c.applied_at_ms, c.evidence.last()) {
                (None, _) => ("it was never reached".to_string(), None),
                (Some(at), Some(Value::String(reason))) => (reason.clone(), Some(at)),
                (Some(at), _) => ("it did not take effect".to_string(), Some(at)),
            };
            let example = match at {
                Some(at) => format!("event {} ({}) at {at} ms", c.id, c.what),
                None => format!("event {} ({})", c.id, c.what),
            };
            out.push(Warning::fault(
                format!("schedule event not applied: {why}"),
                Some(example),
            ));
        }
        collapse(out)
    }

    fn get_mut(&mut self, id: u32) -> Option<&mut Confirmation> {
        let i = *self.by_id.get(&id)?;
        Some(&mut self.events[i])
    }
}

/// What `metrics.json` gets under `faults`.
#[derive(Debug, Clone, Serialize)]
pub struct FaultReport {
    /// Kinds asked for (`--nemesis`, or the kinds a `--schedule` file uses).
    pub requested: Vec<FaultKind>,
    /// The nemesis' decisions per link and their total.
    #[serde(flatten)]
    pub links: FaultCounters,
    /// Process faults per node that took effect (lockstep counts only the total).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub processes: BTreeMap<String, ProcessCounters>,
    /// Process faults summed over nodes.
    pub process_total: ProcessCounters,
    /// Each schedule event: applied or not, when, and its evidence.
    pub events: Confirmations,
    /// When each fault was active.
    pub spans: Vec<FaultSpan>,
}

#[cfg(test)]
mod tests {
    use super::super::{Action, ScheduleEvent};
    use super::*;

    fn schedule() -> Schedule {
        let event = |id, at_ms, action| ScheduleEvent {
            id,
            at_ms: Some(at_ms),
            on: None,
            action,
        };
        Schedule {
            seed: 1,
            nodes: vec!["n1".into(), "n2".into(), "n3".into()],
            time_limit_ms: 10_000,
            recovery_ms: 1_000,
            events: vec![
                event(1, 1_000, Action::Kill { node: "n2".into() }),
                event(
                    2,
                    2_000,
                    Action::Restart {
                        node: "n2".into(),
                        amnesia: false,
                    },
                ),
                event(3, 10_000, Action::HealAll {}),
            ],
        }
    }

    #[test]
    fn zero_counters_warn_per_requested_kind() {
        let kinds = BTreeSet::from([FaultKind::Kill, FaultKind::Drop, FaultKind::Clog]);
        let mut counters = FaultCounters::default();
        counters.total.held = 3;
        let process = ProcessCounters {
            kills: 0,
            ..ProcessCounters::default()
        };
        let w = warnings(&kinds, &counters, &process);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].message.contains("'kill'") && w[1].message.contains("'drop'"),
            "{w:?}"
        );
        assert!(w.iter().all(Warning::is_fault), "{w:?}");
        let process = ProcessCounters {
            kills: 1,
            ..process
        };
        counters.total.dropped = 1;
        assert!(warnings(&kinds, &counters, &process).is_empty());
    }

    #[test]
    fn unapplied_events_warn_with_their_reason() {
        let mut c = Confirmations::new(&schedule());
        c.applied(1, 1_003, serde_json::json!({"pid": 4242}));
        c.not_applied(2, 2_001, "n2 was already running");
        let w = c.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert_eq!(
            w[0],
            Warning::fault(
                "schedule event not applied: n2 was already running",
                Some("event 2 (restart n2 at 2000 ms) at 2001 ms".into())
            )
        );
        assert_eq!(
            w[1].message,
            "schedule event not applied: it was never reached"
        );
        assert_eq!(w[1].examples, ["event 3 (heal_all at 10000 ms)"]);
        let json = serde_json::to_string(c.get(1).expect("event 1")).expect("serialises");
        assert_eq!(
            json,
            r#"{"id":1,"what":"kill n2 at 1000 ms","applied":true,"applied_at_ms":1003,"evidence":[{"pid":4242}]}"#
        );
    }

    #[test]
    fn events_starved_by_one_trigger_collapse_into_one_warning_with_a_count() {
        let mut events = vec![ScheduleEvent {
            id: 1,
            at_ms: Some(0),
            on: None,
            action: Action::Kill { node: "n1".into() },
        }];
        for k in 0..300u32 {
            let on = super::super::Trigger {
                msg_type: "promise".into(),
                nth: 1 + u64::from(k),
                src: Some("n2".into()),
                dest: Some("n3".into()),
                pick: None,
            };
            events.push(ScheduleEvent {
                id: 2 + k,
                at_ms: None,
                on: Some(on),
                action: Action::Kill { node: "n2".into() },
            });
        }
        let schedule = Schedule {
            events,
            ..schedule()
        };
        let mut triggers = TriggerSet::new(&schedule);
        for _ in 0..4 {
            triggers.observe("n2", "n3", "promise", 10);
        }
        let mut c = Confirmations::new(&schedule);
        c.applied(1, 0, "killed");
        for id in 2..=5 {
            c.applied(id, 10, "killed");
        }
        c.note_unfired(&triggers, 5_000);
        let w = c.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].count, 296);
        assert!(w[0].is_fault());
        assert_eq!(
            w[0].message,
            "schedule event not applied: its trigger ('promise' from n2 to n3) matched only \
             4 times before it was disarmed, short of the nth match it waits for"
        );
        assert_eq!(w[0].examples.len(), WARNING_EXAMPLES_MAX);
        assert_eq!(
            w[0].examples[0],
            "event 6 (kill n2 on the 5th promise from n2 to n3) at 5000 ms"
        );
        let json = serde_json::to_value(&w[0]).expect("serialises");
        assert_eq!(json["kind"], "fault_never_took_effect");
        assert_eq!(json["count"], 296);
    }

    #[test]
    fn collapse_keeps_order_and_distinct_causes_apart() {
        let w = collapse(vec![
            Warning::other("a"),
            Warning::fault("b", Some("x".into())),
            Warning::other("a"),
            Warning::fault("a", None),
        ]);
        let got: Vec<(&str, u64, bool)> = w
            .iter()
            .map(|w| (w.message.as_str(), w.count, w.is_fault()))
            .collect();
        assert_eq!(got, [("a", 2, false), ("b", 1, true), ("a", 1, true)]);
    }
}
