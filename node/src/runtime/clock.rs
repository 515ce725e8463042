//! A microsecond-resolution wake-up for the free-running loop.
//!
//! Algorithms set timers in microseconds, but tokio's timers tick in whole milliseconds
//! (a deadline rounds up to the next tick), which would turn a 300 µs backoff into 1 ms.
//! [`UsTimer`] is a Linux `timerfd` on `CLOCK_MONOTONIC` (the clock [`Instant`] reads)
//! registered with tokio's reactor, so the loop waits for the socket and for the next
//! deadline in one `select!` and wakes at the deadline as precisely as the kernel's
//! scheduler allows. It holds one deadline: the earliest pending timer's.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// A `TimerFd` as tokio's reactor wants it.
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One re-armable deadline with microsecond resolution.
pub(super) struct UsTimer {
    fd: AsyncFd<Fd>,
    /// The deadline the timerfd is set for, until it expires and is read.
    armed: Option<Instant>,
}

impl UsTimer {
    /// A disarmed timer. Must be called inside a tokio runtime with I/O enabled.
    pub(super) fn new() -> io::Result<Self> {
        let tfd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // SAFETY: the `Fd` owns the timerfd and the `AsyncFd` owns the `Fd`, so the
        // descriptor stays open exactly as long as it is registered.
        let fd = unsafe { AsyncFd::register(Fd(tfd)) }.map_err(io::Error::from)?;
        Ok(UsTimer { fd, armed: None })
    }

    /// Sets the deadline to `deadline` (disarms on `None`); no system call when it is
    /// already the armed one.
    pub(super) fn arm(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        if deadline == self.armed {
            return Ok(());
        }
        let tfd = &self.fd.get_ref().0;
        match deadline {
            Some(at) => {
                // A zero expiration would disarm the timerfd: a due deadline waits 1 ns.
                let after = at
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_nanos(1));
                tfd.set(
                    Expiration::OneShot(TimeSpec::from_duration(after)),
                    TimerSetTimeFlags::empty(),
                )?;
            }
            None => tfd.unset()?,
        }
        self.armed = deadline;
        Ok(())
    }

    /// Completes once the armed deadline has passed; never while disarmed. Cancel-safe:
    /// dropping it early loses nothing.
    pub(super) async fn expired(&mut self) -> io::Result<()> {
        if self.armed.is_none() {
            return std::future::pending().await;
        }
        loop {
            let mut guard = self.fd.readable().await?;
            let read = guard.try_io(|fd| {
                let mut ticks = [0u8; 8];
                nix::unistd::read(fd.as_raw_fd(), &mut ticks).map_err(io::Error::from)
            });
            match read {
                Ok(Ok(_)) => {
                    self.armed = None;
                    return Ok(());
                }
                Ok(Err(e)) => return Err(e),
                // Readiness was stale (re-armed since): wait again.
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_at_a_sub_millisecond_deadline_and_rearms() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut t = UsTimer::new().unwrap();
            let start = Instant::now();
            let at = start + Duration::from_micros(300);
            t.arm(Some(at)).unwrap();
            t.expired().await.unwrap();
            assert!(Instant::now() >= at, "woke before its deadline");
            // Re-arming a later deadline replaces the earlier one.
            t.arm(Some(Instant::now() + Duration::from_secs(60)))
                .unwrap();
            let soon = Instant::now() + Duration::from_micros(200);
            t.arm(Some(soon)).unwrap();
            t.expired().await.unwrap();
            assert!(Instant::now() >= soon);
            // Disarmed: never completes.
            t.arm(None).unwrap();
            let waited = tokio::time::timeout(Duration::from_millis(20), t.expired()).await;
            assert!(waited.is_err(), "a disarmed timer fired");
        });
    }
}
