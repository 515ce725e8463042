//! `multicast`: clients ask nodes to multicast values to the group; every node reports
//! each delivery (`delivered {value, seq}`), and final reads (`mcast_read`) ask each node
//! for its whole delivery sequence in the quiet window.
//!
//! Values are a counter from 1, so a delivered value names the op that multicast it, and
//! its sender is the node that op was sent to. The checkers judge the guarantee asked for
//! with `--order` and `--reliable` (by default the one the algorithm claims, from
//! `squall-node --list-json`), one checker per property, each in [`checks`]:
//!
//! - `multicast-integrity` (always): no node delivers a value twice in one incarnation,
//!   nothing that was never multicast, and a node's final read agrees with its reports;
//! - `multicast-fifo`: two multicasts by the same node, the first answered before the
//!   second was asked for, are delivered in that order everywhere;
//! - `multicast-causal`: if m → m', every node delivers m before m';
//! - `multicast-total`: every two nodes deliver their common messages in the same order;
//! - `multicast-reliable`: every correct node delivers what any correct node delivers,
//!   and a correct node delivers every multicast it answered `mcast_ok` for.
//!
//! Causality is the harness's own record, never the algorithm's clocks ([`record`]): m →
//! m' when m' was multicast by the node that had already multicast m (its `mcast_ok`
//! came back before m' was invoked), or by a node that had already reported delivering m
//! (the report's stamp is earlier than m''s invoke), and the transitive closure of both.
//! A node killed or crashed is not correct: it forgets, and a restarted node is a new
//! incarnation whose deliveries are judged as a sequence of their own.

use std::fmt;
use std::str::FromStr;

use proto::ops::ClientOp;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::verdict::Checker;
use crate::workload::{Workload, WorkloadOpts};

pub mod checks;
pub mod record;

/// An ordering guarantee (`--order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// No order: integrity only.
    #[default]
    None,
    /// Per-sender send order.
    Fifo,
    /// Happens-before order (implies FIFO).
    Causal,
    /// One order at every node.
    Total,
    /// FIFO and total.
    FifoTotal,
    /// Causal and total.
    CausalTotal,
}

impl Order {
    /// Every order, in `--order`'s list.
    pub const ALL: [Order; 6] = [
        Order::None,
        Order::Fifo,
        Order::Causal,
        Order::Total,
        Order::FifoTotal,
        Order::CausalTotal,
    ];

    /// The name `--order` takes.
    pub fn name(self) -> &'static str {
        match self {
            Order::None => "none",
            Order::Fifo => "fifo",
            Order::Causal => "causal",
            Order::Total => "total",
            Order::FifoTotal => "fifo-total",
            Order::CausalTotal => "causal-total",
        }
    }

    /// Whether FIFO is judged (causal implies it, so it is judged too).
    pub fn fifo(self) -> bool {
        !matches!(self, Order::None | Order::Total)
    }

    /// Whether causal order is judged.
    pub fn causal(self) -> bool {
        matches!(self, Order::Causal | Order::CausalTotal)
    }

    /// Whether total order is judged.
    pub fn total(self) -> bool {
        matches!(self, Order::Total | Order::FifoTotal | Order::CausalTotal)
    }
}

impl FromStr for Order {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Order::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Order::ALL.iter().map(|o| o.name()).collect();
                format!("unknown order '{s}' (valid: {})", names.join(", "))
            })
    }
}

/// What a multicast run is judged for: an order, and whether reliability is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Guarantee {
    /// The ordering property.
    pub order: Order,
    /// Whether every correct node must deliver the same set.
    pub reliable: bool,
}

impl fmt::Display for Guarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reliable = if self.reliable { "+reliable" } else { "" };
        write!(f, "{}{reliable}", self.order.name())
    }
}

/// Reads `order` or `order+reliable`, the form algorithms declare.
impl FromStr for Guarantee {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (order, reliable) = match s.strip_suffix("+reliable") {
            Some(order) => (order, true),
            None => (s, false),
        };
        Ok(Guarantee {
            order: order.parse()?,
            reliable,
        })
    }
}

impl Serialize for Guarantee {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Guarantee {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The multicast op generator.
#[derive(Debug, Clone)]
pub struct MulticastWorkload {
    guarantee: Guarantee,
    value_last: u64,
}

impl MulticastWorkload {
    /// A generator whose checkers judge `opts.guarantee`.
    pub fn new(opts: &WorkloadOpts) -> Self {
        MulticastWorkload {
            guarantee: opts.guarantee,
            value_last: 0,
        }
    }
}

impl Workload for MulticastWorkload {
    fn name(&self) -> &'static str {
        "multicast"
    }

    fn next_op(&mut self, _rng: &mut ChaCha8Rng) -> ClientOp {
        self.value_last += 1;
        ClientOp::Mcast {
            value: self.value_last,
        }
    }

    fn final_ops(&self) -> Vec<ClientOp> {
        vec![ClientOp::McastRead]
    }

    fn checkers(&self) -> Vec<Box<dyn Checker>> {
        checks::for_guarantee(self.guarantee)
    }

    fn default_algorithm(&self) -> &'static str {
        "causal"
    }

    fn instances_default(&self) -> Option<u64> {
        Some(1)
    }
}

#[cfg(test)]
mod tests;
