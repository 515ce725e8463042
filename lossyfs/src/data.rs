//! One file's data: which bytes are durable, which a crash drops, and where each lives.
//!
//! A file's bytes are kept in its object (a file in the backing store). The first
//! `durable_len` bytes of the object are what the file held at its last sync; a crash
//! cuts the object back to that length ([`FileData::drop_unsynced`]). What the node sees
//! (the volatile content, `size` bytes long) is, position by position:
//!
//! - below `durable_len`, written since the sync: the [`Overlay`], extents in memory (the
//!   durable bytes under them must survive a crash, so they are not touched);
//! - below `durable_len`, cut away by a truncate since the sync (from `cut` on): zeros;
//! - otherwise below `durable_len`: the object;
//! - from `durable_len` on (the tail: appends, the common case of a write-heavy node):
//!   the object itself. Tail writes go straight into it, unsynced, so they cost one copy
//!   and no memory here; the backing file system may write them to its disk early, which
//!   does not make them durable: `durable_len` says what is.
//!
//! [`FileData::write_out`] (fsync, a clean stop, write-back under memory pressure) makes
//! the volatile content the object's: the overlay's extents go out one write each, what a
//! truncate cut is zeroed, the length is set, and the object is synced when asked.
//!
//! The unsynced tail in the object is harmless to a restart of the helper only because
//! the helper flushes before it exits (a helper killed with SIGKILL leaves its tail in
//! place, as a flush would have).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Longest extent of the overlay: longer runs of writes start a new extent, so no write
/// ever moves more than this many bytes of earlier writes.
pub const EXTENT_MAX: usize = 1 << 20;

/// Writes below `durable_len` since the last sync: non-overlapping extents by offset.
#[derive(Debug, Default)]
pub struct Overlay {
    extents: BTreeMap<u64, Vec<u8>>,
    bytes: u64,
}

impl Overlay {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.extents.is_empty()
    }

    /// Lays `data` over `[off, off + len)`: covered bytes are overwritten in place, gaps
    /// extend the extent ending where they start (up to [`EXTENT_MAX`]) or become new
    /// extents. Returns the bytes added.
    pub fn write(&mut self, off: u64, data: &[u8]) -> u64 {
        let end = off + data.len() as u64;
        let src = |from: u64, to: u64| &data[(from - off) as usize..(to - off) as usize];
        let mut at = off;
        let mut added = 0;
        while at < end {
            let next_start = self
                .extents
                .range(at + 1..)
                .next()
                .map_or(u64::MAX, |(s, _)| *s);
            if let Some((&s, ext)) = self.extents.range_mut(..=at).next_back() {
                let e = s + ext.len() as u64;
                if at < e {
                    let to = end.min(e);
                    ext[(at - s) as usize..(to - s) as usize].copy_from_slice(src(at, to));
                    at = to;
                    continue;
                }
                if at == e && ext.len() < EXTENT_MAX {
                    let to = end.min(next_start).min(s + EXTENT_MAX as u64);
                    ext.extend_from_slice(src(at, to));
                    added += to - at;
                    at = to;
                    continue;
                }
            }
            let to = end.min(next_start).min(at + EXTENT_MAX as u64);
            self.extents.insert(at, src(at, to).to_vec());
            added += to - at;
            at = to;
        }
        self.bytes += added;
        added
    }

    /// Forgets everything at or past `len`; returns the bytes freed.
    pub fn truncate(&mut self, len: u64) -> u64 {
        let mut freed: u64 = self
            .extents
            .split_off(&len)
            .values()
            .map(|e| e.len() as u64)
            .sum();
        if let Some((&s, ext)) = self.extents.range_mut(..len).next_back() {
            let keep = (len - s) as usize;
            if ext.len() > keep {
                freed += (ext.len() - keep) as u64;
                ext.truncate(keep);
            }
        }
        self.bytes -= freed;
        freed
    }

    /// The extents that reach into `[from, to)`, in order.
    fn overlapping(&self, from: u64, to: u64) -> impl Iterator<Item = (u64, &[u8])> {
        let first = self
            .extents
            .range(..=from)
            .next_back()
            .map_or(from, |(s, _)| *s);
        self.extents
            .range(first..to)
            .map(|(s, e)| (*s, e.as_slice()))
            .filter(move |(s, e)| s + e.len() as u64 > from)
    }

    /// Copies what it holds of `[off, off + out.len())` over `out`.
    fn patch(&self, off: u64, out: &mut [u8]) {
        let end = off + out.len() as u64;
        for (s, ext) in self.overlapping(off, end) {
            let (from, to) = (s.max(off), (s + ext.len() as u64).min(end));
            out[(from - off) as usize..(to - off) as usize]
                .copy_from_slice(&ext[(from - s) as usize..(to - s) as usize]);
        }
    }

    /// The gaps it leaves in `[from, to)`, in order.
    fn gaps(&self, from: u64, to: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = from;
        for (s, ext) in self.overlapping(from, to) {
            if s > at {
                out.push((at, s));
            }
            at = at.max(s + ext.len() as u64);
        }
        if at < to {
            out.push((at, to));
        }
        out
    }
}

/// Reads `out.len()` bytes at `off` of `obj` (zeros past its end).
fn read_obj(obj: Option<&File>, off: u64, out: &mut [u8]) -> io::Result<()> {
    let Some(obj) = obj else {
        return Ok(());
    };
    let mut got = 0;
    while got < out.len() {
        match obj.read_at(&mut out[got..], off + got as u64)? {
            0 => break,
            k => got += k,
        }
    }
    Ok(())
}

/// Writes zeros over `[from, to)` of `obj`.
fn zero_obj(obj: &File, from: u64, to: u64) -> io::Result<()> {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(ZEROS.len());
        obj.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// One file's data (see the module docs).
#[derive(Debug, Default)]
pub struct FileData {
    /// The object, once it exists.
    obj: Option<File>,
    /// Length of the object file.
    obj_len: u64,
    /// Bytes `[0, durable_len)` of the object are the file's durable content.
    durable_len: u64,
    /// From here to `durable_len` the volatile content is zeros (or the overlay).
    cut: u64,
    /// Volatile size.
    size: u64,
    /// Writes below `durable_len` since the last sync.
    overlay: Overlay,
    /// Bytes written since the last sync.
    unsynced: u64,
    /// Truncated since the last sync.
    truncated: bool,
}

impl FileData {
    /// A file whose durable content is all of `obj`.
    pub fn from_object(obj: File) -> io::Result<FileData> {
        let len = obj.metadata()?.len();
        Ok(FileData {
            obj: Some(obj),
            obj_len: len,
            durable_len: len,
            cut: len,
            size: len,
            ..FileData::default()
        })
    }

    /// Volatile size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes written since the last sync.
    pub fn unsynced(&self) -> u64 {
        self.unsynced
    }

    /// Truncated since the last sync.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Bytes held in memory.
    pub fn memory(&self) -> u64 {
        self.overlay.bytes()
    }

    /// Whether the object exists.
    pub fn has_object(&self) -> bool {
        self.obj.is_some()
    }

    /// Whether a sync would change the object.
    pub fn dirty(&self) -> bool {
        !self.overlay.is_empty() || self.truncated || self.size != self.durable_len
    }

    /// Creates the (empty) object at `path` if there is none yet; true when it did.
    pub fn ensure_object(&mut self, path: &Path) -> io::Result<bool> {
        if self.obj.is_some() {
            return Ok(false);
        }
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        self.obj = Some(f);
        self.obj_len = 0;
        Ok(true)
    }

    /// Writes `data` at `off`: the tail into the object (created at `path` if need be),
    /// the rest into the overlay. Returns the bytes of memory added.
    pub fn write(&mut self, path: &Path, off: u64, data: &[u8]) -> io::Result<u64> {
        let end = off + data.len() as u64;
        let split = off.max(self.durable_len).min(end);
        let mut added = 0;
        if split > off {
            added = self.overlay.write(off, &data[..(split - off) as usize]);
        }
        if end > split {
            self.ensure_object(path)?;
            let obj = self.obj.as_ref().expect("ensured");
            obj.write_all_at(&data[(split - off) as usize..], split)?;
            self.obj_len = self.obj_len.max(end);
        }
        self.size = self.size.max(end);
        self.unsynced += data.len() as u64;
        Ok(added)
    }

    /// Sets the volatile size; returns the bytes of memory freed.
    pub fn truncate(&mut self, len: u64) -> io::Result<u64> {
        let mut freed = 0;
        // The tail past the new length (or all of it) goes now: a later extension must
        // read zeros there.
        let keep = len.max(self.durable_len);
        if self.obj_len > keep {
            self.obj
                .as_ref()
                .expect("a longer object exists")
                .set_len(keep)?;
            self.obj_len = keep;
        }
        if len < self.durable_len {
            self.cut = self.cut.min(len);
            freed = self.overlay.truncate(len);
        }
        self.size = len;
        self.truncated = true;
        Ok(freed)
    }

    /// Reads up to `len` bytes at `off`.
    pub fn read(&self, off: u64, len: u32) -> io::Result<Vec<u8>> {
        if off >= self.size {
            return Ok(Vec::new());
        }
        let end = self.size.min(off + len as u64);
        let mut out = vec![0u8; (end - off) as usize];
        let obj = self.obj.as_ref();
        // The durable part not cut away, then the tail; the rest stays zero.
        if off < self.cut {
            let to = end.min(self.cut);
            read_obj(obj, off, &mut out[..(to - off) as usize])?;
        }
        let tail = off.max(self.durable_len);
        if tail < end {
            read_obj(obj, tail, &mut out[(tail - off) as usize..])?;
        }
        self.overlay.patch(off, &mut out);
        Ok(out)
    }

    /// Makes the volatile content the object's (created at `path` if need be); syncs it
    /// when `sync` says how (`Some(true)`: data only). Returns the bytes of memory freed.
    pub fn write_out(&mut self, path: &Path, sync: Option<bool>) -> io::Result<u64> {
        self.ensure_object(path)?;
        let obj = self.obj.as_ref().expect("ensured");
        let lim = self.size.min(self.durable_len);
        if self.cut < lim {
            for (from, to) in self.overlay.gaps(self.cut, lim) {
                zero_obj(obj, from, to)?;
            }
        }
        for (&s, ext) in &self.overlay.extents {
            obj.write_all_at(ext, s)?;
        }
        if self.obj_len != self.size {
            obj.set_len(self.size)?;
        }
        match sync {
            Some(true) => obj.sync_data()?,
            Some(false) => obj.sync_all()?,
            None => {}
        }
        let freed = self.overlay.bytes();
        self.overlay = Overlay::default();
        self.obj_len = self.size;
        self.durable_len = self.size;
        self.cut = self.size;
        self.unsynced = 0;
        self.truncated = false;
        Ok(freed)
    }

    /// A crash: the object loses everything past its durable length.
    pub fn drop_unsynced(&mut self) -> io::Result<()> {
        if self.obj_len > self.durable_len {
            self.obj
                .as_ref()
                .expect("a longer object exists")
                .set_len(self.durable_len)?;
            self.obj_len = self.durable_len;
        }
        Ok(())
    }

    /// Writes `data` at `off` straight into the object (crash survivors), past any
    /// durable length.
    pub fn write_raw(&mut self, path: &Path, off: u64, data: &[u8]) -> io::Result<()> {
        self.ensure_object(path)?;
        let obj = self.obj.as_ref().expect("ensured");
        obj.write_all_at(data, off)?;
        self.obj_len = self.obj_len.max(off + data.len() as u64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_check(ops: &[(u64, usize, u8)]) {
        let mut o = Overlay::default();
        let mut model: Vec<Option<u8>> = Vec::new();
        for &(off, len, b) in ops {
            o.write(off, &vec![b; len]);
            let end = off as usize + len;
            if model.len() < end {
                model.resize(end, None);
            }
            for m in &mut model[off as usize..end] {
                *m = Some(b);
            }
        }
        let held = model.iter().filter(|m| m.is_some()).count() as u64;
        assert_eq!(o.bytes(), held);
        let mut out = vec![0xAAu8; model.len()];
        o.patch(0, &mut out);
        for (i, m) in model.iter().enumerate() {
            assert_eq!(out[i], m.unwrap_or(0xAA), "byte {i}");
        }
        let gaps = o.gaps(0, model.len() as u64);
        let gap_bytes: u64 = gaps.iter().map(|(a, b)| b - a).sum();
        assert_eq!(gap_bytes, model.len() as u64 - held);
        let mut prev = 0;
        for (s, e) in o.extents.iter().map(|(s, e)| (*s, *s + e.len() as u64)) {
            assert!(s >= prev, "extents overlap at {s}");
            assert!(e - s <= EXTENT_MAX as u64);
            prev = e;
        }
    }

    #[test]
    fn overlay_writes_in_any_order_read_back_as_the_last_write() {
        model_check(&[(0, 10, 1), (5, 10, 2), (20, 5, 3), (12, 10, 4), (0, 30, 5)]);
        model_check(&[(100, 10, 1), (50, 10, 2), (0, 200, 3), (150, 1, 4)]);
        model_check(&[(3, 1, 1), (1, 1, 2), (2, 1, 3), (0, 5, 4), (4, 4, 5)]);
    }

    #[test]
    fn long_appends_split_into_bounded_extents() {
        let mut o = Overlay::default();
        let chunk = vec![7u8; 300 * 1024];
        for i in 0..10u64 {
            o.write(i * chunk.len() as u64, &chunk);
        }
        assert_eq!(o.bytes(), 10 * chunk.len() as u64);
        assert!(o.extents.values().all(|e| e.len() <= EXTENT_MAX));
        assert_eq!(o.extents.len(), (10 * chunk.len()).div_ceil(EXTENT_MAX));
        model_check(&[(0, EXTENT_MAX + 5, 1), (EXTENT_MAX as u64 - 2, 9, 2)]);
    }

    #[test]
    fn overlay_truncate_frees_what_lies_past_the_length() {
        let mut o = Overlay::default();
        o.write(0, &[1; 100]);
        o.write(200, &[2; 100]);
        assert_eq!(o.truncate(50), 150);
        assert_eq!(o.bytes(), 50);
        assert_eq!(o.gaps(0, 100), vec![(50, 100)]);
    }
}
