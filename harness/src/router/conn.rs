//! Connection handling: the accept loop, each connection's hello and admission by the
//! [`Gate`](super::Gate), and the reader and writer of every admitted node connection.
//! What a reader reads is routed by the core ([`Router::route_into`]).

use std::sync::Arc;

use proto::{EnvelopeHead, LineDecoder};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::gate::Refusal;
use super::{
    msglog, Router, RouterEvent, Sink, TcpSink, DEST_QUEUE_MAX, HELLO_BYTES_MAX, HELLO_TIMEOUT_MS,
};

impl Router {
    pub(super) async fn accept_loop(self, listener: TcpListener) {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    if !peer.ip().is_loopback() {
                        continue;
                    }
                    let r = self.clone();
                    conns.spawn(async move { r.serve(stream).await });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    }

    async fn serve(self, stream: TcpStream) {
        let gate = self.shared.gate.clone();
        let Some(waiting) = gate.await_hello() else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let (mut rd, wr) = stream.into_split();
        let mut dec = LineDecoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        let hello = tokio::time::timeout(
            std::time::Duration::from_millis(HELLO_TIMEOUT_MS),
            read_first_line(&mut rd, &mut dec, &mut buf),
        )
        .await;
        drop(waiting);
        // Whatever goes wrong before admission is the connection's, not a node's.
        let admitted = match hello {
            Ok(Ok(line)) => gate.admit_line(&line),
            Ok(Err((reason, what))) => {
                gate.reject(reason, &what);
                Err(reason)
            }
            Err(_elapsed) => {
                let what = format!("{} bytes", dec.pending());
                gate.reject(Refusal::NoHelloInTime, &what);
                Err(Refusal::NoHelloInTime)
            }
        };
        let Ok((node, _incarnation)) = admitted else {
            return;
        };
        let conn_id = self
            .shared
            .next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = mpsc::channel::<Vec<u8>>(DEST_QUEUE_MAX);
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let wr = Arc::new(wr);
        let dest_index;
        {
            let mut st = self.lock();
            let Some(&i) = st.index.get(&node) else {
                // The gate admits only nodes, and every node is an address.
                drop(st);
                gate.reject(Refusal::NotANode, &node);
                return;
            };
            // A connection of an earlier incarnation may still be here, its EOF not read
            // yet: the gate admitted this one because squall started it since.
            st.sinks[i] = Some(Sink::Tcp(TcpSink {
                wr: wr.clone(),
                tx,
                backlog: false,
                queued: queued.clone(),
            }));
            st.conn[i] = conn_id;
            dest_index = i;
        }
        // Owned by this task: if the run aborts it mid-read, dropping the set aborts the
        // writer too. A detached writer would hold a router clone, whose state holds the
        // writer's own sender, and outlive the run with every buffer of it.
        let mut writer = JoinSet::new();
        writer.spawn(self.clone().write_loop(wr, rx, queued, dest_index, conn_id));
        self.event(RouterEvent::Connected { node: node.clone() });
        let outcome = self.read_loop(&node, &mut rd, &mut dec, &mut buf).await;
        if let Err(what) = outcome {
            self.fault(&node, "oversized_line", || what);
        }
        {
            let mut st = self.lock();
            let i = st.index[&node];
            if st.conn[i] == conn_id {
                st.sinks[i] = None;
                st.conn[i] = 0;
            }
        }
        writer.abort_all();
        self.event(RouterEvent::Disconnected { node });
    }

    /// Drains a connection's backlog; clears `backlog` once the queue is empty.
    async fn write_loop(
        self,
        wr: Arc<tokio::net::tcp::OwnedWriteHalf>,
        mut rx: mpsc::Receiver<Vec<u8>>,
        queued: Arc<std::sync::atomic::AtomicUsize>,
        dest: usize,
        conn_id: u64,
    ) {
        use std::sync::atomic::Ordering;
        let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            let Some(first) = rx.recv().await else { return };
            queued.fetch_sub(first.len(), Ordering::AcqRel);
            out.extend_from_slice(&first);
            loop {
                while out.len() < 64 * 1024 {
                    match rx.try_recv() {
                        Ok(more) => {
                            queued.fetch_sub(more.len(), Ordering::AcqRel);
                            out.extend_from_slice(&more);
                        }
                        Err(_) => break,
                    }
                }
                let mut at = 0;
                while at < out.len() {
                    if wr.writable().await.is_err() {
                        return;
                    }
                    match wr.try_write(&out[at..]) {
                        Ok(n) => at += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(_) => return,
                    }
                }
                out.clear();
                let mut st = self.lock();
                if rx.is_empty() {
                    if st.conn[dest] == conn_id {
                        if let Some(Sink::Tcp(sink)) = &mut st.sinks[dest] {
                            sink.backlog = false;
                        }
                    }
                    break;
                }
            }
        }
    }

    async fn read_loop(
        &self,
        node: &str,
        rd: &mut tokio::net::tcp::OwnedReadHalf,
        dec: &mut LineDecoder,
        buf: &mut [u8],
    ) -> Result<(), String> {
        loop {
            // The router's write batch is shared: skip the lock when this read routed
            // nothing.
            let mut routed = false;
            loop {
                let line = match dec.next_frame() {
                    Ok(Some(line)) => line,
                    Ok(None) => break,
                    Err(e) => return Err(format!("sent an oversized line: {e}")),
                };
                if line.is_empty() {
                    continue;
                }
                let head = match EnvelopeHead::parse(line) {
                    Ok(h) => h,
                    Err(e) => {
                        self.fault(node, "garbage", || {
                            format!(
                                "sent a line that is not an envelope ({e}): {}",
                                sample(line)
                            )
                        });
                        continue;
                    }
                };
                if head.src != node {
                    self.fault(node, "spoofed_src", || {
                        format!(
                            "sent a message with src '{}' on its own connection",
                            sample(head.src.as_bytes())
                        )
                    });
                    continue;
                }
                // The type, and the key and label the message log keeps, in one pass.
                let (ty, salient) = msglog::read_body(head.body.get()).unwrap_or_default();
                let mut owned = Vec::with_capacity(line.len() + 1);
                owned.extend_from_slice(line);
                owned.push(b'\n');
                self.route_into(node, head.dest, &ty, salient, owned, false);
                routed = true;
            }
            if routed {
                self.flush();
            }
            match rd.read(buf).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => dec.push(&buf[..n]),
            }
        }
    }
}

fn sample(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(&line[..line.len().min(120)]).to_string();
    if line.len() > 120 {
        format!("{s}...")
    } else {
        s
    }
}

/// A connection's first non-empty line, or why there is none.
async fn read_first_line(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    dec: &mut LineDecoder,
    buf: &mut [u8],
) -> Result<Vec<u8>, (Refusal, String)> {
    loop {
        match dec.next_frame() {
            Err(e) => return Err((Refusal::NotAHello, format!("oversized first line: {e}"))),
            Ok(Some([])) => continue,
            Ok(Some(line)) => return Ok(line.to_vec()),
            Ok(None) => {}
        }
        // A hello is a short line: a connection may not make the router hold more.
        if dec.pending() > HELLO_BYTES_MAX {
            let what = format!("{} bytes without a newline", dec.pending());
            return Err((Refusal::NotAHello, what));
        }
        match rd.read(buf).await {
            Ok(0) | Err(_) => {
                let what = match dec.pending() {
                    0 => String::new(),
                    n => format!("{n} bytes without a newline"),
                };
                return Err((Refusal::ClosedBeforeHello, what));
            }
            Ok(n) => dec.push(&buf[..n]),
        }
    }
}
