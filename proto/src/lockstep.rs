//! Lockstep mode: the control bodies of the deterministic exchange (PROTOCOL.md §10).
//!
//! In lockstep the harness hands a node one line at a time (a node message, a client
//! request or a [`Lockstep::TimerFired`]) and reads the node's output up to
//! [`Lockstep::StepDone`]. The node keeps no clock: it asks the harness for timers with
//! [`Lockstep::TimerSet`] / [`Lockstep::TimerCancel`], and the harness fires them in
//! virtual time.
//!
//! The harness asks for lockstep with `"lockstep": true` in `init`; [`InitMode`] reads
//! that flag from an `init` body (older harnesses omit it, and
//! [`crate::body::Control::Init`] ignores it), and [`init_body`] writes it. A node
//! advertises support with `"lockstep": true` in `init_ok`
//! ([`crate::body::Control::InitOk`]).

use serde::{Deserialize, Serialize};

/// The lockstep control bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Lockstep {
    /// Node -> harness: fire timer `timer_id` after `after_us` (or, from nodes written
    /// before microseconds, `after_ms`) of virtual time, replacing any earlier setting of
    /// the same id. [`Lockstep::timer_delay_us`] reads the delay.
    TimerSet {
        /// Chosen by the node; unique among its pending timers.
        timer_id: u64,
        /// Delay in virtual microseconds; takes precedence over `after_ms`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_us: Option<u64>,
        /// Delay in virtual milliseconds (the older field, still accepted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_ms: Option<u64>,
    },
    /// Node -> harness: forget timer `timer_id` if it is pending.
    TimerCancel {
        /// The id given in `timer_set`.
        timer_id: u64,
    },
    /// Harness -> node: timer `timer_id` fired. Delivered as one step like any message.
    TimerFired {
        /// The id given in `timer_set`.
        timer_id: u64,
    },
    /// Node -> harness: the node has sent every effect of the line it was given.
    StepDone,
    /// Node -> harness, inside a step: the lines above were recorded before a sync, and
    /// the node waits for [`Lockstep::SyncGo`] before making its records durable, so the
    /// harness can kill it at exactly this point (a crash after a send, before the sync).
    SyncWait,
    /// Harness -> node: carry on after a [`Lockstep::SyncWait`].
    SyncGo,
}

impl Lockstep {
    /// A `timer_set` in microseconds, as this crate's nodes send it.
    pub fn timer_set_us(timer_id: u64, after_us: u64) -> Lockstep {
        Lockstep::TimerSet {
            timer_id,
            after_us: Some(after_us),
            after_ms: None,
        }
    }

    /// The delay of a `timer_set` in microseconds: `after_us`, else `after_ms` × 1000;
    /// `None` for any other body or a `timer_set` that names neither.
    pub fn timer_delay_us(&self) -> Option<u64> {
        match self {
            Lockstep::TimerSet {
                after_us: Some(us), ..
            } => Some(*us),
            Lockstep::TimerSet {
                after_ms: Some(ms), ..
            } => Some(ms.saturating_mul(1_000)),
            _ => None,
        }
    }
}

/// The lockstep flag of an `init` body: parse the body with this to learn whether the
/// harness asks for lockstep mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct InitMode {
    /// The harness will drive the node in lockstep.
    #[serde(default)]
    pub lockstep: bool,
}

impl InitMode {
    /// Reads the flag from an `init` body given as JSON; `false` when absent or
    /// unreadable.
    pub fn of(init_body_json: &str) -> InitMode {
        serde_json::from_str(init_body_json).unwrap_or_default()
    }
}

/// An `init` body that asks for lockstep mode when `lockstep` is true (and is exactly the
/// free-running `init` otherwise).
pub fn init_body(msg_id: u64, node_id: &str, node_ids: &[String], lockstep: bool) -> String {
    let mut body = serde_json::json!({
        "type": "init",
        "msg_id": msg_id,
        "node_id": node_id,
        "node_ids": node_ids,
    });
    if lockstep {
        body["lockstep"] = serde_json::Value::Bool(true);
    }
    body.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Control;

    #[test]
    fn bodies_have_the_documented_shapes() {
        let cases = [
            (
                Lockstep::timer_set_us(3, 100_500),
                r#"{"type":"timer_set","timer_id":3,"after_us":100500}"#,
            ),
            (
                Lockstep::TimerSet {
                    timer_id: 3,
                    after_us: None,
                    after_ms: Some(100),
                },
                r#"{"type":"timer_set","timer_id":3,"after_ms":100}"#,
            ),
            (
                Lockstep::TimerCancel { timer_id: 3 },
                r#"{"type":"timer_cancel","timer_id":3}"#,
            ),
            (
                Lockstep::TimerFired { timer_id: 3 },
                r#"{"type":"timer_fired","timer_id":3}"#,
            ),
            (Lockstep::StepDone, r#"{"type":"step_done"}"#),
            (Lockstep::SyncWait, r#"{"type":"sync_wait"}"#),
            (Lockstep::SyncGo, r#"{"type":"sync_go"}"#),
        ];
        for (msg, json) in cases {
            assert_eq!(serde_json::to_string(&msg).unwrap(), json);
            assert_eq!(serde_json::from_str::<Lockstep>(json).unwrap(), msg);
        }
    }

    #[test]
    fn timer_set_reads_microseconds_and_the_older_milliseconds() {
        let delay = |json: &str| {
            serde_json::from_str::<Lockstep>(json)
                .unwrap()
                .timer_delay_us()
        };
        assert_eq!(
            delay(r#"{"type":"timer_set","timer_id":1,"after_us":250}"#),
            Some(250)
        );
        assert_eq!(
            delay(r#"{"type":"timer_set","timer_id":1,"after_ms":3}"#),
            Some(3_000)
        );
        assert_eq!(
            delay(r#"{"type":"timer_set","timer_id":1,"after_ms":3,"after_us":7}"#),
            Some(7)
        );
        assert_eq!(delay(r#"{"type":"timer_set","timer_id":1}"#), None);
        assert_eq!(Lockstep::StepDone.timer_delay_us(), None);
    }

    #[test]
    fn init_flag_is_optional_and_ignored_by_control() {
        let ids = vec!["n1".to_string(), "n2".to_string()];
        let lock = init_body(1, "n1", &ids, true);
        assert!(InitMode::of(&lock).lockstep);
        let free = init_body(1, "n1", &ids, false);
        assert!(!InitMode::of(&free).lockstep);
        assert!(!free.contains("lockstep"));
        for body in [lock, free] {
            let control: Control = serde_json::from_str(&body).unwrap();
            assert_eq!(
                control,
                Control::Init {
                    msg_id: 1,
                    node_id: "n1".into(),
                    node_ids: ids.clone()
                }
            );
        }
    }
}
