//! `reliable`: seed 004's "really implementing reliable multicast" — have receivers help
//! the sender. The sender sends the message to every member; a receiver, the first time
//! it sees a message, sends it on to the group too, and only then delivers it.
//!
//! The seed's proof: suppose correct Pi delivered M and correct Pj never did. Pi sent M
//! to every member, Pj included, before delivering it, and unicast between correct
//! processes is reliable, so Pj received M — a contradiction. Hence every correct
//! process delivers the same set, even when the sender crashes after reaching only one
//! member. The proof needs the links not to lose messages between correct processes: a
//! `drop` fault or a cutting partition is outside the model (held clogs and delays are
//! not).
//!
//! Built on [`super::best_effort`]'s [`Flood`] (relay on), so it orders nothing: a relayed
//! copy can overtake the original, and FIFO or total order are not claimed.

use super::best_effort::Flood;

/// The guarantee `reliable` claims: no order, every correct node delivers the same set.
pub const GUARANTEE: &str = "none+reliable";

/// The reliable-multicast node: best-effort plus the receivers' relay.
pub type Reliable = Flood<true>;

#[cfg(test)]
mod tests {
    use super::super::testing::{delivered, hold_all, mcast};
    use super::*;
    use crate::sim::Sim;

    /// The seed's failure case: the sender reaches one member and crashes. Best-effort
    /// leaves the third member without the message; reliable's relay reaches it.
    fn sender_crashes_after_one_send<A: crate::algo::Algorithm>() -> Vec<u64> {
        let mut sim: Sim<A> = Sim::new(3, 1);
        mcast(&mut sim, "n1", 7);
        hold_all(&mut sim);
        assert_eq!(sim.deliver_where(|e| e.from == "n1" && e.to == "n2"), 1);
        sim.drop_where(|e| e.from == "n1");
        sim.crash("n1");
        sim.release_all();
        sim.run_until_quiet();
        assert_eq!(delivered(&sim, "n2"), vec![7]);
        delivered(&sim, "n3")
    }

    #[test]
    fn reliable_reaches_every_correct_member_when_the_sender_crashes_midway() {
        assert_eq!(sender_crashes_after_one_send::<Reliable>(), vec![7]);
        assert_eq!(
            sender_crashes_after_one_send::<super::super::best_effort::BestEffort>(),
            Vec::<u64>::new()
        );
    }
}
