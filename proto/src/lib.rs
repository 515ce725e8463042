//! The squall wire protocol, shared by the harness and the node runtime so that neither
//! depends on the other.
//!
//! - [`envelope`]: `{"src","dest","body"}` lines; the router reads only this layer.
//! - [`body`]: Maelstrom-shaped body conventions and the numeric [`body::ErrorCode`]s.
//! - [`ops`]: client operations and their replies, one enum per direction.
//! - [`report`]: what nodes may tell the harness out of band (decisions, acceptances).
//! - [`codec`]: newline-delimited JSON framing with a hard frame size limit.
//! - [`lockstep`]: the control bodies of deterministic lockstep mode (timers, `step_done`).
//!
//! PROTOCOL.md at the repository root is the normative description; this crate is its
//! Rust rendering.
#![deny(missing_docs)]

pub mod body;
pub mod codec;
pub mod envelope;
pub mod lockstep;
pub mod ops;
pub mod report;

pub use body::{ErrorCode, Errorness};
pub use codec::{FrameError, LineDecoder, FRAME_BYTES_MAX};
pub use envelope::{Envelope, EnvelopeHead, HARNESS, ROUTER};
pub use ops::{ClientOp, ClientReply};
pub use report::{Report, Stamped};
