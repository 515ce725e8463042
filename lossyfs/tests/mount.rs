//! lossyfs through a real mount, served by the real helper binary; the writers are real
//! processes that squall would SIGKILL. Skips (with the reason) where FUSE cannot mount.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lossyfs::fleet::{FsConfig, FsKind};
use lossyfs::helper::{Helper, HelperOpts};
use lossyfs::{CrashFaults, MetaMode};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_squall-lossyfs"))
}

/// Whether FUSE mounts here; prints why not.
fn fuse_ok() -> bool {
    let tmp = tempfile::tempdir().expect("tempdir");
    match lossyfs::mount::probe(tmp.path()) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

struct Rig {
    _tmp: tempfile::TempDir,
    backing: PathBuf,
    mnt: PathBuf,
    helper: Option<Helper>,
}

impl Rig {
    fn new(meta: MetaMode, faults: CrashFaults, seed: u64) -> Rig {
        let tmp = tempfile::tempdir().expect("tempdir");
        let backing = tmp.path().join("backing");
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir_all(&mnt).expect("mkdir");
        let opts = HelperOpts {
            bin: bin(),
            meta,
            faults,
            seed,
        };
        let helper = Helper::start(&opts, "n1", &backing, &mnt).expect("mount");
        Rig {
            _tmp: tmp,
            backing,
            mnt,
            helper: Some(helper),
        }
    }

    fn posix() -> Rig {
        Rig::new(MetaMode::Posix, CrashFaults::default(), 1)
    }

    fn p(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }

    fn crash(&mut self) -> lossyfs::CrashReport {
        self.helper
            .as_mut()
            .expect("running")
            .crash()
            .expect("crash")
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.mnt)
            .expect("readdir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
            .collect();
        v.sort();
        v
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(h) = self.helper.take() {
            let _ = h.stop();
        }
    }
}

/// A writer process, as a node would be: runs `script` (Python) with the mount as its
/// data directory, then waits to be killed. Returns once it printed `done`.
fn node_process(dir: &Path, script: &str) -> std::process::Child {
    let full = format!(
        "import os, sys, time\nd = sys.argv[1]\n{script}\nprint('done', flush=True)\ntime.sleep(60)\n"
    );
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(full)
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::BufRead;
    let mut line = String::new();
    let out = child.stdout.as_mut().expect("piped");
    std::io::BufReader::new(out)
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "done", "the writer did not finish");
    child
}

fn sigkill(mut child: std::process::Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

const WRITE_TMP_FSYNC_RENAME: &str = "
with open(os.path.join(d, 'state.tmp'), 'w') as f:
    f.write('v1')
    f.flush()
    os.fsync(f.fileno())
os.rename(os.path.join(d, 'state.tmp'), os.path.join(d, 'state'))
";

#[test]
fn rename_into_place_without_directory_fsync_is_lost_after_kill() {
    if !fuse_ok() {
        return;
    }
    let mut rig = Rig::posix();
    let node = node_process(&rig.mnt, WRITE_TMP_FSYNC_RENAME);
    assert_eq!(rig.names(), vec!["state"]);
    sigkill(node);
    let report = rig.crash();
    assert_eq!(
        rig.names(),
        Vec::<String>::new(),
        "the rename was never durable"
    );
    assert!(report.names_dropped >= 1, "{report:?}");
}

#[test]
fn rename_into_place_with_directory_fsync_survives_kill() {
    if !fuse_ok() {
        return;
    }
    let mut rig = Rig::posix();
    let script = format!(
        "{WRITE_TMP_FSYNC_RENAME}
fd = os.open(d, os.O_RDONLY)
os.fsync(fd)
os.close(fd)
"
    );
    let node = node_process(&rig.mnt, &script);
    sigkill(node);
    rig.crash();
    assert_eq!(rig.names(), vec!["state"]);
    assert_eq!(std::fs::read_to_string(rig.p("state")).expect("read"), "v1");
}

#[test]
fn lossy_data_mode_keeps_the_rename_but_not_unsynced_data() {
    if !fuse_ok() {
        return;
    }
    let mut rig = Rig::new(MetaMode::Immediate, CrashFaults::default(), 1);
    let node = node_process(
        &rig.mnt,
        "open(os.path.join(d, 'a.tmp'), 'w').write('never synced')
os.rename(os.path.join(d, 'a.tmp'), os.path.join(d, 'a'))",
    );
    sigkill(node);
    let report = rig.crash();
    assert_eq!(rig.names(), vec!["a"]);
    assert_eq!(std::fs::read(rig.p("a")).expect("read"), b"");
    assert_eq!(report.bytes_dropped, 12, "{report:?}");
}

#[test]
fn unsynced_append_is_dropped_and_synced_prefix_kept() {
    if !fuse_ok() {
        return;
    }
    let mut rig = Rig::posix();
    let node = node_process(
        &rig.mnt,
        "p = os.path.join(d, 'log')
with open(p, 'a') as f:
    f.write('synced\\n'); f.flush(); os.fsync(f.fileno())
fd = os.open(d, os.O_RDONLY); os.fsync(fd); os.close(fd)
with open(p, 'a') as f:
    f.write('lost\\n')
assert open(p).read() == 'synced\\nlost\\n'",
    );
    sigkill(node);
    let report = rig.crash();
    assert_eq!(
        std::fs::read_to_string(rig.p("log")).expect("read"),
        "synced\n"
    );
    // The kernel's writeback cache hands the dirty page over whole: the count is of what
    // reached the file system unsynced, at least the 5 bytes lost.
    assert!(report.bytes_dropped >= 5, "{report:?}");
    assert_eq!(report.files_dropped, 1, "{report:?}");
}

#[test]
fn o_sync_and_o_dsync_writes_are_durable_without_fsync() {
    if !fuse_ok() {
        return;
    }
    let mut rig = Rig::posix();
    for name in ["s", "d"] {
        std::fs::write(rig.p(name), b"").expect("create");
    }
    let dir = std::fs::File::open(&rig.mnt).expect("open dir");
    dir.sync_all().expect("fsync dir");
    for (name, flag) in [("s", libc::O_SYNC), ("d", libc::O_DSYNC)] {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(flag)
            .open(rig.p(name))
            .expect("open");
        f.write_all(b"durable").expect("write");
    }
    rig.crash();
    for name in ["s", "d"] {
        assert_eq!(
            std::fs::read(rig.p(name)).expect("read"),
            b"durable",
            "{name}"
        );
    }
}

/// Writes `n` unsynced 8-byte records to a file whose empty self is durable.
fn unsynced_records(rig: &Rig, n: usize) {
    use std::io::Write;
    std::fs::write(rig.p("log"), b"").expect("create");
    std::fs::File::open(rig.p("log"))
        .and_then(|f| f.sync_all())
        .expect("fsync");
    std::fs::File::open(&rig.mnt)
        .and_then(|d| d.sync_all())
        .expect("fsync dir");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(rig.p("log"))
        .expect("open");
    for i in 0..n {
        f.write_all(format!("rec{i:04}\n").as_bytes())
            .expect("write");
    }
}

#[test]
fn torn_write_keeps_part_of_the_last_unsynced_write() {
    if !fuse_ok() {
        return;
    }
    let faults = CrashFaults {
        torn_write: true,
        ..Default::default()
    };
    let mut rig = Rig::new(MetaMode::Posix, faults, 7);
    unsynced_records(&rig, 3);
    let report = rig.crash();
    let kept = report.torn_bytes_kept.expect("torn") as usize;
    assert!((1..8).contains(&kept), "{report:?}");
    let got = std::fs::read(rig.p("log")).expect("read");
    // Zeros where the lost writes were, then a proper prefix of the last one.
    let mut want = vec![0u8; 16];
    want.extend_from_slice(&b"rec0002\n"[..kept]);
    assert_eq!(got, want);
}

#[test]
fn reorder_unsynced_keeps_a_subset_of_the_writes_from_the_seed() {
    if !fuse_ok() {
        return;
    }
    let faults = CrashFaults {
        reorder_unsynced: true,
        ..Default::default()
    };
    let survivors = |seed: u64| {
        let mut rig = Rig::new(MetaMode::Posix, faults, seed);
        unsynced_records(&rig, 32);
        let report = rig.crash();
        let got = std::fs::read(rig.p("log")).expect("read");
        let kept: Vec<usize> = (0..32)
            .filter(|i| got.get(i * 8..i * 8 + 8) == Some(format!("rec{i:04}\n").as_bytes()))
            .collect();
        assert_eq!(
            report.writes_kept,
            Some((kept.len() as u64, 32)),
            "{report:?}"
        );
        kept
    };
    let a = survivors(11);
    assert!(!a.is_empty() && a.len() < 32, "{a:?}");
    let is_prefix = a.iter().enumerate().all(|(i, k)| i == *k);
    assert!(!is_prefix, "a prefix survived, not a subset: {a:?}");
    assert_eq!(a, survivors(11), "the same seed keeps the same writes");
}

#[test]
fn stop_flushes_everything_to_the_backing_store() {
    if !fuse_ok() {
        return;
    }
    let mut rig = Rig::posix();
    std::fs::create_dir(rig.p("sub")).expect("mkdir");
    std::fs::write(rig.p("sub/x"), b"kept at stop").expect("write");
    rig.helper.take().expect("running").stop().expect("stop");
    assert!(lossyfs::mount::mounts_under(&rig.mnt).is_empty());
    // A new mount over the same backing store sees it all.
    let opts = HelperOpts {
        bin: bin(),
        meta: MetaMode::Posix,
        faults: CrashFaults::default(),
        seed: 1,
    };
    rig.helper = Some(Helper::start(&opts, "n1", &rig.backing, &rig.mnt).expect("mount"));
    rig.crash();
    assert_eq!(
        std::fs::read(rig.p("sub/x")).expect("read"),
        b"kept at stop"
    );
}

fn wait_unmounted(mnt: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if lossyfs::mount::mounts_under(mnt).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Starts `squall-lossyfs` over `backing` at `mnt` and waits for its `ready` line.
fn start_helper(backing: &Path, mnt: &Path) -> std::process::Child {
    use std::io::BufRead;
    let mut child = Command::new(bin())
        .arg("--backing")
        .arg(backing)
        .arg("--mount")
        .arg(mnt)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("helper");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().expect("piped"))
        .read_line(&mut line)
        .expect("ready");
    assert!(line.contains("ready"), "{line}");
    child
}

#[test]
fn helper_unmounts_when_its_harness_vanishes_or_it_is_terminated() {
    if !fuse_ok() {
        return;
    }
    for how in ["stdin-closed", "sigterm"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir_all(&mnt).expect("mkdir");
        let mut child = start_helper(&tmp.path().join("b"), &mnt);
        std::fs::write(mnt.join("f"), b"x").expect("write");
        assert_eq!(lossyfs::mount::mounts_under(&mnt).len(), 1);
        match how {
            "stdin-closed" => drop(child.stdin.take()),
            _ => {
                // SAFETY: signalling our own child.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            }
        }
        let status = child.wait().expect("wait");
        assert!(status.success(), "{how}: {status:?}");
        assert!(wait_unmounted(&mnt), "{how}: still mounted");
        // What was written was flushed at the stop.
        assert!(tmp.path().join("b/tree.json").is_file(), "{how}");
    }
}

#[test]
fn stale_mount_of_a_killed_helper_is_cleaned_up() {
    if !fuse_ok() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let mnt = tmp.path().join("results/run/data/n1");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let mut child = start_helper(&tmp.path().join("b"), &mnt);
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let results = tmp.path().join("results");
    assert_eq!(lossyfs::mount::mounts_under(&results), vec![mnt.clone()]);
    assert_eq!(lossyfs::mount::cleanup_stale(&results), vec![mnt.clone()]);
    assert!(lossyfs::mount::mounts_under(&results).is_empty());
}

#[test]
fn fs_config_names_parse() {
    assert_eq!(FsKind::parse("lossy"), Ok(FsKind::Lossy));
    assert_eq!(FsKind::parse("lossy-data"), Ok(FsKind::LossyData));
    assert!(FsKind::parse("ext4").is_err());
    assert!(FsConfig::default().is_native());
    let mut f = CrashFaults::default();
    assert!(f.add("torn-write").is_ok() && f.torn_write);
    assert!(f.add("bit-flip").is_err());
}
