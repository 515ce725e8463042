//! Mounting, unmounting, and finding mounts left behind.
//!
//! squall runs as root, so a mount is one `mount(2)` of `/dev/fuse` (fuser without
//! libfuse; no `fusermount` needed). Every mount has source `lossyfs` (type `fuse`, or
//! `fuse.lossyfs` where a subtype is kept), which is how [`cleanup_stale`] finds the ones
//! a killed harness left under a results directory.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use fuser::{MountOption, Session, SessionUnmounter};

use crate::core::Core;
use crate::fuse::LossyFs;

/// The file-system type `/proc/self/mountinfo` shows where the subtype is kept.
pub const FSTYPE: &str = "fuse.lossyfs";
/// How long an unmount waits for the serving thread to end.
const JOIN_WAIT: Duration = Duration::from_secs(10);

/// Why `--fs lossy` cannot work here.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// No FUSE device.
    #[error("FUSE is not available: /dev/fuse does not exist (load the fuse module, or run where it exists)")]
    NoDevice,
    /// Not root: squall mounts with mount(2), which needs root.
    #[error(
        "FUSE mounts need root here (squall mounts with mount(2), without fusermount); run as root"
    )]
    NotRoot,
    /// The mount itself failed.
    #[error("FUSE mount at {path} failed: {source}")]
    MountFailed {
        /// The mount point.
        path: String,
        /// The OS error.
        source: io::Error,
    },
}

/// A served mount; unmounted on [`Mounted::unmount`] or drop.
pub struct Mounted {
    mountpoint: PathBuf,
    unmounter: SessionUnmounter,
    done: Option<(JoinHandle<()>, mpsc::Receiver<()>)>,
}

/// Mounts `core` at `mountpoint` (an existing directory), served by a new thread.
pub fn mount(core: Arc<Mutex<Core>>, mountpoint: &Path) -> Result<Mounted, Unavailable> {
    if !Path::new("/dev/fuse").exists() {
        return Err(Unavailable::NoDevice);
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Unavailable::NotRoot);
    }
    let opts = [
        MountOption::FSName("lossyfs".into()),
        MountOption::Subtype("lossyfs".into()),
        MountOption::NoAtime,
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    let mut session = Session::new(LossyFs::new(core), mountpoint, &opts).map_err(|source| {
        Unavailable::MountFailed {
            path: mountpoint.display().to_string(),
            source,
        }
    })?;
    let unmounter = session.unmount_callable();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("lossyfs".into())
        .spawn(move || {
            let _ = session.run();
            drop(session);
            let _ = tx.send(());
        })
        .map_err(|source| Unavailable::MountFailed {
            path: mountpoint.display().to_string(),
            source,
        })?;
    Ok(Mounted {
        mountpoint: mountpoint.to_path_buf(),
        unmounter,
        done: Some((thread, rx)),
    })
}

/// Unmounts `path`: at once if nothing holds it, else lazily (detached now, gone when the
/// last open file closes).
pub fn unmount_path(path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    // SAFETY: as above.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    Err(io::Error::last_os_error())
}

impl Mounted {
    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Unmounts and waits (bounded) for the serving thread to end.
    pub fn unmount(&mut self) {
        let Some((thread, rx)) = self.done.take() else {
            return;
        };
        // fuser's own unmount first; if something still holds the mount, detach it.
        let _ = self.unmounter.unmount();
        if !mounts_under(&self.mountpoint).is_empty() {
            let _ = unmount_path(&self.mountpoint);
        }
        if rx.recv_timeout(JOIN_WAIT).is_ok() {
            let _ = thread.join();
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// Mount points of type [`FSTYPE`] at or under `root`, from `/proc/self/mountinfo`.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        // A mount(2) without fusermount shows type `fuse` and source `lossyfs`.
        let mut f = right.split(' ');
        let (fstype, source) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
        if !(fstype == FSTYPE || (fstype == "fuse" && source == "lossyfs")) {
            continue;
        }
        let Some(raw) = left.split(' ').nth(4) else {
            continue;
        };
        let path = PathBuf::from(unescape(raw));
        if path.starts_with(&root) {
            out.push(path);
        }
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts every dead lossyfs mount under `root` (its helper gone with a killed
/// harness: the mount answers `ENOTCONN`); returns the ones removed. Live mounts, such as
/// those of runs going on in parallel in the same results directory, are left alone.
pub fn cleanup_stale(root: &Path) -> Vec<PathBuf> {
    let mut gone = Vec::new();
    // Deepest first, so a mount inside another goes before it.
    let mut found = mounts_under(root);
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in found {
        let dead = matches!(
            std::fs::metadata(&p),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN)
        );
        if dead && unmount_path(&p).is_ok() {
            gone.push(p);
        }
    }
    gone
}

/// Checks that a lossyfs mount works here: mounts an empty one in a scratch directory
/// under `scratch` and unmounts it.
pub fn probe(scratch: &Path) -> Result<(), Unavailable> {
    let io_err = |source| Unavailable::MountFailed {
        path: scratch.display().to_string(),
        source,
    };
    if !Path::new("/dev/fuse").exists() {
        return Err(Unavailable::NoDevice);
    }
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Unavailable::NotRoot);
    }
    let dir = scratch.join(format!(".lossyfs-probe-{}", std::process::id()));
    let backing = dir.join("backing");
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).map_err(io_err)?;
    let result = (|| {
        let core = Core::open(&backing, Default::default(), Default::default()).map_err(io_err)?;
        let mut m = mount(Arc::new(Mutex::new(core)), &mnt)?;
        let listed = std::fs::read_dir(&mnt).map(|_| ()).map_err(io_err);
        m.unmount();
        listed
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
