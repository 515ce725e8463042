//! Validation of a schedule, before a run starts: an invalid plan is a usage error
//! (exit 254), never a half-run.
//!
//! Besides field checks, validation replays the timed events in firing order against
//! a model of each node (up, down, paused, clogged) so that a `resume` of a node that
//! was never paused, or a `restart` of one that is running, is caught here rather than
//! silently ignored by the supervisor. Triggered events cannot be placed in time, so
//! they are checked field by field only.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Action, LinkSet, Schedule, ScheduleEvent, DELAY_MS_MAX, EVENTS_MAX, NODES_MAX, TARGET_DEST,
    TARGET_SRC, TIME_LIMIT_MS_MAX,
};

/// Why a schedule was rejected; names the offending event by index, id and line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// Not JSON, or the header (everything but the events) does not fit the format.
    #[error("schedule: {0}")]
    Syntax(String),
    /// The header's values are wrong.
    #[error("schedule: {0}")]
    Header(Problem),
    /// One event is wrong.
    #[error("schedule: events[{index}] ({}): {problem}", locate(.id, .line))]
    Event {
        /// Position in the `events` array, from 0.
        index: usize,
        /// Its `id`, if it has a readable one.
        id: Option<u32>,
        /// Line of the file where it starts, if parsed from a file.
        line: Option<usize>,
        /// What is wrong.
        problem: Problem,
    },
}

fn locate(id: &Option<u32>, line: &Option<usize>) -> String {
    let id = id.map_or("no id".to_string(), |id| format!("id {id}"));
    line.map_or(id.clone(), |line| format!("{id}, line {line}"))
}

impl ScheduleError {
    /// Fills in the line of an event error from its index.
    pub(super) fn with_line(self, line_of: impl Fn(usize) -> Option<usize>) -> Self {
        match self {
            ScheduleError::Event {
                index,
                id,
                line: None,
                problem,
            } => ScheduleError::Event {
                index,
                id,
                line: line_of(index),
                problem,
            },
            other => other,
        }
    }
}

/// What is wrong with a schedule's header or one of its events.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    /// The event does not fit the format (unknown action or field, wrong type, ...).
    #[error("{0}")]
    Malformed(String),
    /// The header's node list is empty.
    #[error("no nodes")]
    NoNodes,
    /// More nodes than the link table holds.
    #[error("{count} nodes; at most {NODES_MAX}")]
    TooManyNodes {
        /// How many.
        count: usize,
    },
    /// A node name that is empty, listed twice, or reserved.
    #[error("node name '{node}' is empty, repeated, or starts with '$' or contains '->'")]
    BadNodeName {
        /// The name.
        node: String,
    },
    /// `time_limit_ms` or `recovery_ms` out of range.
    #[error("{field} = {ms} is outside [{min}, {TIME_LIMIT_MS_MAX}]")]
    BadDuration {
        /// Which field.
        field: &'static str,
        /// Its value.
        ms: u64,
        /// Its minimum.
        min: u64,
    },
    /// More events than allowed.
    #[error("{count} events; at most {EVENTS_MAX}")]
    TooManyEvents {
        /// How many.
        count: usize,
    },
    /// Two events share an id.
    #[error("id {id} is used by an earlier event")]
    DuplicateId {
        /// The id.
        id: u32,
    },
    /// Neither `at_ms` nor `on`.
    #[error("the event has neither `at_ms` nor `on`, so it would never happen")]
    NoTime,
    /// `at_ms` after `time_limit_ms`.
    #[error("at_ms = {at_ms} is past time_limit_ms = {time_limit_ms}")]
    PastLimit {
        /// The event's time.
        at_ms: u64,
        /// The limit.
        time_limit_ms: u64,
    },
    /// A node that is not in `nodes`.
    #[error("unknown node '{node}'")]
    UnknownNode {
        /// The name.
        node: String,
    },
    /// `$src` / `$dest` in an event without `on`.
    #[error("'{node}' only has a meaning in an event with a trigger (`on`)")]
    PlaceholderWithoutTrigger {
        /// The placeholder.
        node: String,
    },
    /// A link from a node to itself.
    #[error("link from '{node}' to itself")]
    SelfLink {
        /// The node.
        node: String,
    },
    /// A `partition` or `link_faults` with an empty link list.
    #[error("no links listed")]
    NoLinks,
    /// A probability outside `[0, 1]` (or not a number).
    #[error("{field} = {value} is not a probability in [0, 1]")]
    Probability {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// A delay above [`DELAY_MS_MAX`].
    #[error("delay {field} = {ms} exceeds {DELAY_MS_MAX} ms")]
    DelayTooLarge {
        /// Which field.
        field: &'static str,
        /// Its value.
        ms: u64,
    },
    /// A trigger that can never match.
    #[error("trigger: {0}")]
    BadTrigger(String),
    /// A process or clog action that does not fit the node's state at that time.
    #[error("{action} of '{node}', which {state} at {at_ms} ms")]
    WrongState {
        /// The action's name.
        action: &'static str,
        /// The node.
        node: String,
        /// `"is not paused"`, `"is already down"`, ...
        state: &'static str,
        /// When.
        at_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct NodeModel {
    down: bool,
    /// Crashed for good: down even after `heal_all`.
    crashed: bool,
    paused: bool,
    clogged: bool,
}

impl Schedule {
    /// Checks the whole schedule; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        self.validate_header().map_err(ScheduleError::Header)?;
        let known: BTreeSet<&str> = self.nodes.iter().map(String::as_str).collect();
        let mut ids = BTreeSet::new();
        for (index, event) in self.events.iter().enumerate() {
            let at = |problem| ScheduleError::Event {
                index,
                id: Some(event.id),
                line: None,
                problem,
            };
            if !ids.insert(event.id) {
                return Err(at(Problem::DuplicateId { id: event.id }));
            }
            self.validate_event(event, &known).map_err(at)?;
        }
        self.validate_states()
    }

    fn validate_header(&self) -> Result<(), Problem> {
        if self.nodes.is_empty() {
            return Err(Problem::NoNodes);
        }
        if self.nodes.len() > NODES_MAX {
            return Err(Problem::TooManyNodes {
                count: self.nodes.len(),
            });
        }
        let mut seen = BTreeSet::new();
        for node in &self.nodes {
            let reserved = node.is_empty() || node.starts_with('$') || node.contains("->");
            if reserved || !seen.insert(node) {
                return Err(Problem::BadNodeName { node: node.clone() });
            }
        }
        for (field, ms, min) in [
            ("time_limit_ms", self.time_limit_ms, 1),
            ("recovery_ms", self.recovery_ms, 0),
        ] {
            if ms < min || ms > TIME_LIMIT_MS_MAX {
                return Err(Problem::BadDuration { field, ms, min });
            }
        }
        if self.events.len() > EVENTS_MAX {
            return Err(Problem::TooManyEvents {
                count: self.events.len(),
            });
        }
        Ok(())
    }

    fn validate_event(&self, event: &ScheduleEvent, known: &BTreeSet<&str>) -> Result<(), Problem> {
        match (event.at_ms, &event.on) {
            (None, None) => return Err(Problem::NoTime),
            (Some(at_ms), _) if at_ms > self.time_limit_ms => {
                let time_limit_ms = self.time_limit_ms;
                return Err(Problem::PastLimit {
                    at_ms,
                    time_limit_ms,
                });
            }
            _ => {}
        }
        if let Some(t) = &event.on {
            if t.msg_type.is_empty() {
                return Err(Problem::BadTrigger("msg_type is empty".into()));
            }
            if t.nth == 0 {
                return Err(Problem::BadTrigger("nth counts from 1".into()));
            }
            if (t.msg_type == super::DRAWN_TYPE) != t.pick.is_some() {
                let why = format!(
                    "'pick' goes with msg_type '{}', and only with it",
                    super::DRAWN_TYPE
                );
                return Err(Problem::BadTrigger(why));
            }
            for name in t.src.iter().chain(&t.dest) {
                if name.is_empty() || name.starts_with('$') {
                    let why = format!("'{name}' cannot be matched; name an address");
                    return Err(Problem::BadTrigger(why));
                }
            }
        }
        for node in event.action.nodes() {
            if known.contains(node) {
                continue;
            }
            let node = node.to_string();
            if node != TARGET_SRC && node != TARGET_DEST {
                return Err(Problem::UnknownNode { node });
            }
            if event.on.is_none() {
                return Err(Problem::PlaceholderWithoutTrigger { node });
            }
        }
        validate_action(&event.action)
    }

    /// Replays the timed events in firing order against a model of each node. A
    /// triggered kill of a named node that is armed at a time counts as done when armed
    /// (it may fire any moment from then), so the restart that follows it is allowed.
    fn validate_states(&self) -> Result<(), ScheduleError> {
        let mut model: BTreeMap<&str, NodeModel> = self
            .nodes
            .iter()
            .map(|n| (n.as_str(), NodeModel::default()))
            .collect();
        let mut timed: Vec<(usize, &ScheduleEvent)> = self
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.on.is_none() || armed_kill_of_named_node(e))
            .collect();
        timed.sort_by_key(|(_, e)| e.at_ms);
        for (index, event) in timed {
            let at_ms = event
                .at_ms
                .expect("validated: untriggered events and armed kills have at_ms");
            let action = event.action.name();
            let wrong = |node: &str, state| ScheduleError::Event {
                index,
                id: Some(event.id),
                line: None,
                problem: Problem::WrongState {
                    action,
                    node: node.to_string(),
                    state,
                    at_ms,
                },
            };
            match &event.action {
                Action::Kill { node } | Action::Crash { node } => {
                    let m = node_mut(&mut model, node);
                    if m.down || m.crashed {
                        return Err(wrong(node, "is already down"));
                    }
                    m.crashed = matches!(event.action, Action::Crash { .. });
                    *m = NodeModel {
                        down: true,
                        paused: false,
                        ..*m
                    };
                }
                Action::Restart { node, .. } => {
                    let m = node_mut(&mut model, node);
                    if m.crashed {
                        return Err(wrong(node, "crashed for good"));
                    }
                    if !m.down {
                        return Err(wrong(node, "is not down"));
                    }
                    m.down = false;
                }
                Action::Pause { node } => {
                    let m = node_mut(&mut model, node);
                    if m.down || m.paused {
                        let state = if m.down {
                            "is down"
                        } else {
                            "is already paused"
                        };
                        return Err(wrong(node, state));
                    }
                    m.paused = true;
                }
                Action::Resume { node } => {
                    let m = node_mut(&mut model, node);
                    if !m.paused {
                        return Err(wrong(node, "is not paused"));
                    }
                    m.paused = false;
                }
                Action::Clog { node } | Action::Unclog { node } => {
                    let clog = matches!(event.action, Action::Clog { .. });
                    let m = node_mut(&mut model, node);
                    if m.clogged == clog {
                        let state = if clog {
                            "is already clogged"
                        } else {
                            "is not clogged"
                        };
                        return Err(wrong(node, state));
                    }
                    m.clogged = clog;
                }
                Action::HealAll {} => model.values_mut().for_each(|m| {
                    *m = NodeModel {
                        crashed: m.crashed,
                        down: m.crashed,
                        ..NodeModel::default()
                    }
                }),
                _ => {}
            }
        }
        Ok(())
    }
}

fn validate_action(action: &Action) -> Result<(), Problem> {
    let links = match action {
        Action::Partition { cut, .. } => cut,
        Action::LinkFaults {
            links: LinkSet::Only(links),
            ..
        } => links,
        _ => &Vec::new(),
    };
    let needs_links = matches!(
        action,
        Action::Partition { .. }
            | Action::LinkFaults {
                links: LinkSet::Only(_),
                ..
            }
    );
    if needs_links && links.is_empty() {
        return Err(Problem::NoLinks);
    }
    if let Some((node, _)) = links.iter().find(|(src, dest)| src == dest) {
        return Err(Problem::SelfLink { node: node.clone() });
    }
    if let Action::LinkFaults {
        drop,
        delay,
        duplicate,
        reorder,
        ..
    } = action
    {
        for (field, value) in [
            ("drop", *drop),
            ("duplicate", *duplicate),
            ("reorder", *reorder),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(Problem::Probability { field, value });
            }
        }
        if let Some(d) = delay {
            for (field, ms) in [("base_ms", d.base_ms), ("jitter_ms", d.jitter_ms)] {
                if ms > DELAY_MS_MAX {
                    return Err(Problem::DelayTooLarge { field, ms });
                }
            }
        }
    }
    Ok(())
}

fn node_mut<'m>(model: &'m mut BTreeMap<&str, NodeModel>, node: &str) -> &'m mut NodeModel {
    model
        .get_mut(node)
        .expect("validated: events name known nodes")
}

/// A kill with a trigger, armed at a time, of a node named outright (not `$src`).
fn armed_kill_of_named_node(e: &ScheduleEvent) -> bool {
    match &e.action {
        Action::Kill { node } => e.on.is_some() && e.at_ms.is_some() && !node.starts_with('$'),
        _ => false,
    }
}
