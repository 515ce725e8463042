//! lossyfs: a FUSE file system that loses what a node never synced, as a crash would.
//!
//! `squall run --fs lossy` puts each node's `SQUALL_DATA_DIR` on a mount of its own,
//! served by a `squall-lossyfs` helper process over a backing directory. Writes are not
//! durable until `fsync`; names stay in memory until their directory is fsynced. When
//! squall kills a node, the harness tells the helper to crash: everything unsynced is
//! dropped before the node starts again. A clean stop flushes.
//!
//! - [`core`]: the model, without FUSE: [`Core`] (volatile tree over durable state),
//!   [`MetaMode`], [`CrashFaults`], [`CrashReport`], [`Stats`].
//! - [`data`]: one file's data ([`data::FileData`]): the synced prefix, overwrites in memory,
//!   appends straight into the backing object.
//! - [`fuse`]: [`fuse::LossyFs`], the `fuser::Filesystem` over a [`Core`].
//! - [`mount`]: mount and unmount with `mount(2)`, [`mount::probe`] (is FUSE usable
//!   here?), [`mount::cleanup_stale`] (mounts a killed harness left behind).
//! - [`serve`]: the helper process's loop, driven over stdin.
//! - [`helper`]: the harness's handle on a helper, [`helper::Helper`].
//! - [`fleet`]: what the harness holds: [`fleet::FsConfig`] (`--fs`), [`fleet::Fleet`]
//!   (one helper per node, the metrics and the warning).

pub mod core;
pub mod data;
pub mod fleet;
pub mod fuse;
pub mod helper;
pub mod mount;
pub mod serve;

pub use crate::core::{Core, CrashFaults, CrashReport, MetaMode, Stats};
