//! Linearizability checking for squall histories (and Jepsen's and Porcupine's).
//!
//! - [`history`]: [`History`], [`Op`], [`Value`]: ops with invoke and completion times.
//! - [`parse`]: [`Format`]s: Jepsen log lines, EDN op maps, squall's `history.jsonl`.
//! - [`model`]: the [`Model`] trait (sequential specifications with compact `Copy`
//!   states) and the built-in [`ModelKind`]s: register, CAS register, kv, kv strings,
//!   write-once.
//! - `search`: the Wing & Gong / Lowe search for one partition: explicit stack,
//!   exact memo bounded in bytes with Zobrist hashing, greedy commitment of
//!   state-preserving ops, one try per class of identical crashed ops, no crashed op
//!   that changes nothing or is overwritten at once. Models abstract the values no op
//!   observes into one, so crashed writes nobody reads are one class (see
//!   `docs/checker.md` for the soundness argument of each).
//! - [`check()`]: partitions a history by key and searches the partitions in parallel
//!   under a state and time budget and a per-key state budget; [`Outcome`] = [`Verdict`] + [`Stats`].
//! - [`explain`]: for invalid histories, the longest linearizable prefix and the stuck
//!   op per partition, and a delta-debugged minimal failing window.
//! - [`generate`]: random histories that are linearizable by construction, and the
//!   crashed-op families of the checker benchmark.
//! - [`cmd`]: `check_files`, the body of `squall check`.
//! - [`mod@bench`]: the checker benchmark behind `squall bench checker`.
//! - `named`: `Display`, `FromStr` and the unknown-name error of [`ModelKind`] and
//!   [`Format`], from one macro.
//!
//! Invariants: nothing here recurses on the history (the search and the shrinker use
//! explicit stacks; the EDN reader nests at most 4 deep); every search is bounded by
//! states, time and memo bytes and ends in `Unknown` rather than running out; the only
//! clock read is the budget's deadline and the elapsed time in [`Stats`].
#![deny(missing_docs)]

#[macro_use]
mod named;

pub mod bench;
pub mod check;
pub mod cmd;
pub mod explain;
pub mod generate;
pub mod history;
pub mod model;
pub mod parse;
mod search;

pub use check::{check, CheckOptions, Outcome, Stats, Verdict};
pub use explain::{Explanation, OpRef, Partial, PartitionFailure, PartitionProgress, Window};
pub use generate::{crashed_proposes, crashed_writes, generate_kv, generate_kv_strings, GenConfig};
pub use history::{History, Input, Op, Outcome as OpOutcome, Value};
pub use model::{Model, ModelError, ModelKind, UnknownModel};
pub use parse::{Format, ParseError, UnknownFormat};
pub use search::budget::UnknownReason;
pub use search::Pruning;
