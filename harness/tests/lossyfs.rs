//! `squall run --fs lossy`: a node that never fsyncs is caught only on the lossy mount,
//! the same node with fsync passes on it, the counters land in metrics.json, and no mount
//! outlives the run, however the harness ends. Skips (with the reason) where FUSE cannot
//! mount.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use common::*;

/// `squall-lossyfs` is another package's binary: build it next to `squall`.
fn ensure_lossyfs_bin() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| cargo_build_bin("lossyfs", "squall-lossyfs"));
}

/// Whether FUSE mounts here; prints why not.
fn fuse_ok() -> bool {
    let tmp = tempfile::tempdir().expect("tempdir");
    match lossyfs::mount::probe(tmp.path()) {
        Ok(()) => {
            ensure_lossyfs_bin();
            python_available()
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// A scratch directory for a test that mounts lossyfs; `None` (and a line saying why)
/// where FUSE cannot mount here, and the test should return.
fn fuse_tempdir() -> Option<tempfile::TempDir> {
    fuse_ok().then(|| tempfile::tempdir().expect("tempdir"))
}

/// n1 killed and restarted twice in a 3 s run of two nodes.
fn kill_twice() -> String {
    kill_twice_plan(&["n1", "n2"], 3000, [700, 1000, 1700, 2000])
}

fn node_cmd(fsync: bool) -> String {
    let args = if fsync {
        "--scratch --fsync"
    } else {
        "--scratch"
    };
    python_cmd("examples/python/restart_counter.py", args)
}

/// A run of `workload` on two nodes running `cmd` under the kill-twice plan, on `fs`.
fn kill_twice_run(workload: &str, cmd: &str, fs: &str, results: &Path) -> (Output, PathBuf) {
    std::fs::create_dir_all(results).expect("results dir");
    let plan = schedule_file(results, &kill_twice());
    let args = [
        "run",
        "--workload",
        workload,
        "--nodes",
        "2",
        "--node-cmd",
        cmd,
        "--schedule",
        &plan,
        "--fs",
        fs,
    ];
    run_in(results, &args)
}

/// A durability run of the restart counter under the kill-twice plan.
fn durability_run(fsync: bool, fs: &str, results: &Path) -> (Output, PathBuf) {
    kill_twice_run("durability", &node_cmd(fsync), fs, results)
}

fn lossy_mounts() -> Vec<PathBuf> {
    lossyfs::mount::mounts_under(Path::new("/"))
}

fn mounts_in(root: &Path) -> Vec<PathBuf> {
    lossyfs::mount::mounts_under(root)
}

#[test]
fn node_without_fsync_is_caught_on_lossy_fs_only() {
    let Some(tmp) = fuse_tempdir() else {
        return;
    };

    // Native: the page cache keeps the unsynced record across SIGKILL; nothing is caught
    // about the synced count (the scratch file does survive, which key 1 shows).
    let native = tmp.path().join("native");
    let (out, dir) = durability_run(false, "native", &native);
    let verdict = verdict_of(&dir);
    let why = reason(&verdict);
    assert!(
        !why.contains("synced records from earlier incarnations"),
        "{why}\n{}",
        text(&out)
    );

    // Lossy: the record was never synced, so the restarted node undercounts.
    let lossy = tmp.path().join("lossy");
    let (out, dir) = durability_run(false, "lossy", &lossy);
    assert_exit(&out, 1);
    verdict_saying(&dir, "found 0 synced records");
    let metrics = metrics_of(&dir);
    let fs = &metrics["fs"];
    assert_eq!(fs["kind"], "lossy");
    assert_eq!(fs["kills"], 2, "{fs}");
    let n1 = &fs["nodes"]["n1"];
    assert_eq!(n1["kills"].as_array().map(Vec::len), Some(2), "{n1}");
    assert!(n1["bytes_dropped"].as_u64() > Some(0), "{n1}");
    assert!(mounts_in(&lossy).is_empty(), "{:?}", lossy_mounts());
}

#[test]
fn node_with_fsync_keeps_its_records_on_lossy_fs() {
    let Some(tmp) = fuse_tempdir() else {
        return;
    };
    let (out, dir) = durability_run(true, "lossy", tmp.path());
    assert_exit(&out, 0);
    let metrics = metrics_of(&dir);
    let n1 = &metrics["fs"]["nodes"]["n1"];
    // Records fsynced (how many starts got that far depends on the machine's load); the
    // scratch line of a killed start is dropped.
    assert!(n1["fsyncs"].as_u64() >= Some(1), "{n1}");
    assert!(n1["dir_fsyncs"].as_u64() >= Some(1), "{n1}");
    assert!(n1["bytes_dropped"].as_u64() > Some(0), "{n1}");
    // What was written stays in the backing store after the run.
    assert!(mounts_in(tmp.path()).is_empty(), "{:?}", lossy_mounts());
}

#[test]
fn lossy_fs_that_drops_nothing_after_kills_is_a_warning() {
    let Some(tmp) = fuse_tempdir() else {
        return;
    };
    // The echo node writes nothing: kills drop nothing.
    let (out, dir) = kill_twice_run("echo", &python_echo_node(), "lossy", tmp.path());
    let verdict = verdict_of(&dir);
    let warnings = verdict["warnings"].to_string();
    assert!(
        warnings.contains("dropped nothing"),
        "{warnings}\n{}",
        text(&out)
    );
}

#[test]
fn fs_fault_without_lossy_fs_is_a_usage_error() {
    for flags in [["--fs-fault", "torn-write"], ["--fs", "zfs"]] {
        let out = squall(&["run", flags[0], flags[1], "--time-limit", "1s"])
            .output()
            .expect("run squall");
        assert_exit(&out, 254);
    }
}

/// The default file system is `auto`: the lossy mount for a free-running run under
/// `--nemesis all` where FUSE is usable (else native, saying why), native under any other
/// nemesis; `--fs native` opts out. The choice is in the summary, verdict.json and
/// metrics.json.
#[test]
fn default_fs_is_lossy_under_nemesis_all_where_fuse_is_usable_and_native_otherwise() {
    let usable = fuse_ok();
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = |name: &str, extra: &[&str]| {
        let mut args = vec!["run", "--workload", "echo", "--nodes", "2"];
        args.extend_from_slice(&["--time-limit", "2s", "--recovery-time", "1s"]);
        args.extend_from_slice(extra);
        let (out, dir) = run_in(&tmp.path().join(name), &args);
        assert_exit(&out, 0);
        let fs = metrics_of(&dir)["fs"].clone();
        assert_eq!(verdict_of(&dir)["fs"]["kind"], fs["kind"], "{fs}");
        let summary = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = format!("fs        {}", fs["kind"].as_str().unwrap_or("?"));
        assert!(summary.contains(&line), "{summary}");
        (fs, text(&out))
    };

    let (fs, out) = run("all", &["--nemesis", "all"]);
    let chosen = fs["chosen"].as_str().unwrap_or("").to_string();
    if usable {
        assert_eq!(fs["kind"], "lossy", "{fs}\n{out}");
        assert!(fs["nodes"]["n1"].is_object(), "{fs}");
    } else {
        assert_eq!(fs["kind"], "native", "{fs}");
        assert!(chosen.contains("FUSE is not usable"), "{chosen}");
        assert!(out.contains("node data on the native file system"), "{out}");
    }
    assert!(mounts_in(tmp.path()).is_empty(), "{:?}", lossy_mounts());

    let (fs, out) = run("kill", &["--nemesis", "kill"]);
    assert_eq!(fs["kind"], "native", "{fs}");
    assert!(
        fs["chosen"].as_str().unwrap_or("").contains("not all"),
        "{fs}"
    );
    assert!(
        !out.contains("node data on the native file system"),
        "{out}"
    );

    let (fs, _) = run("opt-out", &["--nemesis", "all", "--fs", "native"]);
    assert_eq!(fs["kind"], "native", "{fs}");
    assert!(fs["chosen"].is_null(), "{fs}");
}

/// Starts a long lossy echo run, waits until its mounts are up, ends the harness with
/// `sig`, and returns the results directory.
fn interrupted_run(sig: i32, results: &Path) {
    let echo = python_echo_node();
    let args = [
        "run",
        "--workload",
        "echo",
        "--nodes",
        "2",
        "--node-cmd",
        &echo,
        "--time-limit",
        "60s",
        "--fs",
        "lossy",
    ];
    let mut child = spawn_in(&args, results, Stdio::null);
    let deadline = Instant::now() + Duration::from_secs(30);
    while mounts_in(results).len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(mounts_in(results).len(), 2, "{:?}", lossy_mounts());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
    let _ = child.wait();
}

fn wait_no_mounts(root: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if mounts_in(root).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn no_mount_outlives_the_harness_on_sigint_sigterm_or_sigkill() {
    if !fuse_ok() {
        return;
    }
    for (name, sig) in [
        ("SIGINT", libc::SIGINT),
        ("SIGTERM", libc::SIGTERM),
        ("SIGKILL", libc::SIGKILL),
    ] {
        let tmp = tempfile::tempdir().expect("tempdir");
        interrupted_run(sig, tmp.path());
        assert!(
            wait_no_mounts(tmp.path()),
            "{name}: mounts left: {:?}",
            lossy_mounts()
        );
    }
}

#[test]
fn stale_mount_is_cleaned_up_by_the_next_run_in_the_same_results_dir() {
    let Some(tmp) = fuse_tempdir() else {
        return;
    };
    let stale = tmp.path().join("old-run/data/n1");
    std::fs::create_dir_all(&stale).expect("mkdir");
    // A helper killed with its harness leaves a dead mount behind.
    let mut helper = Command::new(squall_bin().with_file_name("squall-lossyfs"))
        .arg("--backing")
        .arg(tmp.path().join("old-run/backing"))
        .arg("--mount")
        .arg(&stale)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("helper");
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(helper.stdout.as_mut().expect("piped"))
            .read_line(&mut line)
            .expect("ready");
    }
    helper.kill().expect("SIGKILL");
    helper.wait().expect("reap");
    assert_eq!(mounts_in(tmp.path()), vec![stale.clone()]);
    let (out, _) = durability_run(true, "native", tmp.path());
    assert!(out.status.code().is_some(), "{}", text(&out));
    assert!(mounts_in(tmp.path()).is_empty(), "{:?}", lossy_mounts());
}

/// The bundled nodes keep unsynced records in memory, so a lossy mount takes nothing
/// more from them at a kill than a native disk does, and correct Paxos stays valid on it
/// under the plan that kills an acceptor right after its promises. This caught a real
/// slip: the storage log was created without syncing its directory, so a kill before any
/// directory sync lost the whole file (an agreement violation on seed 1).
#[test]
fn bundled_paxos_stays_valid_on_lossy_fs_under_the_promise_crash_plan() {
    let Some(results) = fuse_tempdir() else {
        return;
    };
    let plan = plan_file(
        results.path(),
        "bridge-promise-crash",
        &["--time-limit", "5s"],
    );
    let run = |seed: &str| {
        let results_dir = results.path().to_str().expect("utf8");
        let extra = [
            "--fs",
            "lossy",
            "--seed",
            seed,
            "--results-dir",
            results_dir,
        ];
        let args = paxos_plan_args(&plan, &extra);
        let out = squall(&args).output().expect("run squall");
        let verdict = json(&results.path().join("latest/verdict.json"));
        (out.status.code(), verdict)
    };
    for seed in ["1", "2"] {
        let (code, verdict) = run(seed);
        assert_eq!(code, Some(0), "seed {seed}: {}", verdict["reason"]);
    }
}
