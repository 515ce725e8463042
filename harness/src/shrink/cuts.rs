//! What a shrink cuts, as pure functions of a schedule: fault events grouped into units
//! that stand or fall together, a schedule with only some units, the time limit clamped,
//! an event's duration or rate scaled.

use std::collections::BTreeMap;

use crate::nemesis::{Action, Schedule, ScheduleEvent};

/// Events that start a fault (not heals, restarts or resumes).
pub fn fault_events(schedule: &Schedule) -> usize {
    schedule
        .events
        .iter()
        .filter(|e| is_fault(&e.action))
        .count()
}

pub(super) fn is_fault(action: &Action) -> bool {
    matches!(
        action,
        Action::Partition { .. }
            | Action::Kill { .. }
            | Action::Crash { .. }
            | Action::Pause { .. }
            | Action::Clog { .. }
            | Action::LinkFaults { .. }
    )
}

/// Groups the events of `schedule` into units that are removed together, as lists of
/// indexes into `schedule.events`, in the order of their first event. The last event,
/// if it is a `heal_all`, belongs to no unit: it is always kept.
pub fn units(schedule: &Schedule) -> Vec<Vec<usize>> {
    let events = &schedule.events;
    let keep_last = matches!(events.last().map(|e| &e.action), Some(Action::HealAll {}));
    let end = if keep_last {
        events.len() - 1
    } else {
        events.len()
    };
    let mut units: Vec<Vec<usize>> = Vec::new();
    // Triggered events: one unit per distinct (trigger, at_ms).
    let mut by_trigger: BTreeMap<String, usize> = BTreeMap::new();
    // Timed events in firing order (at_ms, then file order).
    let mut timed: Vec<usize> = Vec::new();
    for (i, e) in events[..end].iter().enumerate() {
        if let Some(on) = &e.on {
            let key = format!(
                "{}|{:?}",
                serde_json::to_string(on).unwrap_or_default(),
                e.at_ms
            );
            match by_trigger.get(&key) {
                Some(&u) => units[u].push(i),
                None => {
                    by_trigger.insert(key, units.len());
                    units.push(vec![i]);
                }
            }
        } else {
            timed.push(i);
        }
    }
    timed.sort_by_key(|&i| (events[i].at_ms, i));
    // Open units waiting for their heal.
    let mut partition: Option<usize> = None;
    let mut link: Option<usize> = None;
    let mut down: BTreeMap<String, usize> = BTreeMap::new();
    let mut paused: BTreeMap<String, usize> = BTreeMap::new();
    let mut clogged: BTreeMap<String, usize> = BTreeMap::new();
    for i in timed {
        let new = |units: &mut Vec<Vec<usize>>| {
            units.push(vec![i]);
            units.len() - 1
        };
        // A heal joins the unit it closes, or stands alone when nothing was open.
        let close = |units: &mut Vec<Vec<usize>>, open: Option<usize>| match open {
            Some(u) => units[u].push(i),
            None => {
                new(units);
            }
        };
        match &events[i].action {
            Action::Partition { .. } => partition = Some(new(&mut units)),
            Action::HealPartition {} => close(&mut units, partition.take()),
            Action::LinkFaults { .. } => link = Some(new(&mut units)),
            Action::ClearLinkFaults {} => close(&mut units, link.take()),
            Action::Kill { node } => {
                down.insert(node.clone(), new(&mut units));
            }
            Action::Restart { node, .. } => close(&mut units, down.remove(node)),
            Action::Pause { node } => {
                paused.insert(node.clone(), new(&mut units));
            }
            Action::Resume { node } => close(&mut units, paused.remove(node)),
            Action::Clog { node } => {
                clogged.insert(node.clone(), new(&mut units));
            }
            Action::Unclog { node } => close(&mut units, clogged.remove(node)),
            Action::Crash { .. } => {
                new(&mut units);
            }
            Action::HealAll {} => {
                new(&mut units);
                partition = None;
                link = None;
                down.clear();
                paused.clear();
                clogged.clear();
            }
        }
    }
    units.sort_by_key(|u| u.iter().min().copied());
    units
}

/// `schedule` with only the units `keep` (indexes into `all`) and the events in no unit.
pub(super) fn with_units(schedule: &Schedule, all: &[Vec<usize>], keep: &[usize]) -> Schedule {
    let mut dropped: Vec<bool> = vec![false; schedule.events.len()];
    for u in all {
        for &i in u {
            dropped[i] = true;
        }
    }
    for &k in keep {
        for &i in &all[k] {
            dropped[i] = false;
        }
    }
    let mut s = schedule.clone();
    s.events = schedule
        .events
        .iter()
        .zip(&dropped)
        .filter(|(_, d)| !**d)
        .map(|(e, _)| e.clone())
        .collect();
    s
}

/// Re-sorts the timed events by time (stable, so ties keep their file order); triggered
/// events stay where they are relative to each other, after the timed ones they followed.
pub(super) fn sort_timed(s: &mut Schedule) {
    s.events.sort_by_key(|e| e.at_ms.unwrap_or(0));
}

/// `s` with `time_limit_ms = limit`: timed events past it are dropped, except a
/// `heal_all`, which moves to the new limit.
pub fn clamp_time(s: &Schedule, limit: u64) -> Schedule {
    let mut out = s.clone();
    out.time_limit_ms = limit;
    out.events = s
        .events
        .iter()
        .filter_map(|e| match e.at_ms {
            Some(at) if at > limit => {
                if matches!(e.action, Action::HealAll {}) {
                    let mut e = e.clone();
                    e.at_ms = Some(limit);
                    Some(e)
                } else {
                    None
                }
            }
            _ => Some(e.clone()),
        })
        .collect();
    out
}

/// Scales one link fault field of `e` by `factor` (0 removes it); a description, or
/// `None` if there is nothing to lower.
pub(super) fn scale_field(e: &mut ScheduleEvent, field: &str, factor: f64) -> Option<String> {
    let Action::LinkFaults {
        drop,
        delay,
        duplicate,
        reorder,
        ..
    } = &mut e.action
    else {
        return None;
    };
    let p = match field {
        "drop" => drop,
        "duplicate" => duplicate,
        "reorder" => reorder,
        _ => {
            let d = delay.as_mut()?;
            if factor == 0.0 {
                *delay = None;
                return Some("no delay".into());
            }
            if d.base_ms + d.jitter_ms < 2 {
                return None;
            }
            let before = (d.base_ms, d.jitter_ms);
            d.base_ms = (d.base_ms as f64 * factor) as u64;
            d.jitter_ms = (d.jitter_ms as f64 * factor) as u64;
            return Some(format!(
                "delay {}+{} -> {}+{} ms",
                before.0, before.1, d.base_ms, d.jitter_ms
            ));
        }
    };
    if *p <= 0.0 {
        return None;
    }
    let before = *p;
    *p = (before * factor * 1000.0).round() / 1000.0;
    Some(format!("{field} {before} -> {}", *p))
}
