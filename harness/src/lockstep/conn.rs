//! One node's TCP connection in lockstep mode: blocking writes of one event, blocking
//! reads of the node's output up to its `step_done`, with a real-time guard.
//!
//! Wall-clock time appears here only as a guard ([`guard_from_env`]: 60 s unless
//! `SQUALL_LOCKSTEP_TIMEOUT` says otherwise): a node that does not finish its step within
//! it is reported as [`StepEnd::Timeout`], and the run stops there as `unknown` naming
//! the node and the step, so a slow machine never turns into a fault the algorithm sees.
//! It never decides the order of anything.
//!
//! [`Listener`] is where nodes connect: the run's [`Gate`] judges each first line, so a
//! connection that is not the node squall started (no token, a duplicate, a scanner) is
//! closed and counted, never blamed on a node, and never reaches the trace.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use proto::codec::FrameError;
use proto::{EnvelopeHead, LineDecoder, HARNESS};

use crate::router::gate::{Gate, Refusal};

/// The wall-clock guard when `SQUALL_LOCKSTEP_TIMEOUT` is not set: how long a node may
/// take to answer one event with `step_done`, and how long the nodes have to start.
pub const DEFAULT_GUARD: Duration = Duration::from_secs(60);

/// The environment variable that sets the guard (`90`, `90s`, `500ms`, `2m`).
pub const GUARD_ENV: &str = "SQUALL_LOCKSTEP_TIMEOUT";

/// The lockstep guard: [`GUARD_ENV`] if set (a duration of at least 1 ms), else
/// [`DEFAULT_GUARD`]. It is a property of the machine, not of the run: it is not saved in
/// `run.json`, and no trace record holds it.
pub fn guard_from_env() -> Result<Duration, String> {
    match std::env::var(GUARD_ENV) {
        Err(_) => Ok(DEFAULT_GUARD),
        Ok(raw) => match crate::text::parse_duration_ms(&raw) {
            Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
            _ => Err(format!(
                "{GUARD_ENV}={raw:?} is not a duration of at least 1ms (e.g. 120s)"
            )),
        },
    }
}

/// How reading a step's output ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEnd {
    /// The node sent `step_done`.
    Done,
    /// The node sent `step_done` and then more lines at once: those arrived outside a
    /// step and were discarded.
    Leftover,
    /// No `step_done` within the guard.
    Timeout,
    /// The node closed its connection (or died).
    Closed,
    /// The node sent a line longer than the frame limit.
    Oversized,
    /// Some other socket error.
    Io(String),
}

impl StepEnd {
    /// Why the node is faulty, for `faulty_nodes`; `None` for [`StepEnd::Done`].
    pub fn fault(&self) -> Option<String> {
        match self {
            StepEnd::Done => None,
            StepEnd::Leftover => {
                Some("sent lines after step_done, outside a lockstep step (discarded)".into())
            }
            StepEnd::Timeout => {
                Some("did not answer with step_done within the lockstep guard".into())
            }
            StepEnd::Closed => {
                Some("closed its connection in the middle of a lockstep step".into())
            }
            StepEnd::Oversized => Some(format!(
                "sent a line over the {}-byte frame limit",
                proto::FRAME_BYTES_MAX
            )),
            StepEnd::Io(e) => Some(format!("connection error: {e}")),
        }
    }
}

/// Whether `line` is an envelope to the harness whose body is `step_done`.
pub fn is_step_done(line: &str) -> bool {
    // Cheap test first: nearly every line is not one.
    line.contains("step_done")
        && EnvelopeHead::parse(line.as_bytes())
            .is_ok_and(|h| h.dest == HARNESS && h.body_type().as_deref() == Some("step_done"))
}

/// The loopback listener of a lockstep run and the gate its connections pass.
pub struct Listener {
    inner: tokio::net::TcpListener,
    gate: Gate,
}

impl Listener {
    /// Listens on `inner`, admitting through `gate`.
    pub fn new(inner: tokio::net::TcpListener, gate: Gate) -> Listener {
        Listener { inner, gate }
    }

    /// The next connection.
    pub async fn accept(&self) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
        self.inner.accept().await
    }

    /// The run's gate.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }
}

/// Whether `line` is an envelope to the harness whose body is `sync_wait`: the node
/// waits for `sync_go` before it syncs.
pub fn is_sync_wait(line: &str) -> bool {
    line.contains("sync_wait")
        && EnvelopeHead::parse(line.as_bytes())
            .is_ok_and(|h| h.dest == HARNESS && h.body_type().as_deref() == Some("sync_wait"))
}

/// A node's connection.
pub struct NodeConn {
    stream: TcpStream,
    dec: LineDecoder,
    buf: Vec<u8>,
    guard: Duration,
}

impl NodeConn {
    /// Wraps an accepted blocking stream; a step may take up to `guard` of real time.
    pub fn new(stream: TcpStream, guard: Duration) -> std::io::Result<NodeConn> {
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(guard))?;
        stream.set_write_timeout(Some(guard))?;
        Ok(NodeConn {
            stream,
            dec: LineDecoder::new(),
            buf: vec![0u8; 64 * 1024],
            guard,
        })
    }

    /// Writes one line (which must end in a newline).
    pub fn send(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(line)
    }

    /// Reads one complete line by `deadline` (for `hello`); empty lines are skipped.
    pub fn read_line(&mut self, deadline: Instant) -> Result<String, StepEnd> {
        let mut lines = Vec::new();
        let end = self.read_lines(deadline, &mut lines, |_| true);
        match lines.pop() {
            Some(line) => Ok(line),
            None => Err(if end == StepEnd::Done {
                StepEnd::Closed
            } else {
                end
            }),
        }
    }

    /// Reads the first line by `deadline`, and within the protocol's 5 s of now (so one
    /// silent connection cannot use up a whole startup), and asks `gate` to admit it: the
    /// node it speaks for, or `None` when it was refused (counted by the gate; close the
    /// connection).
    pub fn read_hello(&mut self, deadline: Instant, gate: &Gate) -> Option<String> {
        let hello_by = Instant::now() + Duration::from_millis(crate::router::HELLO_TIMEOUT_MS);
        let refusal = match self.read_line(deadline.min(hello_by)) {
            Ok(line) => return gate.admit_line(line.as_bytes()).ok().map(|(node, _)| node),
            Err(StepEnd::Timeout) => Refusal::NoHelloInTime,
            Err(StepEnd::Oversized) => Refusal::NotAHello,
            Err(_) => Refusal::ClosedBeforeHello,
        };
        gate.reject(refusal, "");
        None
    }

    /// Reads the node's output into `out` up to and including the first line for which
    /// `last` holds (normally [`is_step_done`]), within the guard. Bytes that
    /// arrived after that line are discarded and reported as [`StepEnd::Leftover`]:
    /// nothing may arrive outside a step.
    pub fn read_step_with(
        &mut self,
        out: &mut Vec<String>,
        last: impl FnMut(&str) -> bool,
    ) -> StepEnd {
        let deadline = Instant::now() + self.guard;
        let end = self.read_lines(deadline, out, last);
        if end == StepEnd::Done && self.dec.pending() > 0 {
            self.dec = LineDecoder::new();
            return StepEnd::Leftover;
        }
        end
    }

    fn read_lines(
        &mut self,
        deadline: Instant,
        out: &mut Vec<String>,
        mut last: impl FnMut(&str) -> bool,
    ) -> StepEnd {
        loop {
            loop {
                match self.dec.next_frame() {
                    Ok(Some(frame)) => {
                        if frame.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        let line = String::from_utf8_lossy(frame).into_owned();
                        let done = last(&line);
                        out.push(line);
                        if done {
                            return StepEnd::Done;
                        }
                    }
                    Ok(None) => break,
                    Err(FrameError::TooLong(_)) => return StepEnd::Oversized,
                }
            }
            if Instant::now() >= deadline {
                return StepEnd::Timeout;
            }
            match self.stream.read(&mut self.buf) {
                Ok(0) => return StepEnd::Closed,
                Ok(n) => self.dec.push(&self.buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return StepEnd::Timeout
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return StepEnd::Closed,
                Err(e) => return StepEnd::Io(e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connects to a fresh listener, writes `bytes` (then hangs up if asked) and reads the
    /// hello the way the lockstep stepper does.
    fn first_line(gate: &Gate, bytes: &[u8], hang_up: bool) -> Option<String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.write_all(bytes).unwrap();
        if hang_up {
            client.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let (stream, _) = listener.accept().unwrap();
        let mut conn = NodeConn::new(stream, DEFAULT_GUARD).unwrap();
        conn.read_hello(Instant::now() + Duration::from_secs(5), gate)
    }

    #[test]
    fn lockstep_listener_admits_only_the_started_node_with_the_token() {
        let gate = Gate::with_token("tok", &["n1".to_string()]);
        gate.spawned("n1", 0);
        let hello = |token: &str| {
            format!(
                "{{\"src\":\"n1\",\"dest\":\"router\",\"body\":{{\"type\":\"hello\",\"node_id\":\"n1\",\"token\":\"{token}\"}}}}\n"
            )
        };
        assert_eq!(first_line(&gate, hello("nope").as_bytes(), false), None);
        assert_eq!(first_line(&gate, b"GET / HTTP/1.0\r\n\r\n", false), None);
        assert_eq!(first_line(&gate, b"", true), None);
        assert_eq!(
            first_line(&gate, hello("tok").as_bytes(), false).as_deref(),
            Some("n1")
        );
        assert_eq!(first_line(&gate, hello("tok").as_bytes(), false), None);
        let r = gate.rejections();
        assert_eq!(r.total, 4, "{r:?}");
        for reason in [
            "bad_token",
            "not_a_hello",
            "closed_before_hello",
            "duplicate",
        ] {
            assert_eq!(r.by_reason.get(reason), Some(&1), "{reason}: {r:?}");
        }
    }
}
