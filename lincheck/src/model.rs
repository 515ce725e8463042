//! Sequential specifications: what a single object does when ops run one at a time.
//!
//! A [`Model`] is the adapter between a [`History`](crate::History)'s general [`Op`]s
//! and a compact, model-specific op and state: states are small `Copy` values so the
//! search can memoise and restore them without allocating. A model also says which ops
//! can never change the state ([`Model::read_only`]); the search commits those greedily.
//!
//! Integer models abstract the values no op observes into one ([`Observed`]).
//!
//! [`ModelKind`] names the built-in models and whether they partition a history by key
//! (P-compositionality: a history is linearizable iff each key's sub-history is).

use std::fmt::Debug;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::history::{Op, Value};

pub mod kv_strings;
pub mod register;
pub mod write_once;

pub use kv_strings::KvStrings;
pub use register::Register;
pub use write_once::WriteOnce;

/// A sequential specification of one object.
pub trait Model: Send {
    /// The object's state; cheap to copy, compare and hash.
    type State: Copy + Eq + Hash + Debug + Send;
    /// An op in this model's compact form, with its observed output.
    type Op: Clone + Eq + Hash + Debug + Send;

    /// The state before any op.
    fn init(&self) -> Self::State;

    /// Called once with every op of a partition (`fail` ops excluded) before any
    /// [`Model::convert`], so a model may learn which values the history ever observes
    /// (see [`Observed`]). The default learns nothing.
    fn prepare(&mut self, ops: &[&Op]) {
        let _ = ops;
    }

    /// Converts a history op. The outcome is `Ok`, `CompareFailed` or `Info` (failed ops
    /// never reach a model); an `Info` op's output is unknown.
    fn convert(&mut self, op: &Op) -> Result<Self::Op, ModelError>;

    /// Applies `op` to `state`: `None` if the op's observed output is impossible there.
    fn step(&mut self, state: Self::State, op: &Self::Op) -> Option<Self::State>;

    /// True if `step` returns either `None` or `state` itself, for every state.
    fn read_only(&self, op: &Self::Op) -> bool;

    /// True if `step` is legal in every state and its result does not depend on the
    /// state (a write, a put). An optional op directly followed by a blind op is never
    /// needed: dropping it leaves every later state as it was. Default `false`.
    fn blind(&self, op: &Self::Op) -> bool {
        let _ = op;
        false
    }

    /// True if `op` never moves the state backwards in the model's own order, where
    /// [`Model::may_become_legal`] is judged (appends to a string). Read-only ops are
    /// monotone; the default (`false` for others) disables that pruning.
    fn monotone(&self, op: &Self::Op) -> bool {
        self.read_only(op)
    }

    /// For a read-only `op` illegal in `state`: false only if no state reachable from
    /// `state` by monotone ops makes it legal. The search then abandons `state` when no
    /// non-monotone op can be linearized before `op` must return.
    fn may_become_legal(&mut self, state: Self::State, op: &Self::Op) -> bool {
        let _ = (state, op);
        true
    }

    /// For a non-monotone op `rescuer` and a read-only `op`: false only if no state
    /// `rescuer` leads to, followed by monotone ops, makes `op` legal (a put of a value
    /// that is not a prefix of what a get returned). Dead-read pruning then ignores
    /// `rescuer`. The default, `true`, never ignores one.
    fn may_rescue(&mut self, rescuer: &Self::Op, op: &Self::Op) -> bool {
        let _ = (rescuer, op);
        true
    }

    /// A human rendering of a state.
    fn describe(&self, state: Self::State) -> String;

    /// Heap bytes the model holds (interned values, states it built), for the memory
    /// budget.
    fn heap_bytes(&self) -> usize {
        0
    }

    /// Forgets the states built by a search (converted ops stay valid), after the
    /// search of its partition ended. The default holds none.
    fn forget_states(&mut self) {}
}

/// An op the chosen model cannot interpret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model {model} cannot check op `{op}`: {reason}")]
pub struct ModelError {
    /// The model's name.
    pub model: &'static str,
    /// The op, rendered.
    pub op: String,
    /// Why.
    pub reason: String,
}

impl ModelError {
    pub(crate) fn new(model: &'static str, op: &Op, reason: impl Into<String>) -> Self {
        ModelError {
            model,
            op: op.to_string(),
            reason: reason.into(),
        }
    }
}

/// The built-in models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// One integer register (read/write); a history with several keys is refused.
    Register,
    /// One integer register with compare-and-set, initially nil; a history with
    /// several keys is refused (use [`ModelKind::Kv`]).
    CasRegister,
    /// A CAS register of integers per key (read/write/cas), initially nil.
    Kv,
    /// A string per key (get/put/append), initially "".
    KvStrings,
    /// A write-once register per key (propose/read), initially undecided.
    WriteOnce,
}

impl ModelKind {
    /// Every model, in the order [`FromStr`](std::str::FromStr) lists them.
    pub const ALL: [ModelKind; 5] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Kv,
        ModelKind::KvStrings,
        ModelKind::WriteOnce,
    ];

    /// The name used on command lines.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::KvStrings => "kv-strings",
            ModelKind::WriteOnce => "write-once",
        }
    }

    /// Whether the model checks each key separately.
    pub fn per_key(self) -> bool {
        matches!(
            self,
            ModelKind::Kv | ModelKind::KvStrings | ModelKind::WriteOnce
        )
    }
}

named_set!(ModelKind, UnknownModel, "model");

/// An integer value or nil, as integer models store it.
pub(crate) fn int_or_nil(
    model: &'static str,
    op: &Op,
    v: &Value,
) -> Result<Option<u64>, ModelError> {
    match v {
        Value::Nil => Ok(None),
        Value::Int(i) => Ok(Some(*i)),
        Value::Str(_) => Err(ModelError::new(model, op, "values must be integers or nil")),
    }
}

/// Integer values a partition *observes*, numbered densely, for value abstraction.
///
/// A value is observed if some op's legality compares the state with it: a read's
/// result, a CAS's `from`, a decided value a propose returned. Every other value can
/// only be written over or compared unequal, so two states holding different unobserved
/// values are indistinguishable by every op of the partition (they are bisimilar:
/// each op is legal in both or in neither and leads to equal or again bisimilar
/// states). Mapping every unobserved value to one id, [`Observed::unobserved`], is
/// therefore exact: the history has a linearization iff the mapped one does. It turns
/// crashed writes of distinct values nobody reads into identical ops, which the search
/// tries once per class instead of in every subset and order.
///
/// Ids are internal (`0..len` for observed values, `len` for the rest), so no input
/// value can collide with them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    ids: std::collections::BTreeMap<u64, u64>,
    values: Vec<u64>,
    /// Whether [`Observed::learn`] was called: before, ids are the values themselves.
    active: bool,
}

impl Observed {
    /// Learns the observed values; `observe(op)` lists an op's.
    pub(crate) fn learn<'a>(&mut self, ops: &[&'a Op], observe: impl Fn(&'a Op) -> Vec<u64>) {
        self.ids.clear();
        self.values.clear();
        for op in ops {
            for v in observe(op) {
                if let std::collections::btree_map::Entry::Vacant(e) = self.ids.entry(v) {
                    e.insert(self.values.len() as u64);
                    self.values.push(v);
                }
            }
        }
        self.active = true;
    }

    /// The id of `v`.
    pub fn id(&self, v: u64) -> u64 {
        if !self.active {
            return v;
        }
        self.ids.get(&v).copied().unwrap_or(self.unobserved())
    }

    /// The id shared by every unobserved value.
    pub fn unobserved(&self) -> u64 {
        self.values.len() as u64
    }

    /// The value an id stands for, rendered.
    pub fn describe(&self, id: u64) -> String {
        if !self.active {
            return id.to_string();
        }
        match self.values.get(id as usize) {
            Some(v) => v.to_string(),
            None => "a value no op observes".to_string(),
        }
    }
}
