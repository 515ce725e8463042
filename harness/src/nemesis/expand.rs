//! The expander: a seed and [`NemesisOpts`] become a full [`Schedule`].
//!
//! Faults run on three independent tracks, each with its own RNG derived from the seed,
//! so turning one kind on or off leaves the other tracks' events unchanged (which keeps
//! shrinking stable):
//!
//! - process: `kill` (then `restart` after `kill_restart_after_ms`) or `pause` (then
//!   `resume`), on 1 to `⌊(N-1)/2⌋` nodes at once, so a majority always stays up and
//!   running; or kill-on-send: one node killed by a trigger on the next node-to-node
//!   message it sends of a type drawn at run time among those seen so far (msg_type
//!   [`DRAWN_TYPE`](super::DRAWN_TYPE) with a seeded `pick`), armed for about an interval
//!   and restarted `kill_restart_after_ms` after that; nothing is scheduled when `N ≤ 2`;
//! - network: a `partition` of a random shape (then `heal_partition`) or a
//!   swizzle-clog: `clog` nodes one by one, then `unclog` them in another order;
//! - link: `link_faults` (then `clear_link_faults`) with a random non-empty subset of
//!   the requested drop / delay / duplicate / reorder kinds on all links or on the
//!   links of a few nodes; the first one on a track carries every requested link kind
//!   on all links.
//!
//! On each track a fault starts after a gap of `interval_ms` (jittered to between half
//! and one and a half times), lasts about as long, and is healed before the track's
//! next fault; a fault is not started within `interval_ms / 2` of `time_limit_ms` and
//! heals are clamped to it. The kinds of a track are drawn from a shuffled deck, so
//! each requested kind comes up once before any repeats: with the defaults and all
//! kinds on, a 10-second run schedules every kind. The schedule ends with `heal_all`
//! at `time_limit_ms`.

use std::collections::BTreeSet;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::shape::{between, isolate, swizzle_orders};
use super::{
    derive_seed, Action, DelaySpec, FaultKind, LinkSet, NemesisOpts, PartitionMode, Schedule,
    ScheduleEvent, Shape, Trigger, DRAWN_TYPE, EVENTS_MAX, INTERVAL_MS_MIN, TIME_LIMIT_MS_MAX,
};

/// Events one track may schedule (three tracks and the final heal fit [`EVENTS_MAX`]).
const TRACK_EVENTS_MAX: usize = (EVENTS_MAX - 1) / 3;
const _: () = assert!(3 * TRACK_EVENTS_MAX < EVENTS_MAX);

/// Expands `seed` and `opts` into the schedule of a run over `nodes` lasting
/// `time_limit_ms`. Pure: the same arguments always give the same schedule. Call
/// [`NemesisOpts::validate`] first and [`Schedule::validate`] on the result.
pub fn expand(seed: u64, opts: &NemesisOpts, nodes: &[String], time_limit_ms: u64) -> Schedule {
    let kinds = |wanted: &[FaultKind]| -> Vec<FaultKind> {
        wanted
            .iter()
            .copied()
            .filter(|k| opts.kinds.contains(k))
            .collect()
    };
    let process = kinds(&[
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Crash,
        FaultKind::KillOnSend,
    ]);
    let network = kinds(&[FaultKind::Partition, FaultKind::Clog]);
    let link = kinds(&[
        FaultKind::Drop,
        FaultKind::Delay,
        FaultKind::Duplicate,
        FaultKind::Reorder,
    ]);
    let n = nodes.len();
    let tracks: [(&str, Vec<FaultKind>, bool); 3] = [
        ("process", process, n >= 3),
        ("network", network, n >= 2),
        ("link", link, n >= 2),
    ];
    let mut timed: Vec<(u64, usize, usize, Option<Trigger>, Action)> = Vec::new();
    for (t, (name, kinds, possible)) in tracks.into_iter().enumerate() {
        if kinds.is_empty() || !possible {
            continue;
        }
        let mut track = Track {
            rng: ChaCha8Rng::seed_from_u64(derive_seed(seed, &["expand", name])),
            opts,
            nodes,
            interval_ms: opts.interval_ms.clamp(INTERVAL_MS_MIN, TIME_LIMIT_MS_MAX),
            limit_ms: time_limit_ms,
            events: Vec::new(),
            crashed: Vec::new(),
        };
        track.run(&kinds);
        let events = track.events.into_iter().enumerate();
        timed.extend(events.map(|(seq, (at, on, action))| (at, t, seq, on, action)));
    }
    timed.sort_by_key(|(at, track, seq, _, _)| (*at, *track, *seq));
    let events: Vec<ScheduleEvent> = timed
        .into_iter()
        .map(|(at, _, _, on, action)| (Some(at), on, action))
        .chain([(Some(time_limit_ms), None, Action::HealAll {})])
        .zip(1..)
        .map(|((at_ms, on, action), id)| ScheduleEvent {
            id,
            at_ms,
            on,
            action,
        })
        .collect();
    Schedule {
        seed,
        nodes: nodes.to_vec(),
        time_limit_ms,
        recovery_ms: opts.recovery_ms,
        events,
    }
}

struct Track<'a> {
    rng: ChaCha8Rng,
    opts: &'a NemesisOpts,
    nodes: &'a [String],
    interval_ms: u64,
    limit_ms: u64,
    /// When, armed by what trigger (if any), what.
    events: Vec<(u64, Option<Trigger>, Action)>,
    /// Nodes crashed for good; they count against the minority that may be down.
    crashed: Vec<String>,
}

impl Track<'_> {
    /// Alternates fault and heal until the time limit, drawing kinds from a deck.
    fn run(&mut self, kinds: &[FaultKind]) {
        let mut deck: Vec<FaultKind> = Vec::new();
        let mut shapes: Vec<Shape> = Vec::new();
        let mut first_link_fault = true;
        let mut t = self.jitter(self.interval_ms);
        while t.saturating_add(self.interval_ms / 2) <= self.limit_ms
            && self.events.len() + 2 * self.nodes.len() <= TRACK_EVENTS_MAX
        {
            if deck.is_empty() {
                deck = kinds.to_vec();
                deck.shuffle(&mut self.rng);
            }
            let kind = deck.pop().expect("deck refilled");
            let end = match kind {
                FaultKind::Kill | FaultKind::Pause => self.process_fault(kind, t),
                FaultKind::Crash => self.crash(t),
                FaultKind::KillOnSend => self.kill_on_send(t),
                FaultKind::Partition => {
                    if shapes.is_empty() {
                        shapes = Shape::ALL.to_vec();
                        shapes.shuffle(&mut self.rng);
                    }
                    self.partition(shapes.pop().expect("shapes refilled"), t)
                }
                FaultKind::Clog => self.swizzle_clog(t),
                FaultKind::Drop | FaultKind::Delay | FaultKind::Duplicate | FaultKind::Reorder => {
                    let all = std::mem::take(&mut first_link_fault);
                    self.link_faults(kinds, all, t)
                }
            };
            t = end.saturating_add(self.jitter(self.interval_ms));
        }
    }

    /// Arms a kill of one node on the next message it sends of a drawn type, for about
    /// an interval; restarts it `kill_restart_after_ms` after that. A trigger that has
    /// not fired by the restart is a warning, and the restart finds the node up.
    fn kill_on_send(&mut self, t: u64) -> u64 {
        if (self.nodes.len() - 1) / 2 <= self.crashed.len() {
            return t;
        }
        let up = self.up_nodes();
        let node = up.choose(&mut self.rng).expect("a majority is up").clone();
        let pick = self.rng.gen_range(0..1u64 << 32);
        let armed_until = self.about_an_interval_after(t);
        let heal = self.clamp(armed_until.saturating_add(self.opts.kill_restart_after_ms));
        let wipe = self.rng.gen_bool(0.5);
        let trigger = Trigger {
            msg_type: DRAWN_TYPE.to_string(),
            nth: 1,
            src: Some(node.clone()),
            dest: None,
            pick: Some(pick),
        };
        self.events
            .push((t, Some(trigger), Action::Kill { node: node.clone() }));
        self.push(
            heal,
            Action::Restart {
                node,
                amnesia: self.opts.amnesia && wipe,
            },
        );
        heal
    }

    /// Schedules `action` at `at`.
    fn push(&mut self, at: u64, action: Action) {
        self.events.push((at, None, action));
    }

    /// Crashes one node for good, while the crashed stay a minority.
    fn crash(&mut self, t: u64) -> u64 {
        let minority = (self.nodes.len() - 1) / 2;
        if self.crashed.len() >= minority {
            return t;
        }
        let up: Vec<String> = self.up_nodes();
        let node = up.choose(&mut self.rng).expect("a majority is up").clone();
        self.crashed.push(node.clone());
        self.push(t, Action::Crash { node });
        t
    }

    fn up_nodes(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| !self.crashed.contains(n))
            .cloned()
            .collect()
    }

    /// Kills or pauses up to a minority (crashed nodes included); returns when the
    /// last node is back.
    fn process_fault(&mut self, kind: FaultKind, t: u64) -> u64 {
        let minority = (self.nodes.len() - 1) / 2 - self.crashed.len();
        if minority == 0 {
            return t;
        }
        let count = self.rng.gen_range(1..=minority);
        let mut targets = self.up_nodes();
        targets.shuffle(&mut self.rng);
        targets.truncate(count);
        let heal = match kind {
            FaultKind::Kill => self.clamp(t.saturating_add(self.opts.kill_restart_after_ms)),
            _ => self.about_an_interval_after(t),
        };
        for node in &targets {
            let (fault, recover) = if kind == FaultKind::Kill {
                let wipe = self.rng.gen_bool(0.5);
                let amnesia = self.opts.amnesia && wipe;
                let restart = Action::Restart {
                    node: node.clone(),
                    amnesia,
                };
                (Action::Kill { node: node.clone() }, restart)
            } else {
                (
                    Action::Pause { node: node.clone() },
                    Action::Resume { node: node.clone() },
                )
            };
            self.push(t, fault);
            self.push(heal, recover);
        }
        heal
    }

    fn partition(&mut self, shape: Shape, t: u64) -> u64 {
        let (mut label, mut cut) = shape.cut(self.nodes, &mut self.rng);
        if cut.is_empty() {
            // Too few nodes for this shape to cut anything (a ring or bridge of two).
            (label, cut) = Shape::Isolate.cut(self.nodes, &mut self.rng);
        }
        let heal = self.about_an_interval_after(t);
        let cut = cut.into_iter().collect();
        self.push(
            t,
            Action::Partition {
                shape: label,
                cut,
                mode: PartitionMode::Cut,
            },
        );
        self.push(heal, Action::HealPartition {});
        heal
    }

    /// FoundationDB's swizzle: clog nodes one by one, unclog them in another order.
    fn swizzle_clog(&mut self, t: u64) -> u64 {
        let count = self.rng.gen_range(1..=(self.nodes.len() / 2).max(1));
        let (clog, unclog) = swizzle_orders(self.nodes, count, &mut self.rng);
        let step = (self.interval_ms / count as u64).max(1);
        let mut at = t;
        for node in clog {
            self.push(self.clamp(at), Action::Clog { node });
            at = at.saturating_add(step);
        }
        at = at
            .saturating_sub(step)
            .saturating_add(self.jitter(self.interval_ms));
        for node in unclog {
            self.push(self.clamp(at), Action::Unclog { node });
            at = at.saturating_add(step);
        }
        self.clamp(at.saturating_sub(step))
    }

    fn link_faults(&mut self, kinds: &[FaultKind], first: bool, t: u64) -> u64 {
        let mut chosen: BTreeSet<FaultKind> = kinds
            .iter()
            .copied()
            .filter(|_| self.rng.gen_bool(0.5))
            .collect();
        if first {
            chosen.extend(kinds);
        } else if chosen.is_empty() {
            chosen.insert(*kinds.choose(&mut self.rng).expect("link kinds requested"));
        }
        let links = if first || self.rng.gen_bool(0.5) {
            LinkSet::All
        } else {
            let mut order = self.nodes.to_vec();
            order.shuffle(&mut self.rng);
            let count = self.rng.gen_range(1..=(order.len() / 2).max(1));
            let (touched, rest) = order.split_at(count);
            let mut links = between(touched, rest);
            for node in touched {
                links.extend(isolate(touched, node));
            }
            LinkSet::Only(links.into_iter().collect())
        };
        let o = self.opts;
        let p = |kind, p: f64| if chosen.contains(&kind) { p } else { 0.0 };
        let action = Action::LinkFaults {
            links,
            drop: p(FaultKind::Drop, o.drop_p),
            delay: chosen.contains(&FaultKind::Delay).then_some(DelaySpec {
                dist: o.delay_dist,
                base_ms: o.delay_base_ms,
                jitter_ms: o.delay_jitter_ms,
            }),
            duplicate: p(FaultKind::Duplicate, o.dup_p),
            reorder: p(FaultKind::Reorder, o.reorder_p),
            msg_types: None,
        };
        let heal = self.about_an_interval_after(t);
        self.push(t, action);
        self.push(heal, Action::ClearLinkFaults {});
        heal
    }

    /// `ms` scaled by a uniform factor in `[0.5, 1.5]`.
    fn jitter(&mut self, ms: u64) -> u64 {
        self.rng.gen_range(ms / 2..=ms.saturating_add(ms / 2))
    }

    /// A jittered interval after `t`, clamped to the time limit: when a fault heals.
    fn about_an_interval_after(&mut self, t: u64) -> u64 {
        let ms = self.jitter(self.interval_ms);
        self.clamp(t.saturating_add(ms))
    }

    fn clamp(&self, at_ms: u64) -> u64 {
        at_ms.min(self.limit_ms)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn opts(kinds: &str) -> NemesisOpts {
        let kinds = FaultKind::parse_list(kinds).expect("valid kinds");
        NemesisOpts {
            kinds,
            ..NemesisOpts::default()
        }
    }

    /// Expands, validates, and checks the invariants every expanded schedule keeps.
    fn check(seed: u64, kinds: &str, n: usize, time_limit_ms: u64) -> Schedule {
        let s = expand(seed, &opts(kinds), &nodes(n), time_limit_ms);
        s.validate()
            .unwrap_or_else(|e| panic!("seed {seed}, n {n}: {e}\n{}", s.to_json()));
        let last = s.events.last().expect("at least the final heal");
        assert_eq!(
            (last.at_ms, &last.action),
            (Some(time_limit_ms), &Action::HealAll {})
        );
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        let (mut down, mut paused) = (BTreeSet::new(), BTreeSet::new());
        let mut at = 0;
        for e in &s.events {
            assert!(e.at_ms >= Some(at), "events are in time order");
            at = e.at_ms.expect("timed");
            *count.entry(e.action.name()).or_default() += 1;
            match &e.action {
                Action::Kill { node } => assert!(down.insert(node)),
                Action::Restart { node, .. } => assert!(down.remove(node)),
                Action::Pause { node } => assert!(paused.insert(node)),
                Action::Resume { node } => assert!(paused.remove(node)),
                _ => {}
            }
            assert!(
                down.len() + paused.len() <= (n - 1) / 2,
                "a majority stays up: {e:?}"
            );
        }
        for (fault, heal) in [
            ("kill", "restart"),
            ("pause", "resume"),
            ("partition", "heal_partition"),
            ("clog", "unclog"),
            ("link_faults", "clear_link_faults"),
        ] {
            assert_eq!(
                count.get(fault),
                count.get(heal),
                "{fault} paired with {heal}"
            );
        }
        s
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = check(7, "all", 5, 10_000).to_json();
        assert_eq!(a, check(7, "all", 5, 10_000).to_json());
        assert_ne!(a, check(8, "all", 5, 10_000).to_json());
        let parsed = Schedule::from_json(&a).expect("own output parses");
        assert_eq!(parsed.to_json(), a);
    }

    #[test]
    fn ten_seconds_of_all_kinds_schedules_every_kind() {
        let all: BTreeSet<FaultKind> = FaultKind::ALL.into();
        for n in [3, 5, 7] {
            for seed in 0..200 {
                let s = check(seed, "all", n, 10_000);
                assert_eq!(s.kinds(), all, "seed {seed}, n {n}:\n{}", s.to_json());
            }
        }
    }

    #[test]
    fn only_requested_kinds_and_only_possible_ones() {
        let s = check(1, "partition,drop", 5, 20_000);
        let want = BTreeSet::from([FaultKind::Partition, FaultKind::Drop]);
        assert_eq!(s.kinds(), want);
        // Two nodes: killing one would leave no majority; one node: no links at all.
        assert_eq!(check(1, "kill,pause", 2, 20_000).events.len(), 1);
        assert_eq!(check(1, "all", 1, 20_000).events.len(), 1);
        assert_eq!(check(1, "none", 5, 20_000).events.len(), 1);
    }

    #[test]
    fn many_seeds_and_sizes_stay_valid() {
        for n in 1..=9 {
            for seed in 0..30 {
                check(seed, "all", n, 30_000);
                check(seed, "kill,clog,reorder", n, 5_000);
            }
        }
        let short = NemesisOpts {
            interval_ms: 10,
            ..opts("all")
        };
        let s = expand(3, &short, &nodes(9), 60_000);
        s.validate().expect("valid");
        assert!(s.events.len() <= EVENTS_MAX);
    }

    #[test]
    fn a_track_does_not_move_when_another_kind_is_added() {
        let network = |s: Schedule| -> Vec<ScheduleEvent> {
            let net = |a: &Action| matches!(a, Action::Partition { .. } | Action::HealPartition {});
            s.events.into_iter().filter(|e| net(&e.action)).collect()
        };
        let alone = network(check(5, "partition", 5, 20_000));
        assert!(!alone.is_empty());
        let with_kills: Vec<_> = network(check(5, "partition,kill,drop", 5, 20_000));
        let strip = |v: Vec<ScheduleEvent>| -> Vec<_> {
            v.into_iter().map(|e| (e.at_ms, e.action)).collect()
        };
        assert_eq!(strip(alone), strip(with_kills));
    }
}
