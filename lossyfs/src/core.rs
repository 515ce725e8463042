//! The model: a volatile file tree over a durable one, without FUSE.
//!
//! The durable state lives in the backing directory: `tree.json` (the namespace: which
//! directory holds which names, as last made durable) and `objects/<id>` (one file per
//! file inode, holding what was synced of its data). The volatile state is what the node
//! sees: the same tree plus everything it did since, kept in memory.
//!
//! - Data ([`crate::data`]): a write past the file's durable length (an append) goes
//!   straight into its object, unsynced; a write over synced bytes is kept in memory.
//!   `fsync` / `fdatasync` (and an `O_SYNC`/`O_DSYNC` write) write what is in memory into
//!   the object and sync it; a crash cuts every object back to its durable length.
//! - Names: create, mkdir, unlink, rmdir and rename change only the volatile tree. They
//!   become durable when the parent directory is fsynced ([`MetaMode::Posix`]), or at once
//!   ([`MetaMode::Immediate`]).
//! - [`Core::crash`] is what a SIGKILL (or power cut) leaves: the durable state, plus what
//!   the named [`CrashFaults`] let survive; everything else is dropped and counted.
//! - [`Core::flush`] is a clean stop: everything becomes durable.
//!
//! Memory is bounded: past [`Core::DIRTY_BYTES_MAX`] of overwrites held in memory, the file
//! with the most is written back to its object without a sync, as a kernel would under
//! pressure. Appends take no memory here (they wait, unsynced, in the backing store).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::FileData;

/// The root directory's inode.
pub const ROOT: u64 = 1;
/// Longest name accepted.
pub const NAME_BYTES_MAX: usize = 255;

/// An errno for the FUSE reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl From<io::Error> for Errno {
    fn from(e: io::Error) -> Errno {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

/// Result of a file-system operation.
pub type FsResult<T> = Result<T, Errno>;

/// When name changes (create, rename, unlink, mkdir, rmdir) become durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MetaMode {
    /// When the parent directory is fsynced (POSIX; what ext4 and xfs promise).
    #[default]
    Posix,
    /// At once: only file data is lost at a crash.
    Immediate,
}

/// What of the unsynced data a crash lets survive (default: nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CrashFaults {
    /// The last unsynced write survives partially (a random non-empty proper prefix).
    pub torn_write: bool,
    /// A random subset of the unsynced writes survives, not a prefix.
    pub reorder_unsynced: bool,
}

impl CrashFaults {
    /// Parses `torn-write` / `reorder-unsynced`.
    pub fn add(&mut self, name: &str) -> Result<(), String> {
        match name {
            "torn-write" => self.torn_write = true,
            "reorder-unsynced" => self.reorder_unsynced = true,
            other => {
                return Err(format!(
                    "unknown crash fault '{other}' (valid: torn-write, reorder-unsynced)"
                ))
            }
        }
        Ok(())
    }
}

/// File or directory (no links, devices or sockets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DNode {
    kind: Kind,
    mode: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    children: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tree {
    next_id: u64,
    nodes: BTreeMap<u64, DNode>,
}

impl Tree {
    fn empty() -> Tree {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            ROOT,
            DNode {
                kind: Kind::Dir,
                mode: 0o755,
                children: BTreeMap::new(),
            },
        );
        Tree {
            next_id: ROOT + 1,
            nodes,
        }
    }

    /// Ids reachable from the root, each once (explicit stack, no recursion).
    fn reachable(&self) -> BTreeMap<u64, u64> {
        let mut parent_of = BTreeMap::new();
        parent_of.insert(ROOT, ROOT);
        let mut stack = vec![ROOT];
        while let Some(id) = stack.pop() {
            let Some(n) = self.nodes.get(&id) else {
                continue;
            };
            for c in n.children.values() {
                if !parent_of.contains_key(c) && self.nodes.contains_key(c) {
                    parent_of.insert(*c, id);
                    stack.push(*c);
                }
            }
        }
        parent_of
    }
}

/// Attributes the FUSE layer reports.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    /// Inode.
    pub ino: u64,
    /// File or directory.
    pub kind: Kind,
    /// Bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Names pointing here.
    pub nlink: u32,
    /// Last data change.
    pub mtime: SystemTime,
    /// Last status change.
    pub ctime: SystemTime,
}

#[derive(Debug)]
struct VNode {
    kind: Kind,
    mode: u32,
    nlink: u32,
    opens: u32,
    parent: u64,
    children: BTreeMap<String, u64>,
    data: FileData,
    mtime: SystemTime,
    ctime: SystemTime,
}

impl VNode {
    fn new(kind: Kind, mode: u32, parent: u64) -> VNode {
        let now = SystemTime::now();
        VNode {
            kind,
            mode: mode & 0o7777,
            nlink: if kind == Kind::Dir { 2 } else { 1 },
            opens: 0,
            parent,
            children: BTreeMap::new(),
            data: FileData::default(),
            mtime: now,
            ctime: now,
        }
    }
}

#[derive(Debug)]
struct PendingWrite {
    ino: u64,
    off: u64,
    data: Vec<u8>,
}

/// What one crash dropped.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CrashReport {
    /// Unsynced bytes written and lost.
    pub bytes_dropped: u64,
    /// Files whose data or name (create, rename) was not durable.
    pub files_dropped: u64,
    /// Directory entries that differed from the durable tree (creates, renames, unlinks).
    pub names_dropped: u64,
    /// With `torn-write`: bytes of the last unsynced write that survived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torn_bytes_kept: Option<u64>,
    /// With `reorder-unsynced`: unsynced writes that survived, and of how many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writes_kept: Option<(u64, u64)>,
}

/// Counters over a mount's life.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stats {
    /// `fsync`/`fdatasync` of files (and `O_SYNC` writes).
    pub fsyncs: u64,
    /// `fsync` of directories.
    pub dir_fsyncs: u64,
    /// Write calls.
    pub writes: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Dirty bytes written back without a sync under memory pressure.
    pub written_back_bytes: u64,
    /// Bytes made durable by the final flush (a clean stop).
    pub flushed_bytes: u64,
    /// One report per crash, in order.
    pub crashes: Vec<CrashReport>,
}

/// The volatile tree over the durable one.
#[derive(Debug)]
pub struct Core {
    backing: PathBuf,
    meta: MetaMode,
    durable: Tree,
    nodes: BTreeMap<u64, VNode>,
    next_id: u64,
    /// Unsynced writes in order, with their bytes when `reorder-unsynced` needs them.
    log: Vec<PendingWrite>,
    keep_log: bool,
    /// Whether the bytes of unsynced writes are kept at all (only crash faults need them).
    keep_bytes: bool,
    dirty_bytes: u64,
    stats: Stats,
}

fn enotdir() -> Errno {
    Errno(libc::ENOTDIR)
}

fn check_name(name: &str) -> FsResult<()> {
    if name.len() > NAME_BYTES_MAX {
        return Err(Errno(libc::ENAMETOOLONG));
    }
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(Errno(libc::EINVAL));
    }
    Ok(())
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

impl Core {
    /// Dirty bytes kept in memory before write-back.
    pub const DIRTY_BYTES_MAX: u64 = 256 << 20;
    /// Unsynced writes remembered for `reorder-unsynced`.
    pub const LOG_WRITES_MAX: usize = 16 * 1024;

    /// Opens (or creates) the durable state in `backing` and starts from it.
    pub fn open(backing: &Path, meta: MetaMode, faults: CrashFaults) -> io::Result<Core> {
        std::fs::create_dir_all(backing.join("objects"))?;
        let mut core = Core {
            backing: backing.to_path_buf(),
            meta,
            durable: Tree::empty(),
            nodes: BTreeMap::new(),
            next_id: ROOT + 1,
            log: Vec::new(),
            keep_log: faults.reorder_unsynced,
            keep_bytes: faults.reorder_unsynced || faults.torn_write,
            dirty_bytes: 0,
            stats: Stats::default(),
        };
        core.load()?;
        Ok(core)
    }

    /// Whether crash faults need every write as the node made it (no kernel batching).
    pub fn exact_writes(&self) -> bool {
        self.keep_bytes
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn tree_path(&self) -> PathBuf {
        self.backing.join("tree.json")
    }

    fn obj_path(&self, id: u64) -> PathBuf {
        self.backing.join("objects").join(id.to_string())
    }

    /// Rebuilds the volatile tree from the durable one and deletes unreferenced objects.
    fn load(&mut self) -> io::Result<()> {
        let tree = match std::fs::read(self.tree_path()) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Tree::empty(),
            Err(e) => return Err(e),
        };
        let reach = tree.reachable();
        let mut nodes = BTreeMap::new();
        let mut max_id = ROOT;
        for (&id, &parent) in &reach {
            let d = &tree.nodes[&id];
            max_id = max_id.max(id);
            let mut v = VNode::new(d.kind, d.mode, parent);
            if d.kind == Kind::Dir {
                v.children = d
                    .children
                    .iter()
                    .filter(|(_, c)| reach.contains_key(c))
                    .map(|(n, c)| (n.clone(), *c))
                    .collect();
            } else {
                v.nlink = 0;
                match OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(self.obj_path(id))
                {
                    Ok(f) => {
                        v.mtime = f.metadata()?.modified().unwrap_or(v.mtime);
                        v.data = FileData::from_object(f)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            nodes.insert(id, v);
        }
        // Link counts: files count their names; directories 2 plus subdirectories.
        let mut links: Vec<(u64, Kind)> = Vec::new();
        for v in nodes.values() {
            for c in v.children.values() {
                links.push((*c, nodes[c].kind));
            }
        }
        for (c, kind) in links {
            if kind == Kind::File {
                nodes.get_mut(&c).expect("linked").nlink += 1;
            }
        }
        let subdirs: Vec<(u64, u64)> = nodes
            .iter()
            .filter(|(id, v)| v.kind == Kind::Dir && **id != ROOT)
            .map(|(id, v)| (*id, v.parent))
            .collect();
        for (_, parent) in subdirs {
            if let Some(p) = nodes.get_mut(&parent) {
                p.nlink += 1;
            }
        }
        // Objects no durable name reaches are orphans of the crash: gone.
        for entry in std::fs::read_dir(self.backing.join("objects"))? {
            let entry = entry?;
            let id = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u64>().ok());
            match id {
                Some(id) if nodes.get(&id).is_some_and(|v| v.kind == Kind::File) => {}
                Some(id) => {
                    max_id = max_id.max(id);
                    std::fs::remove_file(entry.path())?;
                }
                None => std::fs::remove_file(entry.path())?,
            }
        }
        self.next_id = tree.next_id.max(max_id + 1);
        self.durable = Tree {
            next_id: self.next_id,
            nodes: tree
                .nodes
                .into_iter()
                .filter(|(id, _)| reach.contains_key(id))
                .collect(),
        };
        self.nodes = nodes;
        self.log.clear();
        self.dirty_bytes = 0;
        Ok(())
    }

    fn node(&self, ino: u64) -> FsResult<&VNode> {
        self.nodes.get(&ino).ok_or(Errno(libc::ENOENT))
    }

    fn node_mut(&mut self, ino: u64) -> FsResult<&mut VNode> {
        self.nodes.get_mut(&ino).ok_or(Errno(libc::ENOENT))
    }

    fn dir(&self, ino: u64) -> FsResult<&VNode> {
        let n = self.node(ino)?;
        if n.kind != Kind::Dir {
            return Err(enotdir());
        }
        Ok(n)
    }

    /// Attributes of `ino`.
    pub fn attr(&self, ino: u64) -> FsResult<Attr> {
        let n = self.node(ino)?;
        Ok(Attr {
            ino,
            kind: n.kind,
            size: if n.kind == Kind::File {
                n.data.size()
            } else {
                4096
            },
            mode: n.mode,
            nlink: n.nlink,
            mtime: n.mtime,
            ctime: n.ctime,
        })
    }

    /// The inode `name` in `parent` names.
    pub fn lookup(&self, parent: u64, name: &str) -> FsResult<Attr> {
        let d = self.dir(parent)?;
        let ino = match name {
            "." => parent,
            ".." => d.parent,
            _ => *d.children.get(name).ok_or(Errno(libc::ENOENT))?,
        };
        self.attr(ino)
    }

    /// Entries of a directory (with `.` and `..`), in name order.
    pub fn readdir(&self, ino: u64) -> FsResult<Vec<(u64, Kind, String)>> {
        let d = self.dir(ino)?;
        let mut out = vec![
            (ino, Kind::Dir, ".".to_string()),
            (d.parent, Kind::Dir, "..".to_string()),
        ];
        for (name, c) in &d.children {
            out.push((*c, self.nodes[c].kind, name.clone()));
        }
        Ok(out)
    }

    fn touch_dir(&mut self, ino: u64) {
        if let Some(d) = self.nodes.get_mut(&ino) {
            let now = SystemTime::now();
            d.mtime = now;
            d.ctime = now;
        }
    }

    /// Creates a file or directory `name` in `parent`.
    pub fn mknode(&mut self, parent: u64, name: &str, kind: Kind, mode: u32) -> FsResult<Attr> {
        check_name(name)?;
        if self.dir(parent)?.children.contains_key(name) {
            return Err(Errno(libc::EEXIST));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.nodes.insert(id, VNode::new(kind, mode, parent));
        let p = self.node_mut(parent)?;
        p.children.insert(name.to_string(), id);
        if kind == Kind::Dir {
            p.nlink += 1;
        }
        self.touch_dir(parent);
        if self.meta == MetaMode::Immediate {
            self.persist_dirs(&[parent])?;
        }
        self.attr(id)
    }

    /// Counts an open handle (an unlinked file lives until its last one is released).
    pub fn opened(&mut self, ino: u64) -> FsResult<()> {
        self.node_mut(ino)?.opens += 1;
        Ok(())
    }

    /// Releases a handle.
    pub fn released(&mut self, ino: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.opens = n.opens.saturating_sub(1);
        }
        self.reap(ino);
    }

    /// Forgets an unlinked file nobody has open.
    fn reap(&mut self, ino: u64) {
        let gone = self
            .nodes
            .get(&ino)
            .is_some_and(|n| n.kind == Kind::File && n.nlink == 0 && n.opens == 0);
        if gone {
            let mut n = self.nodes.remove(&ino).expect("present");
            self.dirty_bytes -= n.data.memory();
            self.log.retain(|w| w.ino != ino);
            // A durable name may still lead to the object until its directory is synced:
            // its unsynced tail must not be there for a crash to find.
            if let Err(e) = n.data.drop_unsynced() {
                eprintln!("lossyfs: dropping the unsynced tail of inode {ino}: {e}");
            }
        }
    }

    /// Removes `name` from `parent` (`rmdir` when `dir`).
    pub fn remove(&mut self, parent: u64, name: &str, dir: bool) -> FsResult<()> {
        let ino = *self
            .dir(parent)?
            .children
            .get(name)
            .ok_or(Errno(libc::ENOENT))?;
        let n = self.node(ino)?;
        match (dir, n.kind) {
            (true, Kind::File) => return Err(enotdir()),
            (false, Kind::Dir) => return Err(Errno(libc::EISDIR)),
            (true, Kind::Dir) if !n.children.is_empty() => return Err(Errno(libc::ENOTEMPTY)),
            _ => {}
        }
        self.unlink_entry(parent, name);
        self.touch_dir(parent);
        if self.meta == MetaMode::Immediate {
            self.persist_dirs(&[parent])?;
        }
        Ok(())
    }

    /// Drops one name; the inode goes when nothing names or holds it.
    fn unlink_entry(&mut self, parent: u64, name: &str) {
        let p = self.nodes.get_mut(&parent).expect("parent exists");
        let Some(ino) = p.children.remove(name) else {
            return;
        };
        let kind = self.nodes[&ino].kind;
        if kind == Kind::Dir {
            self.nodes.get_mut(&parent).expect("parent exists").nlink -= 1;
            self.nodes.remove(&ino);
        } else {
            let n = self.nodes.get_mut(&ino).expect("child exists");
            n.nlink = n.nlink.saturating_sub(1);
            n.ctime = SystemTime::now();
            self.reap(ino);
        }
    }

    /// `rename(2)`; `flags` as Linux `renameat2` (`RENAME_NOREPLACE`; no exchange).
    pub fn rename(
        &mut self,
        parent: u64,
        name: &str,
        newparent: u64,
        newname: &str,
        flags: u32,
    ) -> FsResult<()> {
        check_name(newname)?;
        if flags & !libc::RENAME_NOREPLACE != 0 {
            return Err(Errno(libc::EINVAL));
        }
        let ino = *self
            .dir(parent)?
            .children
            .get(name)
            .ok_or(Errno(libc::ENOENT))?;
        let kind = self.node(ino)?.kind;
        if let Some(&target) = self.dir(newparent)?.children.get(newname) {
            if target == ino {
                return Ok(());
            }
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(Errno(libc::EEXIST));
            }
            let t = self.node(target)?;
            match (kind, t.kind) {
                (Kind::File, Kind::Dir) => return Err(Errno(libc::EISDIR)),
                (Kind::Dir, Kind::File) => return Err(enotdir()),
                (Kind::Dir, Kind::Dir) if !t.children.is_empty() => {
                    return Err(Errno(libc::ENOTEMPTY))
                }
                _ => {}
            }
        }
        if kind == Kind::Dir {
            // A directory may not move under itself.
            let mut at = newparent;
            while at != ROOT {
                if at == ino {
                    return Err(Errno(libc::EINVAL));
                }
                at = self.node(at)?.parent;
            }
        }
        self.unlink_entry(newparent, newname);
        let p = self.nodes.get_mut(&parent).expect("parent exists");
        p.children.remove(name);
        if kind == Kind::Dir {
            p.nlink -= 1;
        }
        let np = self.nodes.get_mut(&newparent).expect("new parent exists");
        np.children.insert(newname.to_string(), ino);
        if kind == Kind::Dir {
            np.nlink += 1;
        }
        let n = self.nodes.get_mut(&ino).expect("renamed exists");
        n.parent = newparent;
        n.ctime = SystemTime::now();
        self.touch_dir(parent);
        self.touch_dir(newparent);
        if self.meta == MetaMode::Immediate {
            self.persist_dirs(&[parent, newparent])?;
        }
        Ok(())
    }

    /// `chmod`, `truncate` and times.
    pub fn setattr(
        &mut self,
        ino: u64,
        mode: Option<u32>,
        size: Option<u64>,
        mtime: Option<SystemTime>,
    ) -> FsResult<Attr> {
        let n = self.node_mut(ino)?;
        if let Some(m) = mode {
            n.mode = m & 0o7777;
            n.ctime = SystemTime::now();
        }
        if let Some(t) = mtime {
            n.mtime = t;
        }
        if let Some(size) = size {
            if n.kind != Kind::File {
                return Err(Errno(libc::EISDIR));
            }
            let f = &mut self.nodes.get_mut(&ino).expect("checked").data;
            self.dirty_bytes -= f.truncate(size)?;
            let n = self.nodes.get_mut(&ino).expect("checked");
            let now = SystemTime::now();
            n.mtime = now;
            n.ctime = now;
        }
        self.attr(ino)
    }

    /// Reads up to `size` bytes at `off`.
    pub fn read(&self, ino: u64, off: u64, size: u32) -> FsResult<Vec<u8>> {
        let n = self.node(ino)?;
        if n.kind != Kind::File {
            return Err(Errno(libc::EISDIR));
        }
        Ok(n.data.read(off, size)?)
    }

    /// Writes `data` at `off`; `sync` for `O_SYNC`/`O_DSYNC`.
    pub fn write(&mut self, ino: u64, off: u64, data: &[u8], sync: bool) -> FsResult<u32> {
        let path = self.obj_path(ino);
        let n = self.node_mut(ino)?;
        if n.kind != Kind::File {
            return Err(Errno(libc::EISDIR));
        }
        let added = n.data.write(&path, off, data)?;
        n.mtime = SystemTime::now();
        self.dirty_bytes += added;
        self.stats.writes += 1;
        self.stats.bytes_written += data.len() as u64;
        // Only the last write matters to `torn-write`; all of them to `reorder-unsynced`.
        if !self.keep_log {
            self.log.clear();
        } else if self.log.len() >= Self::LOG_WRITES_MAX {
            // The oldest unsynced write can no longer survive a crash: only ever fewer.
            self.log.remove(0);
        }
        self.log.push(PendingWrite {
            ino,
            off,
            data: if self.keep_bytes {
                data.to_vec()
            } else {
                Vec::new()
            },
        });
        if sync {
            self.fsync(ino, true)?;
        } else if self.dirty_bytes > Self::DIRTY_BYTES_MAX {
            self.write_back_largest()?;
        }
        Ok(data.len() as u32)
    }

    fn write_back_largest(&mut self) -> FsResult<()> {
        let Some(ino) = self
            .nodes
            .iter()
            .max_by_key(|(_, n)| n.data.memory())
            .map(|(i, _)| *i)
        else {
            return Ok(());
        };
        let bytes = self.nodes[&ino].data.unsynced();
        self.write_pages(ino, None)?;
        self.stats.written_back_bytes += bytes;
        Ok(())
    }

    fn ensure_obj(&mut self, ino: u64) -> io::Result<bool> {
        let path = self.obj_path(ino);
        self.nodes
            .get_mut(&ino)
            .expect("exists")
            .data
            .ensure_object(&path)
    }

    /// Makes the data of `ino` its object's; syncs it when `sync` says how.
    fn write_pages(&mut self, ino: u64, sync: Option<bool>) -> io::Result<()> {
        let path = self.obj_path(ino);
        let f = &mut self.nodes.get_mut(&ino).expect("exists").data;
        let created = !f.has_object();
        self.dirty_bytes -= f.write_out(&path, sync)?;
        self.log.retain(|w| w.ino != ino);
        if created && sync.is_some() {
            // The object's own name must be durable for the sync to mean anything.
            sync_dir(&self.backing.join("objects"))?;
        }
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file: its data becomes durable.
    pub fn fsync(&mut self, ino: u64, datasync: bool) -> FsResult<()> {
        let n = self.node(ino)?;
        let (kind, dirty) = (n.kind, n.data.dirty() || !n.data.has_object());
        if kind == Kind::Dir {
            return self.fsync_dir(ino);
        }
        self.stats.fsyncs += 1;
        if dirty {
            self.write_pages(ino, Some(datasync))?;
        }
        Ok(())
    }

    /// `fsync` of a directory: its entries become durable.
    pub fn fsync_dir(&mut self, ino: u64) -> FsResult<()> {
        self.dir(ino)?;
        self.stats.dir_fsyncs += 1;
        self.persist_dirs(&[ino])?;
        Ok(())
    }

    /// Makes the entries of `dirs` durable as they are now.
    fn persist_dirs(&mut self, dirs: &[u64]) -> io::Result<()> {
        let mut new_objects = false;
        for &d in dirs {
            let Some(v) = self.nodes.get(&d) else {
                continue;
            };
            let children = v.children.clone();
            let mode = v.mode;
            for &c in children.values() {
                let (kind, cmode) = (self.nodes[&c].kind, self.nodes[&c].mode);
                if kind == Kind::File {
                    new_objects |= self.ensure_obj(c)?;
                }
                let dn = self.durable.nodes.entry(c).or_insert(DNode {
                    kind,
                    mode: cmode,
                    children: BTreeMap::new(),
                });
                dn.mode = cmode;
            }
            self.durable.nodes.insert(
                d,
                DNode {
                    kind: Kind::Dir,
                    mode,
                    children,
                },
            );
        }
        if new_objects {
            sync_dir(&self.backing.join("objects"))?;
        }
        self.save_tree()
    }

    fn save_tree(&mut self) -> io::Result<()> {
        let reach = self.durable.reachable();
        self.durable.nodes.retain(|id, _| reach.contains_key(id));
        self.durable.next_id = self.next_id;
        let tmp = self.backing.join("tree.json.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(&self.durable).expect("a tree serialises"))?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.tree_path())?;
        sync_dir(&self.backing)
    }

    /// A crash: what was never synced is gone, except what `faults` let survive.
    pub fn crash(&mut self, faults: CrashFaults, rng: &mut ChaCha8Rng) -> io::Result<CrashReport> {
        let mut report = CrashReport::default();
        let reach = self.durable.reachable();
        for (id, n) in &self.nodes {
            if n.kind != Kind::File {
                continue;
            }
            report.bytes_dropped += n.data.unsynced();
            let name_lost = n.nlink > 0 && !reach.contains_key(id);
            if n.data.unsynced() > 0 || n.data.truncated() || name_lost {
                report.files_dropped += 1;
            }
        }
        for (id, n) in &self.nodes {
            if n.kind != Kind::Dir {
                continue;
            }
            let durable = self
                .durable
                .nodes
                .get(id)
                .filter(|_| reach.contains_key(id));
            let empty = BTreeMap::new();
            let dchildren = durable.map_or(&empty, |d| &d.children);
            let changed = n
                .children
                .iter()
                .filter(|(k, v)| dchildren.get(*k) != Some(*v))
                .count()
                + dchildren
                    .keys()
                    .filter(|k| !n.children.contains_key(*k))
                    .count();
            report.names_dropped += changed as u64;
        }
        for n in self.nodes.values_mut() {
            n.data.drop_unsynced()?;
        }
        let log = std::mem::take(&mut self.log);
        let survives = |core: &Self, w: &PendingWrite| {
            reach.contains_key(&w.ino)
                && core.nodes.get(&w.ino).is_some_and(|n| n.kind == Kind::File)
        };
        if faults.reorder_unsynced && !log.is_empty() {
            let mut kept = 0u64;
            for w in &log {
                if rng.gen_bool(0.5) && survives(self, w) {
                    self.apply_raw(w.ino, w.off, &w.data)?;
                    report.bytes_dropped = report.bytes_dropped.saturating_sub(w.data.len() as u64);
                    kept += 1;
                }
            }
            report.writes_kept = Some((kept, log.len() as u64));
        }
        if faults.torn_write {
            let mut kept = 0u64;
            if let Some(w) = log.last() {
                if w.data.len() >= 2 && survives(self, w) {
                    let k = rng.gen_range(1..w.data.len());
                    self.apply_raw(w.ino, w.off, &w.data[..k])?;
                    kept = k as u64;
                    report.bytes_dropped = report.bytes_dropped.saturating_sub(kept);
                }
            }
            report.torn_bytes_kept = Some(kept);
        }
        self.load()?;
        self.stats.crashes.push(report.clone());
        Ok(report)
    }

    /// Writes bytes straight into the object of a durably named file (crash survivors).
    fn apply_raw(&mut self, ino: u64, off: u64, data: &[u8]) -> io::Result<()> {
        let path = self.obj_path(ino);
        let f = &mut self.nodes.get_mut(&ino).expect("survivors exist").data;
        f.write_raw(&path, off, data)
    }

    /// A clean stop: every file's data and every directory's entries become durable.
    pub fn flush(&mut self) -> io::Result<u64> {
        let files: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.kind == Kind::File && n.data.dirty())
            .map(|(i, _)| *i)
            .collect();
        let mut bytes = 0;
        for ino in files {
            bytes += self.nodes[&ino].data.unsynced();
            self.write_pages(ino, Some(false))?;
        }
        let dirs: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.kind == Kind::Dir)
            .map(|(i, _)| *i)
            .collect();
        self.persist_dirs(&dirs)?;
        self.stats.flushed_bytes += bytes;
        Ok(bytes)
    }

    /// Amnesia: the durable state and the volatile one are both emptied.
    pub fn wipe(&mut self) -> io::Result<()> {
        self.nodes.clear();
        std::fs::remove_dir_all(self.backing.join("objects"))?;
        std::fs::create_dir_all(self.backing.join("objects"))?;
        self.durable = Tree::empty();
        self.save_tree()?;
        self.load()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn core(dir: &Path) -> Core {
        Core::open(dir, MetaMode::Posix, CrashFaults::default()).expect("open")
    }

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(1)
    }

    /// Crashes `c` and reads up to `len` bytes of `name` in the root as the crash left it.
    fn read_after_crash(c: &mut Core, name: &str, len: u32) -> Vec<u8> {
        c.crash(CrashFaults::default(), &mut rng()).expect("crash");
        let f = c.lookup(ROOT, name).expect("durable name").ino;
        c.read(f, 0, len).expect("read")
    }

    /// Creates `name` in the root holding `bytes`, all of it durable.
    fn synced_file(c: &mut Core, name: &str, bytes: &[u8]) -> u64 {
        let f = c.mknode(ROOT, name, Kind::File, 0o644).expect("create").ino;
        c.write(f, 0, bytes, false).expect("write");
        c.fsync(f, true).expect("fsync");
        c.fsync_dir(ROOT).expect("fsync dir");
        f
    }

    #[test]
    fn writes_across_pages_read_back_and_survive_only_once_synced() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut c = core(tmp.path());
        let f = c.mknode(ROOT, "f", Kind::File, 0o644).expect("create").ino;
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        c.write(f, 100, &data, false).expect("write");
        let got = c.read(f, 0, 20_000).expect("read");
        assert_eq!(got.len(), 10_100);
        assert_eq!(&got[..100], &[0u8; 100][..]);
        assert_eq!(&got[100..], &data[..]);
        c.fsync(f, false).expect("fsync");
        c.fsync_dir(ROOT).expect("fsync dir");
        c.write(f, 0, b"lost", false).expect("write");
        let r = c.crash(CrashFaults::default(), &mut rng()).expect("crash");
        assert_eq!(r.bytes_dropped, 4);
        let f = c.lookup(ROOT, "f").expect("durable name").ino;
        assert_eq!(&c.read(f, 100, 10_000).expect("read")[..], &data[..]);
        assert_eq!(&c.read(f, 0, 4).expect("read")[..], &[0u8; 4][..]);
    }

    #[test]
    fn truncate_then_extend_reads_zeros_not_old_bytes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut c = core(tmp.path());
        let f = c.mknode(ROOT, "f", Kind::File, 0o644).expect("create").ino;
        c.write(f, 0, &[7u8; 6000], false).expect("write");
        c.fsync(f, true).expect("fsync");
        c.setattr(f, None, Some(10), None).expect("shrink");
        c.setattr(f, None, Some(6000), None).expect("grow");
        let got = c.read(f, 0, 6000).expect("read");
        assert_eq!(&got[..10], &[7u8; 10][..]);
        assert!(got[10..].iter().all(|b| *b == 0));
        c.fsync(f, true).expect("fsync");
        c.fsync_dir(ROOT).expect("fsync dir");
        c.crash(CrashFaults::default(), &mut rng()).expect("crash");
        let got = c.read(f, 0, 6000).expect("read");
        assert_eq!(got.len(), 6000);
        assert!(got[10..].iter().all(|b| *b == 0));
    }

    #[test]
    fn unsynced_appends_written_into_the_object_are_cut_off_by_a_crash() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut c = core(tmp.path());
        let f = synced_file(&mut c, "log", b"synced;");
        c.write(f, 7, &[9u8; 100_000], false).expect("append");
        // The append went into the object, not into memory.
        assert_eq!(c.dirty_bytes, 0);
        let obj = tmp.path().join("objects").join(f.to_string());
        assert_eq!(std::fs::metadata(&obj).expect("object").len(), 100_007);
        let r = c.crash(CrashFaults::default(), &mut rng()).expect("crash");
        assert_eq!(r.bytes_dropped, 100_000);
        assert_eq!(std::fs::metadata(&obj).expect("object").len(), 7);
        let f = c.lookup(ROOT, "log").expect("durable name").ino;
        assert_eq!(&c.read(f, 0, 1000).expect("read")[..], b"synced;");
    }

    #[test]
    fn overwrites_of_synced_bytes_stay_in_memory_and_a_crash_restores_the_old_ones() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut c = core(tmp.path());
        let f = synced_file(&mut c, "state", b"old-state");
        // O_TRUNC and a longer rewrite: the synced part in memory, the rest in the object.
        c.setattr(f, None, Some(0), None).expect("truncate");
        c.write(f, 0, b"new-state-longer", false).expect("rewrite");
        assert_eq!(c.dirty_bytes, 9);
        assert_eq!(&c.read(f, 0, 100).expect("read")[..], b"new-state-longer");
        assert_eq!(read_after_crash(&mut c, "state", 100), b"old-state");
        let f = c.lookup(ROOT, "state").expect("durable name").ino;
        c.setattr(f, None, Some(0), None).expect("truncate");
        c.write(f, 0, b"short", false).expect("rewrite");
        c.fsync(f, true).expect("fsync");
        assert_eq!(read_after_crash(&mut c, "state", 100), b"short");
    }

    #[test]
    fn a_cut_then_an_append_past_the_synced_length_reads_and_syncs_zeros_between() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut c = core(tmp.path());
        let f = synced_file(&mut c, "f", &[5u8; 1000]);
        c.setattr(f, None, Some(10), None).expect("cut");
        c.write(f, 20, &[6u8; 5], false).expect("overlay");
        c.write(f, 1500, &[7u8; 500], false).expect("tail");
        let want = |got: Vec<u8>| {
            assert_eq!(got.len(), 2000);
            assert!(got[..10].iter().all(|b| *b == 5));
            assert!(got[10..20].iter().all(|b| *b == 0));
            assert!(got[20..25].iter().all(|b| *b == 6));
            assert!(got[25..1500].iter().all(|b| *b == 0));
            assert!(got[1500..].iter().all(|b| *b == 7));
        };
        want(c.read(f, 0, 4000).expect("read"));
        c.fsync(f, true).expect("fsync");
        want(read_after_crash(&mut c, "f", 4000));
    }

    #[test]
    fn unlink_and_mkdir_are_undone_by_a_crash_until_the_directory_is_synced() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut c = core(tmp.path());
        c.mknode(ROOT, "keep", Kind::File, 0o644).expect("create");
        c.fsync_dir(ROOT).expect("fsync dir");
        c.remove(ROOT, "keep", false).expect("unlink");
        c.mknode(ROOT, "d", Kind::Dir, 0o755).expect("mkdir");
        let r = c.crash(CrashFaults::default(), &mut rng()).expect("crash");
        assert_eq!(r.names_dropped, 2);
        let names: Vec<String> = c
            .readdir(ROOT)
            .expect("readdir")
            .into_iter()
            .map(|e| e.2)
            .collect();
        assert_eq!(names, vec![".", "..", "keep"]);
    }
}
