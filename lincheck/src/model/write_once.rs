//! A write-once register (one consensus instance), initially undecided.
//!
//! `propose(v) -> d` from the undecided state requires `d == v` and decides `d`; once
//! `x` is decided it requires `d == x` and changes nothing. `read -> r` requires `r` to
//! be the decided value, or nil while undecided. A proposal that returned a value other
//! than its own can only be legal once something is decided, where it changes nothing:
//! it is read-only.
//!
//! Values no read observes and no propose returned are abstracted into one
//! ([`crate::model::Observed`]).

use crate::history::{Input, Op, Outcome, Value};
use crate::model::{int_or_nil, Model, ModelError, Observed};

const NAME: &str = "write-once";

/// The write-once register; values are [`Observed`] ids once [`Model::prepare`] ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOnce {
    observed: Observed,
}

/// A write-once op with its observed output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteOnceOp {
    /// `propose(value)` that returned `decided` (`None`: unknown).
    Propose {
        /// The proposed value.
        value: u64,
        /// The decided value returned.
        decided: Option<u64>,
    },
    /// A read that returned this value (`None` = undecided).
    Read(Option<u64>),
    /// A read whose result is unknown.
    ReadAny,
}

impl Model for WriteOnce {
    type State = Option<u64>;
    type Op = WriteOnceOp;

    fn init(&self) -> Self::State {
        None
    }

    fn prepare(&mut self, ops: &[&Op]) {
        // Reads and the decided values proposes return observe values; the proposed
        // values are only compared with decided ones.
        self.observed
            .learn(ops, |op| match (&op.input, &op.outcome) {
                (Input::Read | Input::Propose { .. }, Outcome::Ok(Value::Int(v))) => vec![*v],
                _ => Vec::new(),
            });
    }

    fn convert(&mut self, op: &Op) -> Result<WriteOnceOp, ModelError> {
        let observed = &self.observed;
        let int = |v| int_or_nil(NAME, op, v).map(|v| v.map(|v| observed.id(v)));
        Ok(match (&op.input, &op.outcome) {
            (Input::Propose { value }, outcome) => {
                let value = int(value)?
                    .ok_or_else(|| ModelError::new(NAME, op, "proposed value is nil"))?;
                let decided = match outcome {
                    Outcome::Ok(d) => Some(
                        int(d)?.ok_or_else(|| ModelError::new(NAME, op, "decided value is nil"))?,
                    ),
                    Outcome::Info => None,
                    _ => return Err(ModelError::new(NAME, op, "unsupported outcome")),
                };
                WriteOnceOp::Propose { value, decided }
            }
            (Input::Read, Outcome::Ok(v)) => WriteOnceOp::Read(int(v)?),
            (Input::Read, Outcome::Info) => WriteOnceOp::ReadAny,
            _ => return Err(ModelError::new(NAME, op, "unsupported function")),
        })
    }

    #[inline]
    fn step(&mut self, state: Self::State, op: &WriteOnceOp) -> Option<Self::State> {
        match (*op, state) {
            (WriteOnceOp::Propose { value, decided }, None) => {
                (decided.is_none() || decided == Some(value)).then_some(Some(value))
            }
            (WriteOnceOp::Propose { decided, .. }, Some(x)) => {
                (decided.is_none() || decided == Some(x)).then_some(state)
            }
            (WriteOnceOp::Read(r), _) => (r == state).then_some(state),
            (WriteOnceOp::ReadAny, _) => Some(state),
        }
    }

    #[inline]
    fn read_only(&self, op: &WriteOnceOp) -> bool {
        match *op {
            WriteOnceOp::Propose { value, decided } => decided.is_some_and(|d| d != value),
            WriteOnceOp::Read(_) | WriteOnceOp::ReadAny => true,
        }
    }

    fn describe(&self, state: Self::State) -> String {
        match state {
            None => "undecided".to_string(),
            Some(v) => format!("decided {}", self.observed.describe(v)),
        }
    }
}
