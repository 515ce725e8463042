//! How a decided copy reaches its destination: held until its link heals, delayed on the
//! timer, queued behind earlier copies to keep per-link FIFO, handed to a local inbox, or
//! written to a node's socket (straight, or through its writer task when the socket
//! would block). Every queue here is bounded; what overflows is counted as a drop.

use std::cmp::Reverse;

use proto::EnvelopeHead;

use super::msglog::Fate;
use super::{
    Batch, Delivered, Delivery, LinkStats, Pending, Router, Sink, State, DEST_QUEUE_BYTES_MAX,
    INBOX_BYTES_MAX, LINK_QUEUE_MAX,
};

impl Batch {
    fn add(&mut self, dest: usize, link: usize, line: &[u8]) {
        match self
            .out
            .iter_mut()
            .find(|(d, l, _, _)| *d == dest && *l == link)
        {
            Some((_, _, bytes, n)) => {
                bytes.extend_from_slice(line);
                *n += 1;
            }
            None => self.out.push((dest, link, line.to_vec(), 1)),
        }
    }
}

impl Router {
    /// Delivers delayed copies when their time comes; woken early when one is added.
    pub(super) async fn timer_loop(self) {
        loop {
            let next = {
                let now = self.now_us();
                let mut st = self.lock();
                while let Some(Reverse((at, seq))) = st.delayed.peek().copied() {
                    if at > now {
                        break;
                    }
                    st.delayed.pop();
                    if let Some((p, fifo)) = st.delayed_items.remove(&seq) {
                        if fifo {
                            st.fifo_in_flight[p.link] -= 1;
                        }
                        push_to_sink(&mut st, p.dest, p.link, p.line, p.log, now);
                    }
                }
                st.delayed.peek().map(|Reverse((at, _))| *at)
            };
            self.flush();
            match next {
                Some(at) => {
                    let deadline = self.shared.start + std::time::Duration::from_micros(at);
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => {}
                        _ = self.shared.timer.notified() => {}
                    }
                }
                None => self.shared.timer.notified().await,
            }
        }
    }
}

/// Releases the held messages of the links the policy reports as opened.
pub(super) fn release_opened(st: &mut State, now: u64) {
    let opened = st.policy.take_released();
    for (src, dest) in opened {
        let (Some(&s), Some(&d)) = (st.index.get(&src), st.index.get(&dest)) else {
            continue;
        };
        let link = s * st.addrs.len() + d;
        release_link(st, link, now);
    }
}

/// Delivers one link's held messages, in the order they were held.
fn release_link(st: &mut State, link: usize, now: u64) {
    let dest = link % st.addrs.len();
    while let Some((line, seq)) = st.held[link].pop_front() {
        let copy = Delivery {
            delay_us: 0,
            fifo: true,
        };
        deliver_copy(st, dest, link, line, seq, copy, now);
    }
}

pub(super) fn count_drop(stats: &mut LinkStats, cause: &str) {
    *stats.dropped.entry(cause.to_string()).or_insert(0) += 1;
}

#[allow(clippy::too_many_arguments)]
pub(super) fn deliver_copy(
    st: &mut State,
    dest: usize,
    link: usize,
    line: Vec<u8>,
    log: u64,
    copy: Delivery,
    now: u64,
) {
    let mut at = now + copy.delay_us;
    if copy.fifo {
        at = at.max(st.fifo_last_us[link]);
        st.fifo_last_us[link] = at;
    }
    let must_queue = at > now || (copy.fifo && st.fifo_in_flight[link] > 0);
    if !must_queue {
        push_to_sink(st, dest, link, line, log, now);
        return;
    }
    if st.delayed_items.len() >= LINK_QUEUE_MAX * 4 {
        count_drop(&mut st.links[link], "overflow");
        st.settle(log, Fate::Overflow, now);
        return;
    }
    st.seq += 1;
    let seq = st.seq;
    if copy.fifo {
        st.fifo_in_flight[link] += 1;
    }
    st.delayed.push(Reverse((at, seq)));
    st.delayed_items.insert(
        seq,
        (
            Pending {
                dest,
                link,
                line,
                log,
            },
            copy.fifo,
        ),
    );
}

/// Hands a copy to its destination's connection (or inbox). A logged copy counts as
/// delivered here, though a socket write may still find the connection gone.
fn push_to_sink(st: &mut State, dest: usize, link: usize, line: Vec<u8>, log: u64, now: u64) {
    match &st.sinks[dest] {
        None => {
            count_drop(&mut st.links[link], "dest_down");
            st.settle(log, Fate::DestDown, now);
        }
        Some(Sink::Tcp(_)) => {
            st.out.add(dest, link, &line);
            st.settle(log, Fate::Delivered, now);
        }
        Some(Sink::Local(sink)) => {
            let n = st.addrs.len();
            let src = st.addrs[link / n].clone();
            let Ok(head) = EnvelopeHead::parse(trim_newline(&line)) else {
                return;
            };
            let body = head.body.get();
            let bytes = src.len() + body.len();
            use std::sync::atomic::Ordering;
            // Counted before the send, so the receiver's drop never sees it missing.
            let before = sink.queued.fetch_add(bytes, Ordering::AcqRel);
            if before + bytes > INBOX_BYTES_MAX {
                sink.queued.fetch_sub(bytes, Ordering::AcqRel);
                count_drop(&mut st.links[link], "overflow");
                return;
            }
            let delivered = Delivered {
                src,
                body: body.to_string(),
                at_us: now,
                _room: InboxRoom {
                    queued: Some(sink.queued.clone()),
                    bytes,
                },
            };
            match sink.tx.try_send(delivered) {
                Ok(()) => st.links[link].delivered += 1,
                // The returned message's room gives its bytes back as it drops.
                Err(_) => count_drop(&mut st.links[link], "overflow"),
            }
        }
    }
}

pub(super) fn write_or_queue(st: &mut State, dest: usize, link: usize, bytes: Vec<u8>, msgs: u64) {
    let Some(Sink::Tcp(sink)) = &mut st.sinks[dest] else {
        *st.links[link]
            .dropped
            .entry("dest_down".into())
            .or_insert(0) += msgs;
        return;
    };
    let mut rest = &bytes[..];
    if !sink.backlog {
        match sink.wr.try_write(rest) {
            Ok(n) if n == rest.len() => {
                st.links[link].delivered += msgs;
                return;
            }
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => {
                *st.links[link]
                    .dropped
                    .entry("dest_down".into())
                    .or_insert(0) += msgs;
                return;
            }
        }
    }
    use std::sync::atomic::Ordering;
    let room = sink.queued.load(Ordering::Acquire) + rest.len() <= DEST_QUEUE_BYTES_MAX;
    if room && sink.tx.try_send(rest.to_vec()).is_ok() {
        sink.queued.fetch_add(rest.len(), Ordering::AcqRel);
        sink.backlog = true;
        st.links[link].delivered += msgs;
    } else {
        *st.links[link].dropped.entry("overflow".into()).or_insert(0) += msgs;
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// The bytes of one message counted against its inbox's [`super::INBOX_BYTES_MAX`], handed
/// back when the receiver drops the message. A clone holds no room.
#[derive(Debug, Default)]
pub(super) struct InboxRoom {
    pub(super) queued: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
    pub(super) bytes: usize,
}

impl Clone for InboxRoom {
    fn clone(&self) -> Self {
        InboxRoom::default()
    }
}

impl Drop for InboxRoom {
    fn drop(&mut self) {
        if let Some(q) = &self.queued {
            q.fetch_sub(self.bytes, std::sync::atomic::Ordering::AcqRel);
        }
    }
}
