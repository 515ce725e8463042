//! [`SpanBook`]: when each fault was on, as the checkers' explanations and the run report
//! need it. Both execution modes feed it the actions they carried out, with the time.

use std::collections::BTreeMap;

use workloads::verdict::FaultSpan;

use super::action::Action;

/// A span still on, under its key (`partition`, `down n1`, `crash n1`, `exit n1`,
/// `pause n1`, `clog n1`, `link_faults <event id>`).
#[derive(Debug, Clone)]
struct Open {
    id: u32,
    span: FaultSpan,
}

/// A span the last call ended: the event that opened it and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The schedule event that opened the span.
    pub id: u32,
    /// The span's key; `down <node>` for a kill.
    pub key: String,
}

/// The fault spans of one run, open and ended.
#[derive(Debug, Default)]
pub struct SpanBook {
    open: BTreeMap<String, Open>,
    ended: Vec<FaultSpan>,
}

impl SpanBook {
    /// Records what the carried-out event `id` does to the spans at `now_ns`: a partition
    /// replaces the one on, a heal ends it, a kill opens `down <node>` (ended by
    /// [`SpanBook::node_back`]), and so on. Returns the spans it ended.
    pub fn track(&mut self, id: u32, action: &Action, now_ns: u64) -> Vec<Ended> {
        let mut close: Vec<String> = Vec::new();
        let mut open: Option<(String, String)> = None;
        match action {
            Action::Partition { shape, cut, .. } => {
                close.push("partition".into());
                let what = if shape.is_empty() {
                    format!("partition ({} links)", cut.len())
                } else {
                    format!("partition: {shape}")
                };
                open = Some(("partition".into(), what));
            }
            Action::HealPartition {} => close.push("partition".into()),
            Action::Kill { node } => open = Some((format!("down {node}"), format!("kill {node}"))),
            Action::Crash { node } => {
                open = Some((format!("crash {node}"), format!("crash {node}")))
            }
            // A restarted node is down until it answers `init` again: see `node_back`.
            // A wipe of its data dir is an instant: checkers that hold a node to what it
            // said before (stable reads) forgive it only across one.
            Action::Restart {
                node,
                amnesia: true,
            } => {
                self.ended.push(FaultSpan {
                    start: now_ns,
                    end: Some(now_ns),
                    what: format!("amnesia {node}"),
                    kind: "amnesia".into(),
                    nodes: vec![node.clone()],
                });
            }
            Action::Restart { .. } => {}
            Action::Pause { node } => {
                open = Some((format!("pause {node}"), format!("pause {node}")))
            }
            Action::Resume { node } => close.push(format!("pause {node}")),
            Action::LinkFaults { .. } => {
                open = Some((format!("link_faults {id}"), describe_link_faults(action)))
            }
            Action::ClearLinkFaults {} => close.extend(
                self.open
                    .keys()
                    .filter(|k| k.starts_with("link_faults "))
                    .cloned(),
            ),
            Action::Clog { node } => open = Some((format!("clog {node}"), format!("clog {node}"))),
            Action::Unclog { node } => close.push(format!("clog {node}")),
            Action::HealAll {} => close.extend(self.healed_by_heal_all()),
        }
        let ended = close
            .iter()
            .filter_map(|key| self.close(key, now_ns))
            .collect();
        if let Some((key, what)) = open {
            let kind = kind_of(action);
            let nodes = if kind == "partition" {
                Vec::new()
            } else {
                // A link fault names both ends of every link: each node once.
                let mut nodes: Vec<String> = Vec::new();
                for n in action.nodes() {
                    if !nodes.iter().any(|m| m == n) {
                        nodes.push(n.to_string());
                    }
                }
                nodes
            };
            // A node killed again before it came back has been down since the first
            // kill: the span keeps its start (ops lost in the first down time stay
            // forgiven).
            let start = self.open.get(&key).map_or(now_ns, |o| o.span.start);
            let span = FaultSpan {
                start,
                end: None,
                what,
                kind: kind.to_string(),
                nodes,
            };
            self.open.insert(key, Open { id, span });
        }
        ended
    }

    /// Ends the span `key`, if it is on.
    pub fn close(&mut self, key: &str, now_ns: u64) -> Option<Ended> {
        let Open { id, mut span } = self.open.remove(key)?;
        span.end = Some(now_ns);
        self.ended.push(span);
        Some(Ended {
            id,
            key: key.to_string(),
        })
    }

    /// Whether event `id` opened a span that is still on.
    pub fn is_open(&self, id: u32) -> bool {
        self.open.values().any(|o| o.id == id)
    }

    /// A node squall did not kill exited (on its own, or by a signal from elsewhere): it
    /// is down like a killed one, a span of kind `kill` under `exit <node>` that no
    /// heal ends (squall restarts only what it killed). No schedule event opened it, so
    /// no [`Ended`] ever reports it.
    pub fn exited(&mut self, node: &str, what: &str, now_ns: u64) {
        let key = format!("exit {node}");
        if self.open.contains_key(&key) {
            return;
        }
        let span = FaultSpan {
            start: now_ns,
            end: None,
            what: what.to_string(),
            kind: "kill".into(),
            nodes: vec![node.to_string()],
        };
        self.open.insert(key, Open { id: u32::MAX, span });
    }

    /// A killed (or self-exited, then restarted) node answered `init` again: until then
    /// requests sent to it were lost with the process, so its down span ends here.
    pub fn node_back(&mut self, node: &str, now_ns: u64) -> Option<Ended> {
        let _exit = self.close(&format!("exit {node}"), now_ns);
        self.close(&format!("down {node}"), now_ns)
    }

    /// The final heal: ends every network fault and pause (kills end as their nodes come
    /// back; crashes never end).
    pub fn heal_all(&mut self, now_ns: u64) -> Vec<Ended> {
        self.healed_by_heal_all()
            .iter()
            .filter_map(|key| self.close(key, now_ns))
            .collect()
    }

    fn healed_by_heal_all(&self) -> Vec<String> {
        self.open
            .keys()
            .filter(|k| {
                !k.starts_with("crash ") && !k.starts_with("down ") && !k.starts_with("exit ")
            })
            .cloned()
            .collect()
    }

    /// Every span, ended or still on (`end: None`), by start.
    pub fn spans(&self) -> Vec<FaultSpan> {
        let mut all = self.ended.clone();
        all.extend(self.open.values().map(|o| o.span.clone()));
        all.sort_by_key(|s| s.start);
        all
    }
}

fn kind_of(action: &Action) -> &'static str {
    match action {
        Action::Partition { .. } => "partition",
        Action::Kill { .. } | Action::Crash { .. } => "kill",
        Action::Pause { .. } => "pause",
        Action::LinkFaults { .. } => "link_faults",
        Action::Clog { .. } => "clog",
        _ => "",
    }
}

/// `drop 0.05, delay 10+20 ms on all links` and the like.
fn describe_link_faults(action: &Action) -> String {
    let Action::LinkFaults {
        links,
        drop,
        delay,
        duplicate,
        reorder,
        ..
    } = action
    else {
        return String::new();
    };
    let mut parts = Vec::new();
    if *drop > 0.0 {
        parts.push(format!("drop {drop}"));
    }
    if let Some(d) = delay {
        parts.push(format!("delay {}+{} ms", d.base_ms, d.jitter_ms));
    }
    if *duplicate > 0.0 {
        parts.push(format!("duplicate {duplicate}"));
    }
    if *reorder > 0.0 {
        parts.push(format!("reorder {reorder}"));
    }
    let on = match links {
        super::LinkSet::All => "all links".to_string(),
        super::LinkSet::Only(l) => format!("{} links", l.len()),
    };
    format!("{} on {on}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_replaces_the_one_on_and_a_heal_ends_it() {
        let mut book = SpanBook::default();
        let cut = |s: &str, d: &str| (s.to_string(), d.to_string());
        let p = |shape: &str| Action::Partition {
            shape: shape.into(),
            cut: vec![cut("n1", "n2")],
            mode: Default::default(),
        };
        assert!(book.track(1, &p("a"), 10).is_empty());
        let ended = book.track(2, &p("b"), 20);
        assert_eq!(
            ended,
            vec![Ended {
                id: 1,
                key: "partition".into()
            }]
        );
        book.track(3, &Action::HealPartition {}, 30);
        let spans = book.spans();
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].start, spans[0].end), (10, Some(20)));
        assert_eq!((spans[1].start, spans[1].end), (20, Some(30)));
        assert_eq!(spans[1].what, "partition: b");
    }

    #[test]
    fn a_link_fault_names_each_node_of_its_links_once() {
        let action: Action = serde_json::from_value(serde_json::json!({
            "action": "link_faults", "drop": 0.5,
            "links": [["n1", "n2"], ["n2", "n1"], ["n2", "n3"]]
        }))
        .expect("a link_faults action");
        let mut book = SpanBook::default();
        book.track(1, &action, 0);
        assert_eq!(book.spans()[0].nodes, ["n1", "n2", "n3"]);
    }

    #[test]
    fn kills_end_when_the_node_is_back_and_crashes_never() {
        let mut book = SpanBook::default();
        book.track(1, &Action::Kill { node: "n1".into() }, 5);
        book.track(2, &Action::Crash { node: "n2".into() }, 6);
        book.track(3, &Action::Pause { node: "n3".into() }, 7);
        assert_eq!(
            book.heal_all(50).len(),
            1,
            "only the pause ends at the heal"
        );
        assert!(book.node_back("n1", 60).is_some());
        let spans = book.spans();
        let end_of = |what: &str| spans.iter().find(|s| s.what == what).unwrap().end;
        assert_eq!(end_of("kill n1"), Some(60));
        assert_eq!(end_of("crash n2"), None);
        assert_eq!(end_of("pause n3"), Some(50));
        assert_eq!(spans[0].nodes, vec!["n1".to_string()]);
    }

    #[test]
    fn a_node_that_exits_on_its_own_is_down_like_a_killed_one() {
        let mut book = SpanBook::default();
        book.exited("n2", "n2 exited on its own (exit code 0)", 40);
        book.exited("n2", "again", 45);
        assert!(book.heal_all(50).is_empty(), "no heal brings it back");
        let spans = book.spans();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].kind, "kill");
        assert_eq!(spans[0].end, None);
        assert!(spans[0].downs("n2", 100, 200));
        assert!(!spans[0].downs("n2", 0, 39));
        assert_eq!(book.node_back("n2", 70), None, "no event to confirm");
        assert_eq!(book.spans()[0].end, Some(70));
    }

    #[test]
    fn a_node_killed_again_before_it_came_back_is_down_since_the_first_kill() {
        let mut book = SpanBook::default();
        book.track(1, &Action::Kill { node: "n2".into() }, 7_070);
        book.track(
            2,
            &Action::Restart {
                node: "n2".into(),
                amnesia: false,
            },
            7_500,
        );
        book.track(3, &Action::Kill { node: "n2".into() }, 8_970);
        assert!(book.node_back("n2", 9_400).is_some());
        let spans = book.spans();
        assert_eq!(spans.len(), 1);
        assert_eq!((spans[0].start, spans[0].end), (7_070, Some(9_400)));
    }
}
