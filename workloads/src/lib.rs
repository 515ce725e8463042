//! squall workloads: what clients do, what is recorded, and how it is judged.
//!
//! - [`history`]: the Jepsen-shaped history (`invoke` / `ok` / `fail` / `info`) and its
//!   pairing into [`history::Op`]s.
//! - [`verdict`]: [`verdict::Verdict`] and the [`verdict::Checker`] trait every checker
//!   implements.
//! - [`workload`]: the [`workload::Workload`] trait (op generator + checkers) and the
//!   registry of workloads by name.
//! - [`echo`]: the smallest workload.
//! - [`durability`]: what a node finds after SIGKILL is what it synced.
//! - [`write_once`] and [`consensus`]: write-once instances judged by agreement, validity
//!   and termination; [`linearizable`]: the same runs judged as one linearizable
//!   write-once register per instance; [`stable_reads`]: no node takes back a decision
//!   it announced.
//! - Maelstrom's workloads, whose requests are bodies of any JSON ([`maelstrom`] has what
//!   they share): [`unique_ids`], [`g_set`], [`g_counter`] and [`pn_counter`] (both judged
//!   by [`counter`]).
//! - [`lin_kv`]: read/write/cas on a few keys of a replicated store, judged by
//!   lincheck's `kv` model and by final reads at every live node.
//! - [`broadcast`] and [`kafka`]: Maelstrom's workloads of those names, with its bodies;
//!   every acknowledged message reaches every node, and a log that loses, reuses or
//!   skips no offset.
//! - [`multicast`]: values multicast to the group, judged for FIFO, causal and total
//!   order, reliability and integrity from the nodes' delivery reports.
//! - [`bank`]: transfers between accounts and Chandy-Lamport global snapshots, judged by
//!   conservation of money and consistency of each cut.
//! - [`txn`]: Maelstrom's `txn-rw-register`, transactions of register reads and writes
//!   judged for Adya's G0, G1a, G1b, G1c and internal consistency.
//! - [`deadlock`]: nodes wait for each other; snapshot-based deadlock detection judged
//!   against the waits the history shows standing.
#![deny(missing_docs)]

pub mod bank;
pub mod broadcast;
pub mod consensus;
pub mod counter;
pub mod deadlock;
pub mod durability;
pub mod echo;
pub mod g_counter;
pub mod g_set;
pub mod history;
pub mod kafka;
pub mod lin_kv;
pub mod linearizable;
pub mod maelstrom;
pub mod multicast;
pub mod pn_counter;
pub mod stable_reads;
pub mod txn;
pub mod unique_ids;
pub mod verdict;
pub mod workload;
pub mod write_once;

pub use history::{Event, EventType, History, Op, Outcome};
pub use verdict::{CheckInput, Checker, Verdict, VerdictKind};
pub use workload::{workload_by_name, Workload, WORKLOADS};
