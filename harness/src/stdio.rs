//! The stdio bridge (`--stdio`): runs a Maelstrom node unchanged. The supervisor starts
//! `squall stdio-bridge -- PROGRAM ARGS...` as the node; the bridge connects to the router
//! as that node (the `hello` with `SQUALL_TOKEN`, PROTOCOL.md §4), starts the program with
//! pipes on its stdin and stdout, and relays lines both ways. The program sees exactly
//! Maelstrom's protocol: `init` first (lines that arrive before it are held back, up to
//! [`HELD_LINES_MAX`]), then messages; its stdout carries only messages, its stderr is the
//! node log (the bridge's own stderr, inherited).
//!
//! Why a bridge process and not pipes held by the harness: the bridge's child is in the
//! bridge's process group (the supervisor makes one per node), so kill, pause and
//! teardown (signals to the group) reach the program exactly as they reach any node; and
//! the router, the gate and lockstep need no second kind of connection.
//!
//! Maelstrom lets a node forward a client's request to another node with `src` still the
//! client's id, and the other node then answers the client directly. squall's router
//! admits only a node's own `src` on its connection, so the bridge carries such a line
//! as a message from its own node with the client's address in an envelope field
//! [`ORIGIN_FIELD`]; the receiving bridge puts the client's address back into `src` before
//! the program sees it. The message crosses the link between the two nodes, where it
//! really travels, and faults of that link apply to it.
//!
//! The bridge adds nothing else: it never writes a line to the program that the router
//! did not send it (lockstep control reaches a program only if it asked for lockstep in
//! its `init_ok`, PROTOCOL.md §10).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde::Deserialize;
use serde_json::value::RawValue;

/// The envelope field that carries a forwarded request's client address between bridges.
pub const ORIGIN_FIELD: &str = "squall_origin";
/// Lines from the router held back until `init` arrives; later ones are dropped (a
/// node that is not yet initialised would ignore them in Maelstrom too).
pub const HELD_LINES_MAX: usize = 10_000;

/// The subcommand name the supervisor starts (`squall stdio-bridge -- PROGRAM ...`).
pub const SUBCOMMAND: &str = "stdio-bridge";

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    src: &'a str,
    #[serde(borrow)]
    dest: &'a str,
    #[serde(borrow)]
    body: &'a RawValue,
    #[serde(borrow, default, rename = "squall_origin")]
    origin: Option<&'a str>,
}

#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow)]
    ty: std::borrow::Cow<'a, str>,
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// A line from the router as the program must see it: a forwarded request gets its
/// client's address back in `src`. Also whether it is the `init`.
pub fn to_program(line: &str) -> (String, bool) {
    let Ok(head) = serde_json::from_str::<Head<'_>>(line) else {
        return (line.to_string(), false);
    };
    let init = serde_json::from_str::<TypeOnly<'_>>(head.body.get())
        .map(|t| t.ty == "init")
        .unwrap_or(false);
    match head.origin {
        Some(origin) => (
            format!(
                "{{\"src\":{},\"dest\":{},\"body\":{}}}",
                quote(origin),
                quote(head.dest),
                head.body.get()
            ),
            init,
        ),
        None => (line.to_string(), init),
    }
}

/// A line from the program as the router must see it: one with another `src` than the
/// node's own, to a node, is a forwarded request and travels as the node's own message.
pub fn to_router(line: &str, me: &str) -> String {
    let Ok(head) = serde_json::from_str::<Head<'_>>(line) else {
        return line.to_string();
    };
    let forwarded = head.src != me
        && head.src != proto::HARNESS
        && !is_node_id(head.src)
        && head.origin.is_none()
        && is_node_id(head.dest);
    if !forwarded {
        return line.to_string();
    }
    format!(
        "{{\"src\":{},\"dest\":{},\"{ORIGIN_FIELD}\":{},\"body\":{}}}",
        quote(me),
        quote(head.dest),
        quote(head.src),
        head.body.get()
    )
}

/// `n` followed by digits: a node's address.
fn is_node_id(s: &str) -> bool {
    s.len() > 1 && s.starts_with('n') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

fn env(key: &str) -> Result<String, String> {
    std::env::var(key).map_err(|_| format!("{key} is not set (the bridge is started by squall)"))
}

/// The exit status the bridge passes on for a program that ended with `status`.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 255,
    }
}

/// Runs the bridge for `argv` until the program exits (its exit code is returned) or the
/// router closes the connection (the program is killed). Errors are for the node log.
pub fn bridge(argv: &[String]) -> Result<i32, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("no program to run".into());
    };
    let me = env("SQUALL_NODE_ID")?;
    let router = env("SQUALL_ROUTER")?;
    let token = env("SQUALL_TOKEN")?;
    let incarnation: u64 = env("SQUALL_INCARNATION")?.parse().unwrap_or(0);
    let stream =
        TcpStream::connect(&router).map_err(|e| format!("cannot connect to {router}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut to_net = stream
        .try_clone()
        .map_err(|e| format!("cannot clone the connection: {e}"))?;
    let hello = serde_json::json!({
        "src": me, "dest": proto::ROUTER,
        "body": {"type": "hello", "node_id": me, "token": token, "incarnation": incarnation},
    });
    writeln!(to_net, "{hello}").map_err(|e| format!("cannot say hello: {e}"))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    eprintln!(
        "squall stdio-bridge: {me} incarnation {incarnation}: started {program} (pid {})",
        child.id()
    );
    let stdout = child.stdout.take().expect("piped stdout");
    let stdin = child.stdin.take().expect("piped stdin");
    let me_out = me.clone();
    // Program -> router. Ends when the program closes its stdout (it exited).
    let out = std::thread::spawn(move || {
        let mut w = std::io::BufWriter::new(to_net);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            let line = to_router(&line, &me_out);
            if writeln!(w, "{line}").and_then(|()| w.flush()).is_err() {
                break;
            }
        }
    });
    // Unbounded, but fed at most twice: once by each relay thread as it ends.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let done_in = done_tx.clone();
    // Router -> program. Ends when the router closes the connection.
    std::thread::spawn(move || {
        relay_in(stream, stdin);
        let _ = done_in.send(());
    });
    std::thread::spawn(move || {
        let _ = out.join();
        let _ = done_tx.send(());
    });
    let _ = done_rx.recv();
    Ok(finish(&mut child))
}

/// The program's exit code once it has exited; a program still running (the router went
/// away) is killed first.
fn finish(child: &mut Child) -> i32 {
    if let Ok(Some(status)) = child.try_wait() {
        return exit_code(status);
    }
    // Its stdout may close a moment before it exits: give it that moment.
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        if let Ok(Some(status)) = child.try_wait() {
            return exit_code(status);
        }
    }
    let _ = child.kill();
    child.wait().map(exit_code).unwrap_or(255)
}

/// Copies the router's lines to the program, `init` first.
fn relay_in(stream: TcpStream, stdin: std::process::ChildStdin) {
    let mut w = std::io::BufWriter::new(stdin);
    let mut held: Vec<String> = Vec::new();
    let mut initialised = false;
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let (line, is_init) = to_program(&line);
        if !initialised && !is_init {
            if held.len() < HELD_LINES_MAX {
                held.push(line);
            }
            continue;
        }
        let mut ok = writeln!(w, "{line}").is_ok();
        if is_init && !initialised {
            initialised = true;
            eprintln!("squall stdio-bridge: init handed to the program");
            for h in held.drain(..) {
                ok &= writeln!(w, "{h}").is_ok();
            }
        }
        if !ok || w.flush().is_err() {
            // The program is gone; the other direction sees it exit.
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_request_crosses_as_the_nodes_own_message_and_arrives_as_the_clients() {
        let line = r#"{"src":"c3","dest":"n2","body":{"type":"add","msg_id":4,"delta":1}}"#;
        let wire = to_router(line, "n0");
        let v: serde_json::Value = serde_json::from_str(&wire).unwrap();
        assert_eq!(v["src"], "n0");
        assert_eq!(v[ORIGIN_FIELD], "c3");
        let (back, init) = to_program(&wire);
        assert!(!init);
        let v: serde_json::Value = serde_json::from_str(&back).unwrap();
        assert_eq!(v["src"], "c3");
        assert_eq!(v["dest"], "n2");
        assert!(v.get(ORIGIN_FIELD).is_none());
        assert_eq!(v["body"]["delta"], 1);
    }

    #[test]
    fn own_lines_and_replies_pass_unchanged() {
        let own = r#"{"src":"n0","dest":"n1","body":{"type":"gossip"}}"#;
        assert_eq!(to_router(own, "n0"), own);
        let reply = r#"{"src":"n0","dest":"c1","body":{"type":"echo_ok","in_reply_to":1}}"#;
        assert_eq!(to_router(reply, "n0"), reply);
        let junk = "not json";
        assert_eq!(to_router(junk, "n0"), junk);
        let init = r#"{"src":"harness","dest":"n0","body":{"type":"init","msg_id":1,"node_id":"n0","node_ids":["n0"]}}"#;
        assert_eq!(to_program(init), (init.to_string(), true));
    }
}
