//! `echo`: each op carries a unique payload; every `ok` must return exactly it.

use proto::ops::ClientOp;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::history::Outcome;
use crate::verdict::{CheckInput, Checker, Verdict};
use crate::workload::Workload;

/// The echo op generator.
#[derive(Debug, Default)]
pub struct EchoWorkload {
    next: u64,
}

impl EchoWorkload {
    /// A fresh generator.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Workload for EchoWorkload {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn next_op(&mut self, rng: &mut ChaCha8Rng) -> ClientOp {
        self.next += 1;
        let salt: u32 = rng.gen();
        ClientOp::Echo {
            echo: format!("echo-{}-{salt:08x}", self.next),
        }
    }

    fn checkers(&self) -> Vec<Box<dyn Checker>> {
        vec![Box::new(EchoChecker)]
    }

    fn default_algorithm(&self) -> &'static str {
        "echo"
    }
}

/// Every ok reply echoes its request.
pub struct EchoChecker;

impl Checker for EchoChecker {
    fn name(&self) -> &'static str {
        "echo"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let ops = input.history.ops();
        let mut ok = 0usize;
        for op in &ops {
            if op.outcome != Outcome::Ok {
                continue;
            }
            ok += 1;
            let sent = op.input.get("echo");
            let got = op.output.as_ref().and_then(|o| o.get("echo"));
            if sent != got {
                return Verdict::invalid(
                    self.name(),
                    format!("op at index {} got a different echo back", op.invoke_index),
                    json!({"property": "echo", "op": op, "sent": sent, "got": got}),
                );
            }
        }
        if ok == 0 {
            return Verdict::unknown(
                self.name(),
                "no op completed, nothing to judge",
                json!({"ops": ops.len()}),
            );
        }
        Verdict::valid(
            self.name(),
            format!("all {ok} ok replies echoed their request"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType, History};

    fn check(events: &[(u64, EventType, &str)]) -> Verdict {
        let events = events
            .iter()
            .enumerate()
            .map(|(i, (p, ty, s))| Event {
                index: i as u64,
                process: *p,
                ty: *ty,
                f: "echo".into(),
                value: json!({"echo": s}).into(),
                time: i as u64,
                node: None,
                error: None,
            })
            .collect();
        EchoChecker.check(&CheckInput {
            history: History { events },
            ..Default::default()
        })
    }

    #[test]
    fn echo_checker_has_teeth() {
        use crate::verdict::VerdictKind::*;
        use EventType::*;
        assert_eq!(check(&[(0, Invoke, "a"), (0, Ok, "a")]).verdict, Valid);
        assert_eq!(check(&[(0, Invoke, "a"), (0, Ok, "b")]).verdict, Invalid);
        assert_eq!(check(&[(0, Invoke, "a"), (0, Info, "a")]).verdict, Unknown);
        assert_eq!(
            check(&[
                (0, Invoke, "a"),
                (1, Invoke, "b"),
                (1, Ok, "b"),
                (0, Ok, "a")
            ])
            .verdict,
            Valid
        );
    }
}
