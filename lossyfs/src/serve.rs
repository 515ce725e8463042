//! The helper process (`squall-lossyfs`): serves one node's mount, driven over stdin.
//!
//! It mounts, prints one JSON line (`{"ready":true}` or `{"error":..}`), then answers
//! each command line with one JSON line:
//! - `crash`: unmount, drop what was never synced ([`Core::crash`]), mount again;
//!   answers `{"crash": CrashReport}`.
//! - `wipe`: unmount, empty the durable and volatile state (amnesia), mount again.
//! - `stats`: `{"stats": Stats}`.
//! - `stop`, or the end of stdin (the harness is gone, however it died): unmount, flush
//!   everything to the backing directory, answer `{"stats": Stats}`, exit 0.
//!
//! SIGTERM, SIGINT and SIGHUP do the same as `stop`, so no mount outlives the helper.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::core::{CrashFaults, MetaMode};
use crate::mount::{mount, unmount_path, Mounted};
use crate::Core;

/// The helper's command line.
#[derive(Debug, Clone)]
pub struct ServeArgs {
    /// Durable state.
    pub backing: PathBuf,
    /// Where the node sees it.
    pub mountpoint: PathBuf,
    /// When names become durable.
    pub meta: MetaMode,
    /// What survives a crash.
    pub faults: CrashFaults,
    /// The run seed.
    pub seed: u64,
    /// The node id (mixed into the seed).
    pub node: String,
}

const USAGE: &str = "usage: squall-lossyfs --backing DIR --mount DIR [--meta posix|immediate] [--fault torn-write|reorder-unsynced]... [--seed N] [--node ID]";

impl ServeArgs {
    /// Parses the helper's arguments (without the program name).
    pub fn parse(args: &[String]) -> Result<ServeArgs, String> {
        let mut backing = None;
        let mut mountpoint = None;
        let mut meta = MetaMode::Posix;
        let mut faults = CrashFaults::default();
        let mut seed = 0u64;
        let mut node = String::from("n");
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or(format!("{flag} needs a value\n{USAGE}"))
            };
            match flag.as_str() {
                "--backing" => backing = Some(PathBuf::from(value()?)),
                "--mount" => mountpoint = Some(PathBuf::from(value()?)),
                "--meta" => {
                    meta = match value()?.as_str() {
                        "posix" => MetaMode::Posix,
                        "immediate" => MetaMode::Immediate,
                        other => return Err(format!("--meta: unknown mode '{other}'")),
                    }
                }
                "--fault" => faults.add(&value()?)?,
                "--seed" => seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
                "--node" => node = value()?,
                other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
            }
        }
        Ok(ServeArgs {
            backing: backing.ok_or(USAGE)?,
            mountpoint: mountpoint.ok_or(USAGE)?,
            meta,
            faults,
            seed,
            node,
        })
    }

    /// The seed of crash number `n` of this node.
    fn crash_seed(&self, n: u64) -> u64 {
        // FNV-1a of the node id, so nodes of one run draw differently.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.node.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.seed ^ h ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

fn say(v: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// Blocks SIGTERM, SIGINT and SIGHUP in every thread and turns them into a clean stop on
/// a thread of their own.
fn watch_signals(core: Arc<Mutex<Core>>, mountpoint: PathBuf) {
    // SAFETY: plain sigset manipulation; the mask is set before any other thread exists.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: `set` is a valid signal set; sigwait writes the signal number.
        unsafe { libc::sigwait(&set, &mut sig) };
        let _ = unmount_path(&mountpoint);
        let stats = {
            let mut c = core.lock().unwrap_or_else(|p| p.into_inner());
            let _ = c.flush();
            c.stats().clone()
        };
        say(json!({ "stats": stats, "signal": sig }));
        std::process::exit(0);
    });
}

/// Runs the helper; returns the process exit code.
pub fn serve(args: ServeArgs) -> i32 {
    let core = match Core::open(&args.backing, args.meta, args.faults) {
        Ok(c) => Arc::new(Mutex::new(c)),
        Err(e) => {
            say(json!({"error": format!("backing directory {}: {e}", args.backing.display())}));
            return 1;
        }
    };
    watch_signals(core.clone(), args.mountpoint.clone());
    let remount = |core: &Arc<Mutex<Core>>| mount(core.clone(), &args.mountpoint);
    let mut mounted: Option<Mounted> = match remount(&core) {
        Ok(m) => Some(m),
        Err(e) => {
            say(json!({"error": e.to_string()}));
            return 1;
        }
    };
    say(json!({"ready": true}));
    let mut crashes = 0u64;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        let cmd = match lines.next() {
            Some(Ok(l)) => l,
            _ => "stop".to_string(),
        };
        let lock =
            |c: &Arc<Mutex<Core>>| c.lock().unwrap_or_else(|p| p.into_inner()).stats().clone();
        match cmd.trim() {
            "crash" | "wipe" => {
                if let Some(mut m) = mounted.take() {
                    m.unmount();
                }
                let reply = {
                    let mut c = core.lock().unwrap_or_else(|p| p.into_inner());
                    if cmd.trim() == "crash" {
                        let mut rng = ChaCha8Rng::seed_from_u64(args.crash_seed(crashes));
                        crashes += 1;
                        c.crash(args.faults, &mut rng)
                            .map(|r| json!({ "crash": r }))
                    } else {
                        c.wipe().map(|()| json!({"wiped": true}))
                    }
                };
                let reply = match (reply, remount(&core)) {
                    (Ok(r), Ok(m)) => {
                        mounted = Some(m);
                        r
                    }
                    (Err(e), _) => json!({"error": e.to_string()}),
                    (_, Err(e)) => json!({"error": e.to_string()}),
                };
                say(reply);
            }
            "stats" => say(json!({ "stats": lock(&core) })),
            "stop" => {
                if let Some(mut m) = mounted.take() {
                    m.unmount();
                }
                let flushed = core.lock().unwrap_or_else(|p| p.into_inner()).flush();
                match flushed {
                    Ok(_) => say(json!({ "stats": lock(&core) })),
                    Err(e) => say(json!({"error": format!("final flush: {e}")})),
                }
                return 0;
            }
            other => say(json!({"error": format!("unknown command '{other}'")})),
        }
    }
}
