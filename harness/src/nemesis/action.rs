//! Actions: what one schedule event does, and who carries it out.
//!
//! An [`Action`] is the serialised, hand-editable form. [`Action::net`] gives the
//! router's part ([`NetAction`], applied to the [`LinkTable`](super::LinkTable)) and
//! [`Action::process`] the supervisor's part ([`ProcessAction`]); `heal_all` has both.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{DelaySpec, FaultKind, Link, LinkFaults};

/// What a partition does to the messages on its cut links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionMode {
    /// Messages are dropped, as by a real network partition.
    #[default]
    Cut,
    /// Messages are queued and released, in order, when the partition heals.
    Hold,
}

/// The links a `link_faults` event applies to: `"all"` or `[["n1", "n2"], ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkSet {
    /// Every directed link between two cluster nodes.
    All,
    /// These directed links.
    Only(Vec<Link>),
}

impl Serialize for LinkSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LinkSet::All => s.serialize_str("all"),
            LinkSet::Only(links) => links.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for LinkSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LinkSetVisitor;
        impl<'de> Visitor<'de> for LinkSetVisitor {
            type Value = LinkSet;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\" or a list of [src, dest] pairs")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LinkSet, E> {
                match v {
                    "all" => Ok(LinkSet::All),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LinkSet, A::Error> {
                let mut links = Vec::new();
                while let Some(link) = seq.next_element::<Link>()? {
                    links.push(link);
                }
                Ok(LinkSet::Only(links))
            }
        }
        d.deserialize_any(LinkSetVisitor)
    }
}

/// One fault or heal. Serialised with the tag `"action"` next to its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Cut (or hold) the listed directed links; replaces any partition already active.
    Partition {
        /// A name for humans (`"isolate n1"`); the links are what counts.
        #[serde(default)]
        shape: String,
        /// The directed links `[src, dest]` that stop carrying messages.
        cut: Vec<Link>,
        /// Drop (`cut`, the default) or queue (`hold`) their messages.
        #[serde(default)]
        mode: PartitionMode,
    },
    /// Lift the active partition (held messages are released).
    HealPartition {},
    /// SIGKILL a node.
    Kill {
        /// The node.
        node: String,
    },
    /// SIGKILL a node for good (crash-stop): no event, not even the final heal,
    /// restarts it.
    Crash {
        /// The node.
        node: String,
    },
    /// Start a killed node again.
    Restart {
        /// The node.
        node: String,
        /// Wipe its data dir first.
        #[serde(default)]
        amnesia: bool,
    },
    /// SIGSTOP a node.
    Pause {
        /// The node.
        node: String,
    },
    /// SIGCONT a paused node.
    Resume {
        /// The node.
        node: String,
    },
    /// Put message faults on links, replacing the faults already on those links.
    LinkFaults {
        /// Which links.
        links: LinkSet,
        /// Drop probability.
        #[serde(default)]
        drop: f64,
        /// Delay of every delivered copy.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay: Option<DelaySpec>,
        /// Duplication probability.
        #[serde(default)]
        duplicate: f64,
        /// Reorder probability.
        #[serde(default)]
        reorder: f64,
        /// Only messages with these body types are affected (absent: all).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        msg_types: Option<BTreeSet<String>>,
    },
    /// Remove message faults from every link.
    ClearLinkFaults {},
    /// Hold every message into and out of a node (to and from other nodes).
    Clog {
        /// The node.
        node: String,
    },
    /// Release a clogged node's links (held messages are released).
    Unclog {
        /// The node.
        node: String,
    },
    /// Lift every network fault, restart every killed node, resume every paused one.
    HealAll {},
}

/// The router's part of an action, applied with [`LinkTable::apply`](super::LinkTable::apply).
#[derive(Debug, Clone, PartialEq)]
pub enum NetAction {
    /// Replace the active partition with this one.
    Partition {
        /// Directed links to cut or hold.
        cut: Vec<Link>,
        /// Cut or hold.
        mode: PartitionMode,
    },
    /// Lift the active partition.
    HealPartition,
    /// Set message faults on links.
    LinkFaults {
        /// Which links.
        links: LinkSet,
        /// The faults.
        faults: LinkFaults,
    },
    /// Remove message faults from every link.
    ClearLinkFaults,
    /// Hold every node-to-node message into and out of `node`.
    Clog {
        /// The node.
        node: String,
    },
    /// Stop holding a node's messages.
    Unclog {
        /// The node.
        node: String,
    },
    /// Lift partition, clogs and message faults.
    HealAll,
}

/// The supervisor's part of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessAction {
    /// SIGKILL the node.
    Kill {
        /// The node.
        node: String,
    },
    /// SIGKILL the node and never restart it.
    Crash {
        /// The node.
        node: String,
    },
    /// Start the killed node again, with a wiped data dir if `amnesia`.
    Restart {
        /// The node.
        node: String,
        /// Wipe its data dir first.
        amnesia: bool,
    },
    /// SIGSTOP the node.
    Pause {
        /// The node.
        node: String,
    },
    /// SIGCONT the node.
    Resume {
        /// The node.
        node: String,
    },
    /// Restart every killed node (keeping its data) and resume every paused node.
    RestoreAll,
}

impl Action {
    /// The action's tag as written in JSON (`"kill"`).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Partition { .. } => "partition",
            Action::HealPartition {} => "heal_partition",
            Action::Kill { .. } => "kill",
            Action::Crash { .. } => "crash",
            Action::Restart { .. } => "restart",
            Action::Pause { .. } => "pause",
            Action::Resume { .. } => "resume",
            Action::LinkFaults { .. } => "link_faults",
            Action::ClearLinkFaults {} => "clear_link_faults",
            Action::Clog { .. } => "clog",
            Action::Unclog { .. } => "unclog",
            Action::HealAll {} => "heal_all",
        }
    }

    /// The router's part, if any.
    pub fn net(&self) -> Option<NetAction> {
        Some(match self {
            Action::Partition { cut, mode, .. } => NetAction::Partition {
                cut: cut.clone(),
                mode: *mode,
            },
            Action::HealPartition {} => NetAction::HealPartition,
            Action::LinkFaults { .. } => {
                let (links, faults) = self.link_faults()?;
                NetAction::LinkFaults {
                    links: links.clone(),
                    faults,
                }
            }
            Action::ClearLinkFaults {} => NetAction::ClearLinkFaults,
            Action::Clog { node } => NetAction::Clog { node: node.clone() },
            Action::Unclog { node } => NetAction::Unclog { node: node.clone() },
            Action::HealAll {} => NetAction::HealAll,
            Action::Kill { .. }
            | Action::Crash { .. }
            | Action::Restart { .. }
            | Action::Pause { .. }
            | Action::Resume { .. } => return None,
        })
    }

    /// A `link_faults` action's links and the faults it puts on them; `None` for others.
    pub fn link_faults(&self) -> Option<(&LinkSet, LinkFaults)> {
        match self {
            Action::LinkFaults {
                links,
                drop,
                delay,
                duplicate,
                reorder,
                msg_types,
            } => Some((
                links,
                LinkFaults {
                    drop: *drop,
                    delay: *delay,
                    duplicate: *duplicate,
                    reorder: *reorder,
                    msg_types: msg_types.clone(),
                },
            )),
            _ => None,
        }
    }

    /// The supervisor's part, if any.
    pub fn process(&self) -> Option<ProcessAction> {
        Some(match self {
            Action::Kill { node } => ProcessAction::Kill { node: node.clone() },
            Action::Crash { node } => ProcessAction::Crash { node: node.clone() },
            Action::Restart { node, amnesia } => ProcessAction::Restart {
                node: node.clone(),
                amnesia: *amnesia,
            },
            Action::Pause { node } => ProcessAction::Pause { node: node.clone() },
            Action::Resume { node } => ProcessAction::Resume { node: node.clone() },
            Action::HealAll {} => ProcessAction::RestoreAll,
            _ => return None,
        })
    }

    /// The fault kinds this action starts (empty for heals).
    pub fn fault_kinds(&self) -> Vec<FaultKind> {
        match self {
            Action::Partition { .. } => vec![FaultKind::Partition],
            Action::Kill { .. } => vec![FaultKind::Kill],
            Action::Crash { .. } => vec![FaultKind::Crash],
            Action::Pause { .. } => vec![FaultKind::Pause],
            Action::Clog { .. } => vec![FaultKind::Clog],
            Action::LinkFaults { .. } => self
                .link_faults()
                .map_or_else(Vec::new, |(_, faults)| faults.kinds()),
            _ => Vec::new(),
        }
    }

    /// Every node name the action mentions, links' endpoints included, in order.
    pub fn nodes(&self) -> Vec<&str> {
        match self {
            Action::Partition { cut: links, .. }
            | Action::LinkFaults {
                links: LinkSet::Only(links),
                ..
            } => links
                .iter()
                .flat_map(|(src, dest)| [src.as_str(), dest.as_str()])
                .collect(),
            Action::Kill { node }
            | Action::Crash { node }
            | Action::Restart { node, .. }
            | Action::Pause { node }
            | Action::Resume { node }
            | Action::Clog { node }
            | Action::Unclog { node } => vec![node.as_str()],
            Action::HealPartition {}
            | Action::LinkFaults {
                links: LinkSet::All,
                ..
            }
            | Action::ClearLinkFaults {}
            | Action::HealAll {} => Vec::new(),
        }
    }

    /// Calls `f` on every node name the action mentions, to rewrite it in place.
    pub fn map_nodes(&mut self, mut f: impl FnMut(&mut String)) {
        match self {
            Action::Partition { cut: links, .. }
            | Action::LinkFaults {
                links: LinkSet::Only(links),
                ..
            } => {
                for (src, dest) in links {
                    f(src);
                    f(dest);
                }
            }
            Action::Kill { node }
            | Action::Crash { node }
            | Action::Restart { node, .. }
            | Action::Pause { node }
            | Action::Resume { node }
            | Action::Clog { node }
            | Action::Unclog { node } => f(node),
            Action::HealPartition {}
            | Action::LinkFaults {
                links: LinkSet::All,
                ..
            }
            | Action::ClearLinkFaults {}
            | Action::HealAll {} => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Action, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn every_action_round_trips() {
        let json = [
            r#"{"action":"partition","shape":"isolate n1","cut":[["n1","n2"]],"mode":"hold"}"#,
            r#"{"action":"heal_partition"}"#,
            r#"{"action":"kill","node":"n1"}"#,
            r#"{"action":"restart","node":"n1","amnesia":true}"#,
            r#"{"action":"pause","node":"n2"}"#,
            r#"{"action":"resume","node":"n2"}"#,
            r#"{"action":"link_faults","links":"all","drop":0.1,"delay":{"dist":"uniform","base_ms":5,"jitter_ms":20},"duplicate":0.0,"reorder":0.5,"msg_types":["accept"]}"#,
            r#"{"action":"link_faults","links":[["n1","n2"]],"drop":0.0,"duplicate":0.2,"reorder":0.0}"#,
            r#"{"action":"clear_link_faults"}"#,
            r#"{"action":"clog","node":"n3"}"#,
            r#"{"action":"unclog","node":"n3"}"#,
            r#"{"action":"heal_all"}"#,
        ];
        for j in json {
            let action = parse(j).expect(j);
            assert_eq!(serde_json::to_string(&action).expect("serialises"), j);
        }
    }

    #[test]
    fn defaults_fill_omitted_fields() {
        let a = parse(r#"{"action":"partition","cut":[["n1","n2"]]}"#).expect("valid");
        let want = NetAction::Partition {
            cut: vec![l("n1", "n2")],
            mode: PartitionMode::Cut,
        };
        assert_eq!(a.net(), Some(want));
        let a = parse(r#"{"action":"restart","node":"n1"}"#).expect("valid");
        let want = ProcessAction::Restart {
            node: "n1".into(),
            amnesia: false,
        };
        assert_eq!(a.process(), Some(want));
        let a = parse(r#"{"action":"link_faults","links":"all","drop":0.5}"#).expect("valid");
        assert_eq!(a.fault_kinds(), vec![FaultKind::Drop]);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = parse(r#"{"action":"kil","node":"n1"}"#).expect_err("unknown action");
        assert!(
            e.contains("unknown variant `kil`, expected one of `partition`"),
            "{e}"
        );
        let e = parse(r#"{"action":"kill","nod":"n1"}"#).expect_err("typo");
        assert!(e.contains("unknown field `nod`"), "{e}");
        let e = parse(r#"{"action":"heal_all","node":"n1"}"#).expect_err("no fields");
        assert!(e.contains("unknown field `node`"), "{e}");
        let e = parse(r#"{"action":"link_faults","links":"some"}"#).expect_err("bad links");
        assert!(e.contains(r#""all" or a list of [src, dest] pairs"#), "{e}");
    }

    #[test]
    fn heal_all_is_both_net_and_process() {
        let a = Action::HealAll {};
        assert_eq!(a.net(), Some(NetAction::HealAll));
        assert_eq!(a.process(), Some(ProcessAction::RestoreAll));
        assert_eq!(Action::Kill { node: "n1".into() }.net(), None);
    }

    #[test]
    fn map_nodes_reaches_every_name() {
        let mut a = Action::Partition {
            shape: String::new(),
            cut: vec![l("$src", "n2"), l("n2", "$src")],
            mode: PartitionMode::Cut,
        };
        a.map_nodes(|n| {
            if n == "$src" {
                *n = "n1".into();
            }
        });
        assert_eq!(a.nodes(), ["n1", "n2", "n2", "n1"]);
    }

    fn l(a: &str, b: &str) -> Link {
        (a.to_string(), b.to_string())
    }
}
