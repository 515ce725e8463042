//! The per-link decision: what happens to one message on one directed link
//! ([`LinkPolicy::decide`], pure). The nemesis's fault table is the policy of real runs.

/// One copy of a message to deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Extra delay before delivery, in microseconds.
    pub delay_us: u64,
    /// Whether this copy keeps FIFO order on its link (false: it may overtake).
    pub fifo: bool,
}

/// What happens to one message on one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Deliver each copy (two copies: duplicated).
    Deliver(Vec<Delivery>),
    /// Drop it, for the given reason (counted under that name).
    Drop(&'static str),
    /// Queue it until the link heals.
    Hold,
}

impl Decision {
    /// Deliver once, now, in order.
    pub fn deliver() -> Self {
        Decision::Deliver(vec![Delivery {
            delay_us: 0,
            fifo: true,
        }])
    }
}

/// The pure per-link decision. Implemented by the nemesis; [`DeliverAll`] is the default.
pub trait LinkPolicy: Send + 'static {
    /// Decides the fate of one message from `src` to `dest` of body type `ty`.
    fn decide(&mut self, src: &str, dest: &str, ty: &str, now_us: u64) -> Decision;
    /// The concrete policy, so its owner can change it (apply or lift faults).
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
    /// Links `(src, dest)` whose held messages must be released now, because a change
    /// to the policy (a heal, or a fault fired by a trigger inside `decide`) opened them.
    /// The router asks after every `decide` and every [`Router::with_policy`](super::Router::with_policy), and
    /// releases them before routing anything else, so held messages keep their order.
    fn take_released(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// The fault-free policy.
pub struct DeliverAll;

impl LinkPolicy for DeliverAll {
    fn decide(&mut self, _src: &str, _dest: &str, _ty: &str, _now_us: u64) -> Decision {
        Decision::deliver()
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// The nemesis's fault table decides for real runs. Client and harness traffic is never
/// faulted: the table knows only nodes and delivers anything else.
impl LinkPolicy for crate::nemesis::LinkTable {
    fn decide(&mut self, src: &str, dest: &str, ty: &str, now_us: u64) -> Decision {
        use crate::nemesis::Decision as N;
        match crate::nemesis::LinkTable::decide(self, src, dest, ty, now_us) {
            N::Deliver { copies } => Decision::Deliver(
                copies
                    .iter()
                    .map(|c| Delivery {
                        delay_us: c.delay_us,
                        fifo: c.fifo,
                    })
                    .collect(),
            ),
            N::Drop { cause } => Decision::Drop(cause.as_str()),
            N::Hold => Decision::Hold,
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}
