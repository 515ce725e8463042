//! The FUSE face of [`Core`]: each kernel request locks the core, calls it, replies.
//!
//! Handles carry no state (`fh` 0): the core counts opens per inode. Attributes and
//! entries are cached by the kernel for [`TTL`]; a crash unmounts and mounts again, so no
//! kernel cache outlives the state it described.

use std::ffi::OsStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fuser::{
    FileAttr, FileType, Filesystem, KernelConfig, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};

use crate::core::{Attr, Core, Errno, Kind};

/// How long the kernel may cache attributes and names.
pub const TTL: Duration = Duration::from_secs(1);

/// The file system served on one mount.
pub struct LossyFs {
    core: Arc<Mutex<Core>>,
    uid: u32,
    gid: u32,
}

impl LossyFs {
    /// Serves `core`; files belong to the serving process's user.
    pub fn new(core: Arc<Mutex<Core>>) -> LossyFs {
        // SAFETY: geteuid and getegid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        LossyFs { core, uid, gid }
    }

    fn core(&self) -> std::sync::MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `name` in `parent` (mkdir, mknod, create): its permission bits are `mode`
    /// without `umask`.
    fn make(
        &self,
        parent: u64,
        name: &OsStr,
        kind: Kind,
        mode: u32,
        umask: u32,
    ) -> Result<Attr, Errno> {
        let name = utf8(name)?;
        self.core()
            .mknode(parent, name, kind, mode & !umask & 0o7777)
    }

    /// Replies to mkdir or mknod with the entry made, or the error.
    fn reply_made(&self, made: Result<Attr, Errno>, reply: ReplyEntry) {
        match made {
            Ok(a) => reply.entry(&TTL, &self.fattr(a), 0),
            Err(e) => reply.error(e.0),
        }
    }

    fn fattr(&self, a: Attr) -> FileAttr {
        FileAttr {
            ino: a.ino,
            size: a.size,
            blocks: a.size.div_ceil(512),
            atime: a.mtime,
            mtime: a.mtime,
            ctime: a.ctime,
            crtime: a.ctime,
            kind: ftype(a.kind),
            perm: a.mode as u16,
            nlink: a.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }
}

fn ftype(k: Kind) -> FileType {
    match k {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
    }
}

/// Names must be UTF-8 (the durable tree is JSON).
fn utf8(name: &OsStr) -> Result<&str, Errno> {
    name.to_str().ok_or(Errno(libc::EINVAL))
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

const SYNC_FLAGS: i32 = libc::O_SYNC | libc::O_DSYNC;

impl Filesystem for LossyFs {
    fn init(&mut self, _req: &Request<'_>, config: &mut KernelConfig) -> Result<(), libc::c_int> {
        let _ = config.set_max_write(1 << 20);
        if !self.core().exact_writes() {
            // The kernel batches buffered writes and hands them over at fsync, close,
            // memory pressure or unmount; a crash unmounts first, so they reach the cache
            // (and are dropped with it). Crash faults need each write as the node made it,
            // so they go without.
            let _ = config.add_capabilities(fuser::consts::FUSE_WRITEBACK_CACHE);
        }
        Ok(())
    }

    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        match utf8(name).and_then(|n| self.core().lookup(parent, n)) {
            Ok(a) => reply.entry(&TTL, &self.fattr(a), 0),
            Err(e) => reply.error(e.0),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.core().attr(ino) {
            Ok(a) => reply.attr(&TTL, &self.fattr(a)),
            Err(e) => reply.error(e.0),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        match self.core().setattr(ino, mode, size, mtime.map(time)) {
            Ok(a) => reply.attr(&TTL, &self.fattr(a)),
            Err(e) => reply.error(e.0),
        }
    }

    fn mkdir(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        self.reply_made(self.make(parent, name, Kind::Dir, mode, umask), reply);
    }

    fn mknod(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(libc::EPERM);
        }
        self.reply_made(self.make(parent, name, Kind::File, mode, umask), reply);
    }

    fn create(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        // One lock for both, so nothing lands between the make and the open.
        let made = utf8(name).and_then(|n| {
            let mut core = self.core();
            let a = core.mknode(parent, n, Kind::File, mode & !umask & 0o7777)?;
            core.opened(a.ino)?;
            Ok(a)
        });
        match made {
            Ok(a) => reply.created(&TTL, &self.fattr(a), 0, 0, 0),
            Err(e) => reply.error(e.0),
        }
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        match utf8(name).and_then(|n| self.core().remove(parent, n, false)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.0),
        }
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        match utf8(name).and_then(|n| self.core().remove(parent, n, true)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.0),
        }
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        let done = utf8(name).and_then(|n| {
            let nn = utf8(newname)?;
            self.core().rename(parent, n, newparent, nn, flags)
        });
        match done {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.0),
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        // O_TRUNC arrives as a setattr before the open.
        match self.core().opened(ino) {
            Ok(()) => reply.opened(0, 0),
            Err(e) => reply.error(e.0),
        }
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.core().released(ino);
        reply.ok();
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        match self.core().read(ino, offset.max(0) as u64, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e.0),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        let sync = flags & SYNC_FLAGS != 0;
        match self.core().write(ino, offset.max(0) as u64, data, sync) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e.0),
        }
    }

    fn flush(&mut self, _req: &Request<'_>, _ino: u64, _fh: u64, _lock: u64, reply: ReplyEmpty) {
        // close(2) syncs nothing.
        reply.ok();
    }

    fn fsync(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, datasync: bool, reply: ReplyEmpty) {
        match self.core().fsync(ino, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.0),
        }
    }

    fn fsyncdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.core().fsync_dir(ino) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e.0),
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.core().readdir(ino) {
            Ok(e) => e,
            Err(e) => return reply.error(e.0),
        };
        for (i, (child, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(child, (i + 1) as i64, ftype(kind), &name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&mut self, _req: &Request<'_>, _ino: u64, reply: ReplyStatfs) {
        reply.statfs(1 << 24, 1 << 23, 1 << 23, 1 << 20, 1 << 19, 4096, 255, 4096);
    }

    fn access(&mut self, _req: &Request<'_>, ino: u64, _mask: i32, reply: ReplyEmpty) {
        match self.core().attr(ino) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e.0),
        }
    }
}
