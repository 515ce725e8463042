//! The squall node: a runtime that speaks the wire protocol and the bundled algorithms.
//!
//! - [`algo`]: the [`algo::Algorithm`] trait, its effect context [`algo::Ctx`] and one
//!   module per algorithm (`algo/*.rs`). Nothing under `algo` does IO, reads a clock or
//!   uses an unseeded RNG.
//! - [`registry`]: algorithm names -> constructors, used by the binary and by `squall list`.
//! - [`runtime`]: the shell: TCP to the router, timers, the free-running and lockstep loops.
//! - [`lockstep`]: virtual timers, the algorithm's timers as ids the harness fires.
//! - [`storage`]: the durable append log; unsynced records are lost on a crash.
//! - [`bench`]: ping/pong peers for `squall bench router` (runtime-level, reads clocks).
//! - [`sim`]: an in-process simulated network for unit-testing algorithms without sockets.
#![deny(missing_docs)]

pub mod algo;
pub mod bench;
pub mod lockstep;
pub mod registry;
pub mod runtime;
pub mod sim;
pub mod storage;
