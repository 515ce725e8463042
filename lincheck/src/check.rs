//! `check`: split a history into partitions, search each (in parallel), combine.
//!
//! A history is linearizable iff every partition is (Herlihy & Wing's locality; Horn &
//! Kroening's P-compositionality for per-key models). One invalid partition makes the
//! history invalid even if others ran out of budget; otherwise one unfinished
//! partition makes the verdict `Unknown`.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::explain::shrink::{self, ShrinkLimits};
use crate::explain::{Explanation, OpRef, Partial, PartitionFailure, PartitionProgress};
use crate::history::{History, Outcome as OpOutcome, Value};
use crate::model::{KvStrings, Model, ModelError, ModelKind, Register, WriteOnce};
use crate::search::budget::{Budget, UnknownReason};
use crate::search::memo::FxHasher;
use crate::search::prepare::Prepared;
use crate::search::{End, Pruning};

mod run;
use run::{Done, RunConfig};

/// Limits and switches for a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckOptions {
    /// Worker threads for partitions; 0 = every core, 1 = single-threaded.
    pub threads: usize,
    /// States explored over all partitions before giving up with `Unknown`.
    pub states_max: u64,
    /// States one partition (key) may explore before that key alone is `Unknown`.
    pub key_states_max: u64,
    /// Wall time before giving up with `Unknown`; `None` = no limit.
    pub time_ms_max: Option<u64>,
    /// Bytes for memo tables, shared out among the threads.
    pub memo_bytes_max: usize,
    /// Compute a minimal failing window for invalid histories.
    pub minimize: bool,
    /// States over all sub-histories checked while minimizing.
    pub shrink_states_max: u64,
    /// Print explanations (used by [`crate::cmd`]; minimizing happens only then).
    pub verbose: bool,
    /// Search every partition even after one is found invalid (for complete
    /// explanations); by default the first invalid partition settles the verdict.
    pub all_partitions: bool,
    /// Search prunings.
    pub pruning: Pruning,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            threads: 0,
            states_max: 100_000_000,
            key_states_max: 20_000_000,
            time_ms_max: Some(300_000),
            memo_bytes_max: 128 << 20,
            minimize: true,
            shrink_states_max: 5_000_000,
            verbose: false,
            all_partitions: false,
            pruning: Pruning::default(),
        }
    }
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every partition has a linearization.
    Valid,
    /// Some partition has none.
    Invalid {
        /// Why.
        explanation: Box<Explanation>,
    },
    /// The budget ran out first.
    Unknown {
        /// Which budget.
        reason: UnknownReason,
        /// How far the check got.
        partial: Partial,
    },
}

impl Verdict {
    /// `valid`, `invalid` or `unknown`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid { .. } => "invalid",
            Verdict::Unknown { .. } => "unknown",
        }
    }

    /// The process exit code: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid { .. } => 1,
            Verdict::Unknown { .. } => 2,
        }
    }
}

/// Counters of one check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Configurations explored over all partitions (minimizing excluded).
    pub states: u64,
    /// Partitions.
    pub partitions: usize,
    /// Ops considered (after dropping `fail` ops).
    pub ops: usize,
    /// Worker threads used.
    pub threads: usize,
    /// Wall time of the check, parsing excluded, minimizing included (microseconds).
    pub elapsed_us: u64,
    /// Times a memo was emptied for lack of room.
    pub memo_evictions: u64,
    /// Peak memo bytes, summed over threads.
    pub memo_bytes_peak: usize,
}

/// A verdict with its counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The verdict.
    pub verdict: Verdict,
    /// The counters.
    pub stats: Stats,
}

/// Checks `history` against `model`. An `Err` means an op the model cannot interpret,
/// or ops on several keys for a model that ignores keys (`register`, `cas-register`).
pub fn check(
    history: &History,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<Outcome, ModelError> {
    if !model.per_key() {
        single_key(history, model)?;
    }
    match model {
        ModelKind::Register => run(history, model, Register::plain, opts),
        ModelKind::CasRegister | ModelKind::Kv => run(history, model, Register::with_cas, opts),
        ModelKind::KvStrings => run(history, model, KvStrings::new, opts),
        ModelKind::WriteOnce => run(history, model, WriteOnce::default, opts),
    }
}

/// Refuses a history with ops on more than one key for a model that ignores keys:
/// checking every key as one register would report false violations.
fn single_key(history: &History, model: ModelKind) -> Result<(), ModelError> {
    let mut ops = history.ops.iter();
    let Some(first) = ops.next() else {
        return Ok(());
    };
    match ops.find(|op| op.key != first.key) {
        None => Ok(()),
        Some(other) => Err(ModelError::new(
            model.name(),
            other,
            format!(
                "the history has more than one key ({} and {}) and {model} ignores keys; \
                 use the kv model, which checks each key as its own register",
                first.key, other.key
            ),
        )),
    }
}

/// History indices per key, sorted by key, `fail` ops left out. Keys are borrowed from
/// the history (no per-op clone) and found through a hash index.
fn partitions(history: &History, per_key: bool) -> Vec<(&Value, Vec<usize>)> {
    const NIL: &Value = &Value::Nil;
    let mut index: HashMap<&Value, usize, BuildHasherDefault<FxHasher>> = HashMap::default();
    let mut parts: Vec<(&Value, Vec<usize>)> = Vec::new();
    for (i, op) in history.ops.iter().enumerate() {
        if op.outcome == OpOutcome::Fail {
            continue;
        }
        let key = if per_key { &op.key } else { NIL };
        let at = *index.entry(key).or_insert_with(|| {
            parts.push((key, Vec::new()));
            parts.len() - 1
        });
        parts[at].1.push(i);
    }
    parts.sort_unstable_by(|a, b| a.0.cmp(b.0));
    parts
}

fn run<M: Model, F: Fn() -> M>(
    history: &History,
    kind: ModelKind,
    make: F,
    opts: &CheckOptions,
) -> Result<Outcome, ModelError> {
    let started = Instant::now();
    let parts = partitions(history, kind.per_key());
    let keys: Vec<Value> = parts.iter().map(|&(k, _)| k.clone()).collect();
    let mut prepared = Vec::with_capacity(parts.len());
    for (_, indices) in &parts {
        let ops = indices.iter().map(|&i| (i, &history.ops[i]));
        prepared.push(Mutex::new(Prepared::new(make(), ops)?));
    }
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => t,
    }
    .clamp(1, prepared.len().max(1));
    let budget = Budget::new(opts.states_max, opts.time_ms_max);
    let cfg = RunConfig {
        threads,
        memo_bytes_max: opts.memo_bytes_max,
        pruning: opts.pruning,
        early_exit: !opts.all_partitions,
        key_states_max: opts.key_states_max.max(1),
    };
    let (results, memo) = run::run(&prepared, &budget, &cfg);
    let mut prepared: Vec<Prepared<M>> = prepared
        .into_iter()
        .map(|m| m.into_inner().expect("unpoisoned"))
        .collect();
    let ops = prepared.iter().map(Prepared::len).sum();

    let done_states: Vec<u64> = results
        .iter()
        .map(|d| d.as_ref().map_or(0, |d| d.result.states))
        .collect();
    let mut failures = Vec::new();
    let mut first_invalid = None;
    let mut unknown = Vec::new();
    let mut reason = None;
    let mut valid = 0;
    for (i, (key, done)) in keys.iter().zip(results).enumerate() {
        let p = &mut prepared[i];
        let to_ref = |x: u32| OpRef::new(history, p.origin[x as usize]);
        match done {
            Some(Done { result, describe }) if result.end == End::Invalid => {
                first_invalid.get_or_insert(i);
                let state =
                    concrete_state(make(), history, &p.origin, &result.deepest).unwrap_or(describe);
                failures.push(PartitionFailure {
                    key: key.clone(),
                    ops: p.len(),
                    linearized: result.deepest.iter().map(|&x| to_ref(x)).collect(),
                    state,
                    stuck: result.stuck.map(to_ref),
                });
            }
            Some(Done { result, .. }) if result.end == End::Valid => valid += 1,
            done => {
                let (states, longest_prefix) = match &done {
                    Some(d) => {
                        if let End::Unknown(r) = d.result.end {
                            reason.get_or_insert(r);
                        }
                        (d.result.states, d.result.deepest.len())
                    }
                    None => (0, 0),
                };
                unknown.push(PartitionProgress {
                    key: key.clone(),
                    ops: p.len(),
                    longest_prefix,
                    states,
                });
            }
        }
    }
    let verdict = if let Some(i) = first_invalid {
        let window = (opts.minimize).then(|| {
            // A test may cost a few times the search that found the failure.
            let found_in = done_states[i];
            let limits = ShrinkLimits {
                states_max: opts.shrink_states_max,
                test_states_max: (4 * found_in + 200_000).min(opts.shrink_states_max),
                time_ms_max: opts.time_ms_max,
                memo_bytes_max: opts.memo_bytes_max,
                pruning: opts.pruning,
            };
            let indices = &parts[i].1;
            shrink::window(&make, history, &keys[i], indices, limits)
        });
        Verdict::Invalid {
            explanation: Box::new(Explanation {
                partitions: failures,
                window: window.flatten(),
                unknown_partitions: unknown.len(),
            }),
        }
    } else if unknown.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Unknown {
            reason: reason.unwrap_or_else(|| budget.stopped().expect_err("budget was spent")),
            partial: Partial {
                partitions_valid: valid,
                unknown,
            },
        }
    };
    let stats = Stats {
        states: budget.states(),
        partitions: keys.len(),
        ops,
        threads,
        elapsed_us: started.elapsed().as_micros() as u64,
        memo_evictions: memo.evictions,
        memo_bytes_peak: memo.bytes_peak,
    };
    Ok(Outcome { verdict, stats })
}

/// The state after the ops `lin` (prepared indices, in order) under `model`'s concrete
/// semantics: a fresh model has not learned which values are observed, so it renders
/// the values themselves rather than the search's abstraction of them.
fn concrete_state<M: Model>(
    mut model: M,
    history: &History,
    origin: &[usize],
    lin: &[u32],
) -> Option<String> {
    let mut state = model.init();
    for &x in lin {
        let op = model.convert(&history.ops[origin[x as usize]]).ok()?;
        state = model.step(state, &op)?;
    }
    Some(model.describe(state))
}
