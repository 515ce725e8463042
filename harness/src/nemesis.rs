//! The nemesis: every fault squall injects, decided by pure functions.
//!
//! Nothing here performs IO, reads a clock or spawns a thread. Time comes in as
//! `now_ms` / `now_us` numbers, randomness from ChaCha RNGs seeded from the run's seed,
//! and every collection that is iterated is a `BTreeMap` / `BTreeSet` or a `Vec` in a
//! defined order, so the same seed gives the same schedule and the same per-link
//! decisions, byte for byte. The router wraps [`LinkTable`] and [`TriggerSet`], the
//! supervisor executes [`ProcessAction`]s, the CLI calls [`expand()`] or
//! [`Schedule::from_json`].
//!
//! Module map:
//! - `link`: [`LinkTable`], per directed link fault state, and its `decide`.
//! - `delay`: [`LinkFaults`], [`DelaySpec`], [`DelayDist`]: what a link-fault event sets.
//! - `shape`: partition shapes ([`Shape`], [`swizzle_orders`]) and [`reachability`].
//! - `action`: [`Action`], split into the router's [`NetAction`] and the supervisor's
//!   [`ProcessAction`].
//! - `schedule`: [`Schedule`] and its JSON format (`schedule.json`); `pretty` prints it.
//! - `validate`: [`Schedule::validate`] and [`ScheduleError`].
//! - `expand`: [`expand()`], seed and options to a schedule.
//! - `trigger`: [`TriggerSet`], faults fired by the protocol messages the router sees.
//! - `spans`: [`SpanBook`], when each fault was on (for explanations and the report).
//! - `confirm`: counters ([`LinkCounters`], [`FaultCounters`], [`ProcessCounters`]),
//!   [`Confirmations`], [`warnings`] and [`Warning`]: a fault that did not bite is never
//!   silent, and repeats of one cause collapse into one counted warning.
//!
//! Scope: only links between two cluster nodes (`n1`..`nN`) are ever faulted. Traffic
//! between a client (`c1`..) or the `harness` endpoint and a node is never dropped,
//! delayed or held, not even by a partition: a partition is a statement about the
//! network between replicas, and a client that cannot reach the majority would only
//! turn operations into timeouts, which clients already model. Killing or pausing a
//! node of course affects its clients.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod action;
mod confirm;
mod delay;
mod expand;
mod link;
pub mod plans;
mod pretty;
mod schedule;
mod shape;
mod spans;
mod trigger;
mod validate;

pub use action::{Action, LinkSet, NetAction, PartitionMode, ProcessAction};
pub use confirm::{
    collapse, warnings, Confirmation, Confirmations, FaultCounters, FaultReport, LinkCounters,
    ProcessCounters, Warning, WarningKind, WARNING_EXAMPLES_MAX,
};
pub use delay::{DelayDist, DelaySpec, LinkFaults, EXP_JITTER_MEANS_MAX, REORDER_WINDOW_MS_MIN};
pub use expand::expand;
pub use link::{Decision, Delivery, DropCause, LinkStatus, LinkTable, SmallList, COPIES_MAX};
pub use schedule::{Schedule, ScheduleEvent, Trigger, DRAWN_TYPE, TARGET_DEST, TARGET_SRC};
pub use shape::{
    between, bridge, clog_links, isolate, majorities_ring, one_way, reachability, swizzle_orders,
    Shape,
};
pub use spans::{Ended, SpanBook};
pub use trigger::TriggerSet;
pub use validate::{Problem, ScheduleError};

/// A directed link `(src, dest)`; serialised as the JSON array `["n1", "n2"]`.
pub type Link = (String, String);

/// Most nodes a cluster may have (the link table is `N × N`).
pub const NODES_MAX: usize = 64;
/// Most events one schedule may hold.
pub const EVENTS_MAX: usize = 10_000;
/// Largest schedule file, refused before it is parsed: [`EVENTS_MAX`] events averaging
/// over 6 KiB each (a partition of 64 nodes listing every cut link is about 56 KiB).
pub const SCHEDULE_BYTES_MAX: usize = 64 << 20;
/// Longest run a schedule may describe: one week.
pub const TIME_LIMIT_MS_MAX: u64 = 7 * 24 * 3_600 * 1_000;
/// Largest base or jitter of a delay fault.
pub const DELAY_MS_MAX: u64 = 60_000;
/// Shortest interval between faults the expander accepts.
pub const INTERVAL_MS_MIN: u64 = 10;

/// The name of a directed link in counters and messages: `n1->n2`.
pub fn link_name(src: &str, dest: &str) -> String {
    format!("{src}->{dest}")
}

/// Derives an independent seed for one purpose (`parts`, e.g. a link's endpoints).
///
/// FNV-1a over the parts (each terminated by a zero byte) mixed with the seed and
/// finished with SplitMix64: stable across platforms and Rust versions, unlike `Hash`.
pub fn derive_seed(seed: u64, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let mut z = h ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One kind of fault the expander can schedule (`--nemesis partition,kill,...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Network partitions of several shapes (cut: messages dropped).
    Partition,
    /// SIGKILL, then restart with the same (or, with amnesia, a wiped) data dir.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// Random message loss.
    Drop,
    /// Message delay.
    Delay,
    /// Message duplication.
    Duplicate,
    /// Messages overtaking earlier ones on their link (breaks FIFO).
    Reorder,
    /// Swizzle-clog: nodes' links held one by one, released in another order.
    Clog,
    /// SIGKILL a node right after it sends a node-to-node message of a type drawn from
    /// the seed among the types seen so far in the run, then restart it: the kill lands
    /// between a reply and the next sync, or between accepting and learning, without the
    /// schedule knowing any node's message names.
    KillOnSend,
    /// SIGKILL for good (crash-stop), at most a minority; not part of `all`, because
    /// the final heal does not bring the node back.
    Crash,
}

impl FaultKind {
    /// Every kind `all` stands for, in order.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Partition,
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Drop,
        FaultKind::Delay,
        FaultKind::Duplicate,
        FaultKind::Reorder,
        FaultKind::Clog,
        FaultKind::KillOnSend,
    ];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Drop => "drop",
            FaultKind::Delay => "delay",
            FaultKind::Duplicate => "duplicate",
            FaultKind::Reorder => "reorder",
            FaultKind::Clog => "clog",
            FaultKind::KillOnSend => "kill-on-send",
            FaultKind::Crash => "crash",
        }
    }

    /// Whether this kind is a per-link message fault (set by a `link_faults` event).
    pub fn is_link_fault(self) -> bool {
        matches!(
            self,
            FaultKind::Drop | FaultKind::Delay | FaultKind::Duplicate | FaultKind::Reorder
        )
    }

    /// Parses a comma-separated list: names, `all`, or `none` (empty set).
    pub fn parse_list(list: &str) -> Result<BTreeSet<FaultKind>, NemesisError> {
        let mut kinds = BTreeSet::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "all" => kinds.extend(FaultKind::ALL),
                "none" => {}
                _ => {
                    kinds.insert(name.parse()?);
                }
            }
        }
        Ok(kinds)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = NemesisError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .chain([FaultKind::Crash])
            .find(|k| k.name() == s)
            .ok_or_else(|| NemesisError::UnknownKind {
                name: s.to_string(),
                valid: FaultKind::ALL.map(FaultKind::name).join(", ") + ", crash",
            })
    }
}

/// A problem with the nemesis options (exit code 254).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NemesisError {
    /// A fault kind name that does not exist.
    #[error("unknown fault kind '{name}'; valid kinds: {valid}, or all, or none")]
    UnknownKind {
        /// The name given.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// An option out of its range.
    #[error("nemesis option {option}: {problem}")]
    BadOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// Options of the schedule expander; defaults suit a 10-second run (omitted JSON
/// fields take them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NemesisOpts {
    /// Which kinds of faults to schedule.
    pub kinds: BTreeSet<FaultKind>,
    /// Rough time between a fault and its heal, and between a heal and the next fault.
    pub interval_ms: u64,
    /// Drop probability of a link under a drop fault.
    pub drop_p: f64,
    /// Duplication probability of a link under a duplicate fault.
    pub dup_p: f64,
    /// Reorder probability of a link under a reorder fault.
    pub reorder_p: f64,
    /// Base delay of a delay fault.
    pub delay_base_ms: u64,
    /// Jitter of a delay fault (its meaning depends on `delay_dist`).
    pub delay_jitter_ms: u64,
    /// Distribution of the jitter.
    pub delay_dist: DelayDist,
    /// Time between a SIGKILL and the restart.
    pub kill_restart_after_ms: u64,
    /// Whether restarts may wipe the data dir (each restart with probability 1/2).
    pub amnesia: bool,
    /// The quiet window after the final heal in which operations must complete.
    pub recovery_ms: u64,
}

impl Default for NemesisOpts {
    fn default() -> Self {
        NemesisOpts {
            kinds: BTreeSet::new(),
            interval_ms: 1_000,
            drop_p: 0.1,
            dup_p: 0.05,
            reorder_p: 0.1,
            delay_base_ms: 5,
            delay_jitter_ms: 20,
            delay_dist: DelayDist::Uniform,
            kill_restart_after_ms: 1_000,
            amnesia: false,
            recovery_ms: 5_000,
        }
    }
}

impl NemesisOpts {
    /// Checks every option's range; call before [`expand()`].
    pub fn validate(&self) -> Result<(), NemesisError> {
        let bad = |option, problem: String| Err(NemesisError::BadOption { option, problem });
        let probabilities = [
            ("drop_p", self.drop_p),
            ("dup_p", self.dup_p),
            ("reorder_p", self.reorder_p),
        ];
        for (option, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return bad(option, format!("{p} is not a probability in [0, 1]"));
            }
        }
        if self.interval_ms < INTERVAL_MS_MIN || self.interval_ms > TIME_LIMIT_MS_MAX {
            let range = format!("[{INTERVAL_MS_MIN}, {TIME_LIMIT_MS_MAX}]");
            return bad(
                "interval_ms",
                format!("{} is outside {range}", self.interval_ms),
            );
        }
        for (option, ms) in [
            ("delay_base_ms", self.delay_base_ms),
            ("delay_jitter_ms", self.delay_jitter_ms),
        ] {
            if ms > DELAY_MS_MAX {
                return bad(option, format!("{ms} exceeds {DELAY_MS_MAX}"));
            }
        }
        for (option, ms) in [
            ("kill_restart_after_ms", self.kill_restart_after_ms),
            ("recovery_ms", self.recovery_ms),
        ] {
            if ms > TIME_LIMIT_MS_MAX {
                return bad(option, format!("{ms} exceeds {TIME_LIMIT_MS_MAX}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_names_all_and_none() {
        let kinds = FaultKind::parse_list("partition, kill").expect("valid");
        assert_eq!(
            kinds,
            BTreeSet::from([FaultKind::Partition, FaultKind::Kill])
        );
        assert_eq!(FaultKind::parse_list("all").expect("valid").len(), 9);
        assert!(FaultKind::parse_list("none").expect("valid").is_empty());
    }

    #[test]
    fn unknown_kind_lists_valid_names() {
        let err = FaultKind::parse_list("partition,kil").expect_err("kil is unknown");
        let text = err.to_string();
        assert!(text.contains("'kil'"), "{text}");
        assert!(
            text.contains("partition, kill, pause, drop, delay, duplicate"),
            "{text}"
        );
    }

    #[test]
    fn opts_ranges_are_checked() {
        assert!(NemesisOpts::default().validate().is_ok());
        let opts = NemesisOpts {
            drop_p: 1.5,
            ..NemesisOpts::default()
        };
        assert!(opts
            .validate()
            .expect_err("1.5")
            .to_string()
            .contains("drop_p"));
        let opts = NemesisOpts {
            interval_ms: 0,
            ..NemesisOpts::default()
        };
        assert!(opts.validate().is_err());
    }

    #[test]
    fn derived_seeds_are_stable_and_distinct() {
        assert_eq!(derive_seed(1, &["n1", "n2"]), derive_seed(1, &["n1", "n2"]));
        assert_ne!(derive_seed(1, &["n1", "n2"]), derive_seed(1, &["n2", "n1"]));
        assert_ne!(derive_seed(1, &["n1", "n2"]), derive_seed(2, &["n1", "n2"]));
        assert_ne!(derive_seed(1, &["n1n", "2"]), derive_seed(1, &["n1", "n2"]));
    }
}
