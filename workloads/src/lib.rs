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
//! - [`lin_kv`]: read/write/cas on a few keys of a replicated store, judged by
//!   lincheck's `kv` model and by final reads at every live node.
//! - [`bank`]: transfers between accounts and Chandy-Lamport global snapshots, judged by
//!   conservation of money and consistency of each cut.
#![deny(missing_docs)]

pub mod bank;
pub mod consensus;
pub mod durability;
pub mod echo;
pub mod history;
pub mod lin_kv;
pub mod linearizable;
pub mod stable_reads;
pub mod verdict;
pub mod workload;
pub mod write_once;

pub use history::{Event, EventType, History, Op, Outcome};
pub use verdict::{CheckInput, Checker, Verdict, VerdictKind};
pub use workload::{workload_by_name, Workload, WORKLOADS};
