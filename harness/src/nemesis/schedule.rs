//! The fault schedule and its file, `schedule.json`.
//!
//! # Format
//!
//! A schedule is one JSON object. [`expand`](super::expand()) writes it in full before a
//! run starts; a user can edit it, or write one, and pass it back with `--schedule`.
//!
//! ```json
//! {
//!   "seed": 42,
//!   "nodes": ["n1", "n2", "n3"],
//!   "time_limit_ms": 5000,
//!   "recovery_ms": 2000,
//!   "events": [
//!     {
//!       "id": 1,
//!       "at_ms": 1000,
//!       "action": "partition",
//!       "shape": "isolate n1",
//!       "cut": [
//!         ["n1", "n2"], ["n1", "n3"], ["n2", "n1"], ["n3", "n1"]
//!       ],
//!       "mode": "cut"
//!     },
//!     { "id": 2, "at_ms": 3000, "action": "heal_partition" },
//!     {
//!       "id": 3,
//!       "on": { "msg_type": "accept", "nth": 3, "src": "n2" },
//!       "action": "kill",
//!       "node": "$src"
//!     },
//!     { "id": 4, "at_ms": 5000, "action": "heal_all" }
//!   ]
//! }
//! ```
//!
//! Header fields: `seed` seeds the link faults' random draws (default 0); `nodes` are
//! the cluster's node ids in order; `time_limit_ms` is the length of the faulty part of
//! the run, and no event may be timed after it; `recovery_ms` (default 0) is the quiet
//! window after it, in which the harness heals everything, restarts every killed node
//! and then expects operations to complete.
//!
//! Every event has a unique `id` (a number, used in confirmations and warnings), an
//! `action` and the action's fields, and a time: `at_ms` (milliseconds since the start
//! of the run), or a trigger `on` (see [`TriggerSet`](super::TriggerSet)), or both (the
//! trigger counts only messages seen at or after `at_ms`). Events with the same
//! `at_ms` run in file order. Actions:
//!
//! | action | fields | effect |
//! | --- | --- | --- |
//! | `partition` | `cut`: `[[src, dest], ...]`, `mode`: `"cut"` (default) or `"hold"`, `shape`: a label | the listed directed links drop (`cut`) or queue (`hold`) their messages; replaces any active partition; one-way cuts are just unpaired links |
//! | `heal_partition` | | lifts the partition; held messages are delivered in order |
//! | `kill` | `node` | SIGKILL |
//! | `crash` | `node` | SIGKILL for good (crash-stop): never restarted, not even by the final heal |
//! | `restart` | `node`, `amnesia` (default false) | starts a killed node again, wiping its data dir if `amnesia` |
//! | `pause` / `resume` | `node` | SIGSTOP / SIGCONT |
//! | `link_faults` | `links`: `"all"` or `[[src, dest], ...]`; `drop`, `duplicate`, `reorder`: probabilities (default 0); `delay`: `{"dist": "constant" \| "uniform" \| "exponential", "base_ms": 5, "jitter_ms": 20}` (optional); `msg_types`: `["accept", ...]` (optional: only these message types are affected) | message faults on those links, replacing the ones they had |
//! | `clear_link_faults` | | removes message faults from every link |
//! | `clog` / `unclog` | `node` | every message between the node and other nodes is held / released |
//! | `heal_all` | | all of the above lifted, killed nodes restarted, paused nodes resumed |
//!
//! Only links between two nodes are faulted; client traffic never is. A cut link
//! drops even if it is also clogged. [`Schedule::from_json`] rejects, naming the event
//! by index, id and line: unknown actions or fields, unknown nodes, times past
//! `time_limit_ms`, probabilities outside `[0, 1]`, a `resume` of a node that is not
//! paused, a `restart` of a node that is not down, an `unclog` of a node that is not
//! clogged, and the rest listed in [`Problem`].

use std::collections::BTreeSet;

use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{
    pretty, Action, FaultKind, LinkSet, Problem, ScheduleError, EVENTS_MAX, SCHEDULE_BYTES_MAX,
};

/// In an event with a trigger, stands for the sender of the matching message.
pub const TARGET_SRC: &str = "$src";
/// In an event with a trigger, stands for the receiver of the matching message.
pub const TARGET_DEST: &str = "$dest";
/// As a trigger's `msg_type`: a type drawn when the trigger is armed, the `pick`-th
/// (modulo) in name order of the node-to-node types seen in the run so far.
pub const DRAWN_TYPE: &str = "$drawn";

/// A whole fault plan, as written to `schedule.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    /// Seeds the link faults' random draws.
    pub seed: u64,
    /// The cluster's nodes, in order.
    pub nodes: Vec<String>,
    /// Length of the faulty part of the run; no event is timed after it.
    pub time_limit_ms: u64,
    /// Quiet window after `time_limit_ms`, everything healed.
    pub recovery_ms: u64,
    /// The events, in order of `at_ms` (file order breaks ties).
    pub events: Vec<ScheduleEvent>,
}

/// One event: when (`at_ms` and/or `on`) and what (`action`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleEvent {
    /// Unique within the schedule.
    pub id: u32,
    /// Milliseconds since the run started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// The protocol event that fires it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on: Option<Trigger>,
    /// What to do; its fields sit next to `id` in JSON.
    #[serde(flatten)]
    pub action: Action,
}

/// "On the `nth` message of type `msg_type` (from `src`, to `dest`)": see
/// [`TriggerSet`](super::TriggerSet) for the exact rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// The body `type` to match, exactly.
    pub msg_type: String,
    /// Which match fires (1 = the first; default 1).
    #[serde(default = "first")]
    pub nth: u64,
    /// Only messages from this sender count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// Only messages to this receiver count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
    /// With `msg_type` [`DRAWN_TYPE`]: which of the types seen so far (modulo their
    /// number, in name order) the trigger matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pick: Option<u64>,
}

fn first() -> u64 {
    1
}

impl Trigger {
    /// The trigger's filters in words, each with a leading space (`" from n1 after 500
    /// ms"`): its sender, its receiver, and `armed_at_ms`, when it was armed. Empty when
    /// it has none.
    pub fn filter_words(&self, armed_at_ms: Option<u64>) -> String {
        let mut out = String::new();
        if let Some(src) = &self.src {
            out.push_str(&format!(" from {src}"));
        }
        if let Some(dest) = &self.dest {
            out.push_str(&format!(" to {dest}"));
        }
        if let Some(at) = armed_at_ms {
            out.push_str(&format!(" after {at} ms"));
        }
        out
    }
}

impl<'de> Deserialize<'de> for ScheduleEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut map = Map::<String, Value>::deserialize(d)?;
        let id = take(&mut map, "id")?.ok_or_else(|| de::Error::missing_field("id"))?;
        let at_ms = take(&mut map, "at_ms")?;
        let on = take(&mut map, "on")?;
        let action = Action::deserialize(Value::Object(map)).map_err(de::Error::custom)?;
        Ok(ScheduleEvent {
            id,
            at_ms,
            on,
            action,
        })
    }
}

fn take<T: DeserializeOwned, E: de::Error>(
    map: &mut Map<String, Value>,
    key: &str,
) -> Result<Option<T>, E> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => T::deserialize(v)
            .map(Some)
            .map_err(|e| E::custom(format_args!("field `{key}`: {e}"))),
    }
}

/// The file as first read: the events stay raw so each one's errors can name it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule<'a> {
    #[serde(default)]
    seed: u64,
    nodes: Vec<String>,
    time_limit_ms: u64,
    #[serde(default)]
    recovery_ms: u64,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

impl Schedule {
    /// Parses and [validates](Schedule::validate) a schedule file. Linear in the text
    /// but for sorting the timed events: a text over [`SCHEDULE_BYTES_MAX`] or with more
    /// than [`EVENTS_MAX`] events is refused before any event is parsed.
    pub fn from_json(text: &str) -> Result<Schedule, ScheduleError> {
        if text.len() > SCHEDULE_BYTES_MAX {
            return Err(ScheduleError::Syntax(format!(
                "{} bytes; a schedule has at most {SCHEDULE_BYTES_MAX}",
                text.len()
            )));
        }
        let raw: RawSchedule<'_> =
            serde_json::from_str(text).map_err(|e| ScheduleError::Syntax(e.to_string()))?;
        if raw.events.len() > EVENTS_MAX {
            return Err(ScheduleError::Header(Problem::TooManyEvents {
                count: raw.events.len(),
            }));
        }
        let mut events = Vec::with_capacity(raw.events.len());
        for (index, event) in raw.events.iter().enumerate() {
            let parsed = serde_json::from_str::<ScheduleEvent>(event.get()).map_err(|e| {
                // Counted only for the event that is reported: counting for every event
                // made validation quadratic in the file's size.
                let line = line_of(text, event.get());
                let id = serde_json::from_str::<Value>(event.get())
                    .ok()
                    .and_then(|v| v.get("id")?.as_u64())
                    .and_then(|id| u32::try_from(id).ok());
                let problem = Problem::Malformed(e.to_string());
                ScheduleError::Event {
                    index,
                    id,
                    line,
                    problem,
                }
            })?;
            events.push(parsed);
        }
        let schedule = Schedule {
            seed: raw.seed,
            nodes: raw.nodes,
            time_limit_ms: raw.time_limit_ms,
            recovery_ms: raw.recovery_ms,
            events,
        };
        schedule
            .validate()
            .map_err(|e| e.with_line(|i| line_of(text, raw.events[i].get())))?;
        Ok(schedule)
    }

    /// The file's text: pretty JSON in field order, links on one line each; the same
    /// schedule always gives the same bytes.
    pub fn to_json(&self) -> String {
        pretty::to_string(self)
    }

    /// Events that fire at their `at_ms` (no trigger), in firing order.
    pub fn timed_events(&self) -> Vec<&ScheduleEvent> {
        let mut timed: Vec<&ScheduleEvent> = self
            .events
            .iter()
            .filter(|e| e.on.is_none() && e.at_ms.is_some())
            .collect();
        timed.sort_by_key(|e| e.at_ms);
        timed
    }

    /// The fault kinds the schedule's events start.
    pub fn kinds(&self) -> BTreeSet<FaultKind> {
        self.events
            .iter()
            .flat_map(|e| match (&e.on, &e.action) {
                (Some(t), Action::Kill { .. }) if t.msg_type == DRAWN_TYPE => {
                    vec![FaultKind::KillOnSend]
                }
                _ => e.action.fault_kinds(),
            })
            .collect()
    }
}

/// The 1-based line of `part` within `text`, if `part` is a slice of it.
fn line_of(text: &str, part: &str) -> Option<usize> {
    let offset = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let before = text.get(..offset)?;
    Some(before.bytes().filter(|&b| b == b'\n').count() + 1)
}

impl ScheduleEvent {
    /// A one-line description: `"kill $src on the 3rd accept from n2"`.
    pub fn describe(&self) -> String {
        let mut out = describe_action(&self.action);
        if let Some(t) = &self.on {
            out.push_str(&format!(" on the {} {}", ordinal(t.nth), t.msg_type));
            out.push_str(&t.filter_words(self.at_ms));
        } else if let Some(at) = self.at_ms {
            out.push_str(&format!(" at {at} ms"));
        }
        out
    }
}

fn describe_action(action: &Action) -> String {
    match action {
        Action::Partition { shape, cut, mode } => {
            let label = if shape.is_empty() {
                String::new()
            } else {
                format!(" {shape}")
            };
            let mode = serde_json::to_value(mode).expect("a mode serialises");
            format!(
                "partition{label} ({} links, {})",
                cut.len(),
                mode.as_str().unwrap_or("?")
            )
        }
        Action::Kill { node }
        | Action::Crash { node }
        | Action::Pause { node }
        | Action::Resume { node }
        | Action::Clog { node }
        | Action::Unclog { node } => format!("{} {node}", action.name()),
        Action::Restart {
            node,
            amnesia: true,
        } => format!("restart {node} with amnesia"),
        Action::Restart {
            node,
            amnesia: false,
        } => format!("restart {node}"),
        Action::LinkFaults { .. } => {
            let (links, f) = action.link_faults().expect("a link_faults action");
            let mut parts = Vec::new();
            if f.drop > 0.0 {
                parts.push(format!("drop {}", f.drop));
            }
            if let Some(d) = f.delay {
                let dist = serde_json::to_value(d.dist).expect("a distribution serialises");
                let dist = dist.as_str().unwrap_or("?").to_string();
                parts.push(format!("delay {dist} {}+{} ms", d.base_ms, d.jitter_ms));
            }
            for (name, p) in [("duplicate", f.duplicate), ("reorder", f.reorder)] {
                if p > 0.0 {
                    parts.push(format!("{name} {p}"));
                }
            }
            let on = match links {
                LinkSet::All => "all links".to_string(),
                LinkSet::Only(l) => format!("{} links", l.len()),
            };
            let only = f.msg_types.as_ref().map_or(String::new(), |t| {
                format!(" for {}", t.iter().cloned().collect::<Vec<_>>().join(","))
            });
            format!("link_faults on {on}{only}: {}", parts.join(", "))
        }
        Action::HealPartition {} | Action::ClearLinkFaults {} | Action::HealAll {} => {
            action.name().to_string()
        }
    }
}

fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::super::{NetAction, PartitionMode};
    use super::*;

    const ISOLATE_N1: &str = r#"{
  "seed": 42,
  "nodes": ["n1", "n2", "n3"],
  "time_limit_ms": 5000,
  "recovery_ms": 2000,
  "events": [
    {
      "id": 1,
      "at_ms": 1000,
      "action": "partition",
      "shape": "isolate n1",
      "cut": [
        ["n1", "n2"],
        ["n1", "n3"],
        ["n2", "n1"],
        ["n3", "n1"]
      ],
      "mode": "cut"
    },
    {
      "id": 2,
      "at_ms": 3000,
      "action": "heal_partition"
    }
  ]
}
"#;

    fn link(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    /// Parses `events` inside a three-node, 5-second header and expects `want` in the error.
    fn reject(events: &str, want: &str) {
        let json = format!(
            "{{\"nodes\": [\"n1\", \"n2\", \"n3\"], \"time_limit_ms\": 5000,\n\"events\": [\n{events}\n]}}"
        );
        let err = Schedule::from_json(&json).expect_err(want).to_string();
        assert!(err.contains(want), "want {want:?} in:\n{err}");
    }

    #[test]
    fn hand_written_isolate_then_heal_parses_validates_and_prints_back() {
        let s = Schedule::from_json(ISOLATE_N1).expect("valid plan");
        assert_eq!((s.seed, s.time_limit_ms, s.recovery_ms), (42, 5000, 2000));
        let timed: Vec<u32> = s.timed_events().iter().map(|e| e.id).collect();
        assert_eq!(timed, [1, 2]);
        let cut = vec![
            link("n1", "n2"),
            link("n1", "n3"),
            link("n2", "n1"),
            link("n3", "n1"),
        ];
        let want = NetAction::Partition {
            cut,
            mode: PartitionMode::Cut,
        };
        assert_eq!(s.events[0].action.net(), Some(want));
        assert_eq!(s.events[1].action.net(), Some(NetAction::HealPartition));
        assert_eq!(s.kinds(), BTreeSet::from([FaultKind::Partition]));
        assert_eq!(
            s.to_json(),
            ISOLATE_N1,
            "the file layout is the documented one"
        );
        assert_eq!(
            s.events[0].describe(),
            "partition isolate n1 (4 links, cut) at 1000 ms"
        );
    }

    #[test]
    fn omitted_fields_take_their_defaults() {
        let s = Schedule::from_json(
            r#"{"nodes": ["n1", "n2"], "time_limit_ms": 10,
                "events": [{"id": 5, "on": {"msg_type": "accept"}, "action": "kill", "node": "$dest"}]}"#,
        )
        .expect("valid");
        assert_eq!((s.seed, s.recovery_ms), (0, 0));
        assert_eq!(s.events[0].on.as_ref().map(|t| t.nth), Some(1));
        assert!(s.timed_events().is_empty());
        assert_eq!(s.events[0].describe(), "kill $dest on the 1st accept");
    }

    #[test]
    fn invalid_events_are_named_by_index_id_and_line() {
        reject(
            r#"{"id": 1, "at_ms": 10, "action": "kill", "node": "n1"},
               {"id": 2, "at_ms": 20, "action": "kill", "node": "n9"}"#,
            "events[1] (id 2, line 4): unknown node 'n9'",
        );
        reject(
            r#"{"id": 3, "at_ms": 9000, "action": "heal_all"}"#,
            "events[0] (id 3, line 3): at_ms = 9000 is past time_limit_ms = 5000",
        );
        reject(
            r#"{"id": 1, "at_ms": 10, "action": "pause", "node": "n2"},
               {"id": 2, "at_ms": 20, "action": "resume", "node": "n2"},
               {"id": 3, "at_ms": 30, "action": "resume", "node": "n2"}"#,
            "events[2] (id 3, line 5): resume of 'n2', which is not paused at 30 ms",
        );
        reject(
            r#"{"id": 4, "at_ms": 10, "action": "link_faults", "links": "all", "drop": 1.5}"#,
            "events[0] (id 4, line 3): drop = 1.5 is not a probability in [0, 1]",
        );
        reject(
            r#"{"id": 1, "at_ms": 10, "action": "kil", "node": "n1"}"#,
            "events[0] (id 1, line 3): unknown variant `kil`, expected one of `partition`",
        );
        reject(
            r#"{"at_ms": 10, "action": "heal_all"}"#,
            "events[0] (no id, line 3): missing field `id`",
        );
        reject(
            r#"{"id": 1, "at_ms": 10, "action": "heal_all"}, {"id": 1, "at_ms": 10, "action": "heal_all"}"#,
            "events[1] (id 1, line 3): id 1 is used by an earlier event",
        );
        reject(
            r#"{"id": 1, "at_ms": 10, "action": "restart", "node": "n1"}"#,
            "restart of 'n1', which is not down at 10 ms",
        );
        reject(
            r#"{"id": 1, "at_ms": 10, "action": "kill", "node": "$src"}"#,
            "'$src' only has a meaning in an event with a trigger",
        );
        reject(
            r#"{"id": 1, "action": "heal_all"}"#,
            "neither `at_ms` nor `on`",
        );
        reject(
            r#"{"id": 1, "at_ms": 1, "action": "partition", "cut": [["n1", "n1"]]}"#,
            "link from 'n1' to itself",
        );
        reject(
            r#"{"id": 1, "on": {"msg_type": "accept", "nth": 0}, "action": "heal_all"}"#,
            "trigger: nth counts from 1",
        );
        reject(
            r#"{"id": 1, "on": {"msg_type": "accept", "n": 2}, "action": "heal_all"}"#,
            "field `on`: unknown field `n`",
        );
    }

    #[test]
    fn invalid_headers_are_rejected() {
        let err = |json: &str| Schedule::from_json(json).expect_err(json).to_string();
        let e = err(r#"{"nodes": ["n1"], "time_limit": 5, "events": []}"#);
        assert!(
            e.contains("unknown field `time_limit`") && e.contains("line 1"),
            "{e}"
        );
        let e = err(r#"{"nodes": [], "time_limit_ms": 5, "events": []}"#);
        assert_eq!(e, "schedule: no nodes");
        let e = err(r#"{"nodes": ["n1", "n1"], "time_limit_ms": 5, "events": []}"#);
        assert!(e.contains("'n1' is empty, repeated"), "{e}");
        let e = err(r#"{"nodes": ["n1"], "time_limit_ms": 0, "events": []}"#);
        assert!(e.contains("time_limit_ms = 0 is outside"), "{e}");
        let e = err("{not json");
        assert!(
            e.starts_with("schedule: key must be a string at line 1"),
            "{e}"
        );
    }

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 102, 111].map(ordinal).into();
        assert_eq!(
            got,
            ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "102nd", "111th"]
        );
    }
}
