//! Rows for the sequence diagram. Rows, not a linear time scale, give the vertical
//! positions: events go down in time order and take a new row only when their lifeline
//! needs one (or a delivery must sit below its send), so concurrent events share rows;
//! a broadcast from one step is one row of arrows fanning out, and same-type deliveries
//! to one node close together fan in. Long quiet stretches become gaps.

use std::collections::BTreeMap;

use super::{Mark, Msg};

/// Events of one lifeline this close (and alike) share a row.
const MERGE_NS: u64 = 300_000;
/// A quiet stretch longer than this is drawn as a gap.
const GAP_NS: u64 = 2_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum EvKind {
    Send,
    Recv,
    Mark,
}

#[derive(Debug, Clone)]
pub(super) struct Ev {
    pub at_ns: u64,
    pub kind: EvKind,
    pub col: usize,
    /// Index into the arrows or the marks.
    pub item: usize,
}

/// The events to place: each arrow's send, its receipt if it was delivered (never
/// before its send), and each mark. `col_of` gives a node's lifeline; every arrow end
/// and mark must have one.
pub(super) fn events(arrows: &[Msg], marks: &[Mark], col_of: impl Fn(&str) -> usize) -> Vec<Ev> {
    let ends = arrows.iter().enumerate().flat_map(|(i, m)| {
        let send = (m.sent_ns, EvKind::Send, m.src.as_str(), i);
        let recv = (m.fate == "delivered").then(|| {
            let at_ns = m.at_ns.unwrap_or(m.sent_ns).max(m.sent_ns);
            (at_ns, EvKind::Recv, m.dest.as_str(), i)
        });
        std::iter::once(send).chain(recv)
    });
    let marks = marks
        .iter()
        .enumerate()
        .map(|(i, m)| (m.at_ns, EvKind::Mark, m.node.as_str(), i));
    ends.chain(marks)
        .map(|(at_ns, kind, node, item)| Ev {
            at_ns,
            kind,
            col: col_of(node),
            item,
        })
        .collect()
}

/// Rows for every event (see the module doc).
pub(super) fn layout(
    events: &mut [Ev],
    arrows: &[Msg],
    cols: usize,
) -> (Vec<usize>, Vec<(usize, u64)>) {
    events.sort_by_key(|e| (e.at_ns, e.kind, e.col, e.item));
    let mut row = vec![0usize; events.len()];
    let mut send_row: BTreeMap<usize, usize> = BTreeMap::new();
    // Per column: the last event's row, kind, type and time; and the last send's.
    let mut last: Vec<Option<(usize, EvKind, &str, u64)>> = vec![None; cols];
    let mut last_send: Vec<Option<(usize, EvKind, &str, u64)>> = vec![None; cols];
    let mut floor = 0usize;
    let mut max_row = 0usize;
    let mut gaps = Vec::new();
    let mut prev_t: Option<u64> = None;
    for (i, e) in events.iter().enumerate() {
        if let Some(p) = prev_t {
            if e.at_ns.saturating_sub(p) > GAP_NS {
                floor = max_row + 2;
                gaps.push((max_row + 1, e.at_ns - p));
            }
        }
        prev_t = Some(e.at_ns);
        let ty = match e.kind {
            EvKind::Mark => "",
            _ => arrows[e.item].ty.as_str(),
        };
        let below_send = match e.kind {
            EvKind::Recv => send_row.get(&e.item).map_or(0, |r| r + 1),
            _ => 0,
        };
        // A broadcast's copies join their first send's row even when a copy to the
        // sender itself was delivered in between; a delivery joins only the event
        // right before it on its lifeline.
        let before = if e.kind == EvKind::Send {
            last_send[e.col]
        } else {
            last[e.col]
        };
        let merged = match before {
            Some((r, k, t, at))
                if k == e.kind
                    && k != EvKind::Mark
                    && t == ty
                    && e.at_ns.saturating_sub(at) <= MERGE_NS
                    && r >= below_send =>
            {
                Some(r)
            }
            _ => None,
        };
        let r = merged.unwrap_or_else(|| {
            let need = last[e.col].map_or(0, |(r, ..)| r + 1);
            need.max(below_send).max(floor)
        });
        row[i] = r;
        if e.kind == EvKind::Send {
            send_row.insert(e.item, r);
            last_send[e.col] = Some((r, e.kind, ty, e.at_ns));
        }
        // A merged send may sit above the column's latest row; the column goes on below.
        let col_row = last[e.col].map_or(r, |(prev, ..)| prev.max(r));
        last[e.col] = Some((col_row, e.kind, ty, e.at_ns));
        floor = floor.max(r);
        max_row = max_row.max(r);
    }
    (row, gaps)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::test_msg as msg;

    fn rows_of(arrows: &[Msg]) -> Vec<(EvKind, usize, usize)> {
        let col = |n: &str| n[1..].parse::<usize>().unwrap() - 1;
        let mut events = events(arrows, &[], col);
        let (rows, _) = layout(&mut events, arrows, 3);
        let mut out: Vec<(EvKind, usize, usize)> = events
            .iter()
            .zip(rows)
            .map(|(e, r)| (e.kind, e.item, r))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_broadcast_fans_out_in_one_row_and_replies_fan_in() {
        let arrows = [
            msg(0, 5, "n1", "n2", "prepare"),
            msg(1, 6, "n1", "n3", "prepare"),
            msg(20, 25, "n2", "n1", "promise"),
            msg(21, 26, "n3", "n1", "promise"),
        ];
        let rows = rows_of(&arrows);
        use EvKind::*;
        assert_eq!(
            rows,
            vec![
                (Send, 0, 0),
                (Send, 1, 0),
                (Send, 2, 2),
                (Send, 3, 2),
                (Recv, 0, 1),
                (Recv, 1, 1),
                (Recv, 2, 3),
                (Recv, 3, 3),
            ]
        );
    }

    #[test]
    fn a_delivery_is_always_below_its_send() {
        let arrows = [
            msg(0, 0, "n1", "n2", "a"),
            msg(0, 0, "n2", "n1", "b"),
            msg(1, 1, "n1", "n1", "c"),
        ];
        let rows = rows_of(&arrows);
        for item in 0..3 {
            let send = rows
                .iter()
                .find(|r| r.0 == EvKind::Send && r.1 == item)
                .unwrap()
                .2;
            let recv = rows
                .iter()
                .find(|r| r.0 == EvKind::Recv && r.1 == item)
                .unwrap()
                .2;
            assert!(recv > send, "item {item}: {send} -> {recv}");
        }
    }
}
