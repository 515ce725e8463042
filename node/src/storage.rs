//! The durable append log in `SQUALL_DATA_DIR`.
//!
//! Records are bincode-encoded and framed as `len: u32 LE | checksum: u32 LE | bytes`.
//! [`Storage::append`] only buffers in process memory; [`Storage::sync`] writes the buffer
//! and fsyncs. A SIGKILL therefore loses exactly what was not synced, as a power cut would,
//! even though the kernel's page cache would have survived a mere process death.
//! On open, a torn or corrupt tail (a crash in the middle of a sync) is truncated away.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest record accepted when reading back, a guard against a corrupt length.
pub const RECORD_BYTES_MAX: usize = 16 << 20;

const LOG_FILE: &str = "log.bin";

/// The append log of one node.
pub struct Storage {
    path: PathBuf,
    file: File,
    pending: Vec<u8>,
}

fn checksum(bytes: &[u8]) -> u32 {
    // FNV-1a: enough to tell a torn write from a whole one.
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

impl Storage {
    /// Opens (creating) the log in `dir` and returns it with every intact record.
    pub fn open<R: DeserializeOwned>(dir: &Path) -> anyhow::Result<(Storage, Vec<R>)> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        // A file just created is only a name in the directory until the directory is
        // synced: a crash before that loses the file with everything later synced in it.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("fsync directory {}", dir.display()))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut records = Vec::new();
        let mut at = 0usize;
        while bytes.len() - at >= 8 {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let sum = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
            if len > RECORD_BYTES_MAX || bytes.len() - at - 8 < len {
                break;
            }
            let body = &bytes[at + 8..at + 8 + len];
            if checksum(body) != sum {
                break;
            }
            match bincode::deserialize::<R>(body) {
                Ok(r) => records.push(r),
                Err(_) => break,
            }
            at += 8 + len;
        }
        if at < bytes.len() {
            file.set_len(at as u64)?;
            file.seek(SeekFrom::End(0))?;
            file.sync_all()?;
        }
        Ok((
            Storage {
                path,
                file,
                pending: Vec::new(),
            },
            records,
        ))
    }

    /// Buffers `record`; it is not durable until [`Storage::sync`].
    pub fn append<R: Serialize>(&mut self, record: &R) -> anyhow::Result<()> {
        let body = bincode::serialize(record)?;
        anyhow::ensure!(
            body.len() <= RECORD_BYTES_MAX,
            "record of {} bytes too large",
            body.len()
        );
        self.pending
            .extend_from_slice(&(body.len() as u32).to_le_bytes());
        self.pending
            .extend_from_slice(&checksum(&body).to_le_bytes());
        self.pending.extend_from_slice(&body);
        Ok(())
    }

    /// Writes the buffered records and fsyncs them.
    pub fn sync(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.pending)
            .with_context(|| format!("write {}", self.path.display()))?;
        self.file
            .sync_data()
            .with_context(|| format!("fsync {}", self.path.display()))?;
        self.pending.clear();
        Ok(())
    }

    /// Bytes appended but not yet synced.
    pub fn unsynced_bytes(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_records_survive_unsynced_do_not() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, recs) = Storage::open::<u64>(dir.path()).unwrap();
            assert!(recs.is_empty());
            s.append(&1u64).unwrap();
            s.append(&2u64).unwrap();
            s.sync().unwrap();
            s.append(&3u64).unwrap();
            // dropped without sync: a crash
        }
        let (_, recs) = Storage::open::<u64>(dir.path()).unwrap();
        assert_eq!(recs, vec![1, 2]);
    }

    #[test]
    fn torn_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = Storage::open::<String>(dir.path()).unwrap();
            s.append(&"whole".to_string()).unwrap();
            s.sync().unwrap();
        }
        let path = dir.path().join(LOG_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let (mut s, recs) = Storage::open::<String>(dir.path()).unwrap();
        assert_eq!(recs, vec!["whole".to_string()]);
        s.append(&"next".to_string()).unwrap();
        s.sync().unwrap();
        drop(s);
        let (_, recs) = Storage::open::<String>(dir.path()).unwrap();
        assert_eq!(recs, vec!["whole".to_string(), "next".to_string()]);
    }
}
