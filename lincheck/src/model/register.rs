//! An integer register, optionally with compare-and-set, initially nil.
//!
//! A read must return the current value. A successful CAS requires the current value to
//! equal `from` and sets `to`; a CAS whose compare failed (Jepsen etcd's `:fail :cas`)
//! requires the current value to differ from `from` and changes nothing, so it is an
//! observation like a read. An `info` CAS is modelled as one that took effect: one that
//! ran and failed its compare is indistinguishable from one that never ran, and `info`
//! ops may always not run.

use crate::history::{Input, Op, Outcome, Value};
use crate::model::{int_or_nil, Model, ModelError, Observed};

/// A register of `Option<u64>` (`None` = nil); values are [`Observed`] ids once
/// [`Model::prepare`] has run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    cas: bool,
    observed: Observed,
}

impl Register {
    /// A read/write register.
    pub fn plain() -> Self {
        Register {
            cas: false,
            observed: Observed::default(),
        }
    }

    /// A read/write/cas register.
    pub fn with_cas() -> Self {
        Register {
            cas: true,
            observed: Observed::default(),
        }
    }

    fn value(&self, op: &Op, v: &Value) -> Result<Option<u64>, ModelError> {
        Ok(int_or_nil(self.name(), op, v)?.map(|v| self.observed.id(v)))
    }

    fn name(&self) -> &'static str {
        if self.cas {
            "cas-register"
        } else {
            "register"
        }
    }
}

/// A register op with its observed output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    /// A read that returned this value.
    Read(Option<u64>),
    /// A read whose result is unknown: always legal.
    ReadAny,
    /// A write.
    Write(Option<u64>),
    /// A CAS that took effect.
    Cas(Option<u64>, Option<u64>),
    /// A CAS that found a value other than `from`.
    CasFailed(Option<u64>),
}

impl Model for Register {
    type State = Option<u64>;
    type Op = RegisterOp;

    fn init(&self) -> Self::State {
        None
    }

    fn prepare(&mut self, ops: &[&Op]) {
        // Reads and CAS compares observe values; writes and CAS targets do not.
        self.observed
            .learn(ops, |op| match (&op.input, &op.outcome) {
                (Input::Read, Outcome::Ok(Value::Int(v))) => vec![*v],
                (
                    Input::Cas {
                        from: Value::Int(v),
                        ..
                    },
                    _,
                ) => vec![*v],
                _ => Vec::new(),
            });
    }

    fn convert(&mut self, op: &Op) -> Result<RegisterOp, ModelError> {
        let name = self.name();
        let known = !matches!(op.outcome, Outcome::Info);
        Ok(match (&op.input, &op.outcome) {
            (Input::Read, Outcome::Ok(v)) => RegisterOp::Read(self.value(op, v)?),
            (Input::Read, _) if !known => RegisterOp::ReadAny,
            (Input::Write { value }, Outcome::Ok(_) | Outcome::Info) => {
                RegisterOp::Write(self.value(op, value)?)
            }
            (Input::Cas { from, to }, _) if self.cas => {
                let from = self.value(op, from)?;
                match op.outcome {
                    Outcome::CompareFailed => RegisterOp::CasFailed(from),
                    _ => RegisterOp::Cas(from, self.value(op, to)?),
                }
            }
            (Input::Cas { .. }, _) => {
                return Err(ModelError::new(name, op, "use cas-register or kv for cas"))
            }
            (Input::Append { .. } | Input::Propose { .. }, _) => {
                return Err(ModelError::new(name, op, "unsupported function"))
            }
            _ => return Err(ModelError::new(name, op, "unsupported outcome")),
        })
    }

    #[inline]
    fn step(&mut self, state: Self::State, op: &RegisterOp) -> Option<Self::State> {
        match *op {
            RegisterOp::Read(v) => (v == state).then_some(state),
            RegisterOp::ReadAny => Some(state),
            RegisterOp::Write(v) => Some(v),
            RegisterOp::Cas(from, to) => (from == state).then_some(to),
            RegisterOp::CasFailed(from) => (from != state).then_some(state),
        }
    }

    #[inline]
    fn read_only(&self, op: &RegisterOp) -> bool {
        match *op {
            RegisterOp::Read(_) | RegisterOp::ReadAny | RegisterOp::CasFailed(_) => true,
            RegisterOp::Cas(from, to) => from == to,
            RegisterOp::Write(_) => false,
        }
    }

    #[inline]
    fn blind(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Write(_))
    }

    fn describe(&self, state: Self::State) -> String {
        match state {
            None => "nil".to_string(),
            Some(v) => self.observed.describe(v),
        }
    }
}
