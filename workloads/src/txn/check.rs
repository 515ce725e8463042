//! The txn-rw-register checker: one pass over the txns for reads (internal, garbage,
//! G1a, G1b) and the dependency edges, then strongly connected components of the
//! dependency graph for cycles (G0 over write-write edges, G1c over write-write and
//! write-read edges). Tarjan's algorithm and the cycle search use explicit stacks and
//! queues, no recursion; everything is ordered (`BTreeMap`, txn indices), so a history
//! always gets the same verdict with the same evidence. What the edges can and cannot
//! show is in the [parent module](super)'s docs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{json, Value};

use super::Consistency;
use crate::history::{Op, Outcome};
use crate::maelstrom::canonical;
use crate::verdict::{CheckInput, Checker, Verdict};

/// Instances of each anomaly named in a verdict, at most.
pub const NAMED_MAX: usize = 10;
/// Txns judged, at most: a longer history is `unknown` rather than slow.
pub const TXNS_MAX: usize = 2_000_000;

/// The anomalies, in the order a verdict reports them (the first found names it).
pub const ANOMALIES: [&str; 6] = ["internal", "garbage-read", "G0", "G1a", "G1b", "G1c"];

/// Judges txn-rw-register histories under one [`Consistency`] model.
#[derive(Debug, Clone)]
pub struct TxnChecker {
    model: Consistency,
}

impl TxnChecker {
    /// A checker for `model`.
    pub fn new(model: Consistency) -> Self {
        TxnChecker { model }
    }

    /// Whether `model` forbids `anomaly` (one of [`ANOMALIES`]).
    fn forbids(&self, anomaly: &str) -> bool {
        match anomaly {
            "G1a" | "G1b" | "G1c" => self.model.forbids_g1(),
            _ => true,
        }
    }
}

/// One micro-op: a write, or a read of `value` (canonical JSON; `null` for a read of a
/// key never written).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mop {
    write: bool,
    key: String,
    value: String,
}

/// Why a micro-op list is not one.
fn mops_of(list: Option<&Value>) -> Result<Vec<Mop>, String> {
    let list = list
        .and_then(Value::as_array)
        .ok_or("'txn' is not a list")?;
    list.iter()
        .map(|m| {
            let parts = m.as_array().filter(|p| p.len() == 3);
            let Some([f, k, v]) = parts.map(Vec::as_slice) else {
                return Err(format!("micro-op {m} is not [f, k, v]"));
            };
            let write = match f.as_str() {
                Some("r") => false,
                Some("w") => true,
                _ => return Err(format!("micro-op {m}: f is not \"r\" or \"w\"")),
            };
            Ok(Mop {
                write,
                key: canonical(k),
                value: canonical(v),
            })
        })
        .collect()
}

/// A dependency: `from` must precede `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Dep {
    /// Write-write: `to` wrote a later version of the key than `from`.
    Ww,
    /// Write-read: `to` read a version `from` wrote.
    Wr,
}

impl Dep {
    fn name(self) -> &'static str {
        match self {
            Dep::Ww => "ww",
            Dep::Wr => "wr",
        }
    }
}

/// The edges between txns (by index), each with the key that made it; one per
/// `(from, to, dep)`.
#[derive(Debug, Default)]
struct Graph {
    edges: BTreeMap<(usize, usize, Dep), String>,
}

impl Graph {
    fn add(&mut self, from: usize, to: usize, dep: Dep, key: &str) {
        if from != to {
            self.edges
                .entry((from, to, dep))
                .or_insert_with(|| key.to_string());
        }
    }

    /// Adjacency over txns `0..n`, keeping only edges of the kinds in `deps`.
    fn adjacency(&self, n: usize, deps: &[Dep]) -> Vec<Vec<usize>> {
        let mut adj = vec![Vec::new(); n];
        for &(from, to, dep) in self.edges.keys() {
            if deps.contains(&dep) && !adj[from].contains(&to) {
                adj[from].push(to);
            }
        }
        adj
    }

    /// The first cycle over edges of `deps` that has an edge of kind `through`, as
    /// `(from, to, dep, key)` steps; `None` if there is none.
    fn cycle(&self, n: usize, deps: &[Dep], through: Dep) -> Option<Vec<(usize, usize, Dep)>> {
        let adj = self.adjacency(n, deps);
        let comp = components(&adj);
        let &(u, v, _) = self
            .edges
            .keys()
            .find(|(u, v, d)| *d == through && comp[*u] == comp[*v])?;
        // A path v -> u inside the component closes the cycle u -> v -> .. -> u.
        let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = VecDeque::from([v]);
        while let Some(x) = queue.pop_front() {
            if x == u {
                break;
            }
            for &y in &adj[x] {
                if comp[y] == comp[u] && y != v && !parent.contains_key(&y) {
                    parent.insert(y, x);
                    queue.push_back(y);
                }
            }
        }
        let mut path = vec![u];
        while let Some(&p) = parent.get(path.last().expect("non-empty")) {
            path.push(p);
        }
        assert_eq!(path.last(), Some(&v), "u and v share a component");
        path.reverse();
        let mut steps = vec![(u, v, through)];
        for w in path.windows(2) {
            let dep = deps
                .iter()
                .copied()
                .find(|d| self.edges.contains_key(&(w[0], w[1], *d)))
                .expect("an edge of the adjacency");
            steps.push((w[0], w[1], dep));
        }
        Some(steps)
    }
}

/// The strongly connected component of each vertex (Tarjan's algorithm, iterative).
fn components(adj: &[Vec<usize>]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let n = adj.len();
    let (mut index, mut low, mut comp) = (vec![UNSEEN; n], vec![0; n], vec![UNSEEN; n]);
    let mut on_stack = vec![false; n];
    let (mut stack, mut next, mut comps) = (Vec::new(), 0, 0);
    for s in 0..n {
        if index[s] != UNSEEN {
            continue;
        }
        let mut calls = vec![(s, 0usize)];
        index[s] = next;
        low[s] = next;
        next += 1;
        stack.push(s);
        on_stack[s] = true;
        while let Some(&(v, i)) = calls.last() {
            if let Some(&w) = adj[v].get(i) {
                calls.last_mut().expect("non-empty").1 += 1;
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(p, _)) = calls.last() {
                low[p] = low[p].min(low[v]);
            }
            if low[v] == index[v] {
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w] = false;
                    comp[w] = comps;
                    if w == v {
                        break;
                    }
                }
                comps += 1;
            }
        }
    }
    comp
}

/// Who wrote a value of a key: the txn, and whether it wrote the key again after it.
#[derive(Debug, Clone, Copy)]
struct Writer {
    txn: usize,
    overwritten: bool,
}

/// Found anomalies, by name, at most [`NAMED_MAX`] each, with a count of all.
#[derive(Debug, Default)]
struct Found {
    named: BTreeMap<&'static str, Vec<Value>>,
    counts: BTreeMap<&'static str, usize>,
}

impl Found {
    fn add(&mut self, anomaly: &'static str, evidence: impl FnOnce() -> Value) {
        *self.counts.entry(anomaly).or_default() += 1;
        let named = self.named.entry(anomaly).or_default();
        if named.len() < NAMED_MAX {
            named.push(evidence());
        }
    }
}

/// A txn in evidence: where it was sent and what it said.
fn txn_json(op: &Op) -> Value {
    let txn = op
        .output
        .as_ref()
        .and_then(|o| o.get("txn").cloned())
        .or_else(|| op.input.get("txn").cloned());
    json!({
        "index": op.invoke_index,
        "process": op.process,
        "node": op.node,
        "outcome": op.outcome,
        "txn": txn,
    })
}

/// A short name of a txn for a reason sentence.
fn txn_name(op: &Op) -> String {
    format!(
        "txn {} on {}",
        op.invoke_index,
        op.node.as_deref().unwrap_or("?")
    )
}

/// The anomalies of reads, and the dependency graph.
fn scan(txns: &[(Op, Vec<Mop>)], found: &mut Found) -> Graph {
    let mut writers: BTreeMap<(&str, &str), Writer> = BTreeMap::new();
    for (i, (_, mops)) in txns.iter().enumerate() {
        for (j, m) in mops.iter().enumerate().filter(|(_, m)| m.write) {
            let overwritten = mops[j + 1..].iter().any(|n| n.write && n.key == m.key);
            writers.entry((&m.key, &m.value)).or_insert(Writer {
                txn: i,
                overwritten,
            });
        }
    }
    let mut graph = Graph::default();
    for (t, (op, mops)) in txns.iter().enumerate() {
        if op.outcome != Outcome::Ok {
            continue;
        }
        // Per key: this txn's own last write, and the last version it read before
        // writing (the one its write follows).
        let mut own: BTreeMap<&str, &str> = BTreeMap::new();
        let mut read_before: BTreeMap<&str, &str> = BTreeMap::new();
        for m in mops {
            let (key, value) = (m.key.as_str(), m.value.as_str());
            if m.write {
                if let Some(prev) = read_before.get(key).filter(|_| !own.contains_key(key)) {
                    if let Some(w) = writers.get(&(key, *prev)) {
                        graph.add(w.txn, t, Dep::Ww, key);
                    }
                }
                own.insert(key, value);
                continue;
            }
            if let Some(mine) = own.get(key) {
                if *mine != value {
                    found.add("internal", || {
                        json!({"txns": [txn_json(op)], "keys": [key],
                               "expected": mine, "read": value})
                    });
                }
                continue;
            }
            read_before.insert(key, value);
            if value == "null" {
                continue;
            }
            let Some(w) = writers.get(&(key, value)).copied() else {
                found.add(
                    "garbage-read",
                    || json!({"txns": [txn_json(op)], "keys": [key], "read": value}),
                );
                continue;
            };
            let writer = &txns[w.txn].0;
            let evidence =
                || json!({"txns": [txn_json(op), txn_json(writer)], "keys": [key], "read": value});
            if w.txn == t {
                // Read its own write before making it.
                found.add("internal", evidence);
            } else if writer.outcome == Outcome::Fail {
                found.add("G1a", evidence);
            } else {
                if w.overwritten {
                    found.add("G1b", evidence);
                }
                graph.add(w.txn, t, Dep::Wr, key);
            }
        }
    }
    graph
}

impl Checker for TxnChecker {
    fn name(&self) -> &'static str {
        "txn-rw-register"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let name = self.name();
        let model = self.model.name();
        let ops: Vec<Op> = input
            .history
            .ops()
            .into_iter()
            .filter(|o| o.f == "txn")
            .collect();
        if ops.len() > TXNS_MAX {
            return Verdict::unknown(
                name,
                format!("{} txns, more than the {TXNS_MAX} judged", ops.len()),
                json!({"property": "budget"}),
            );
        }
        let mut txns = Vec::with_capacity(ops.len());
        for op in ops {
            let asked = mops_of(op.input.get("txn"));
            let got = match op.outcome {
                Outcome::Ok => mops_of(op.output.as_ref().and_then(|o| o.get("txn"))),
                _ => asked.clone(),
            };
            let problem = match (&asked, &got) {
                (Err(e), _) | (_, Err(e)) => Some(e.clone()),
                (Ok(a), Ok(g)) => shape_problem(a, g),
            };
            if let Some(problem) = problem {
                return Verdict::invalid(
                    name,
                    format!("{} answered a malformed txn_ok: {problem}", txn_name(&op)),
                    json!({"property": "malformed", "txns": [txn_json(&op)]}),
                );
            }
            txns.push((op, got.expect("checked")));
        }
        let mut found = Found::default();
        let graph = scan(&txns, &mut found);
        let n = txns.len();
        for (anomaly, deps, through) in [
            ("G0", &[Dep::Ww][..], Dep::Ww),
            ("G1c", &[Dep::Ww, Dep::Wr][..], Dep::Wr),
        ] {
            if let Some(steps) = graph.cycle(n, deps, through) {
                found.add(anomaly, || cycle_json(&txns, &graph, &steps));
            }
        }
        let first = ANOMALIES
            .iter()
            .find(|a| self.forbids(a) && found.counts.contains_key(*a));
        let Some(&anomaly) = first else {
            let ok = txns
                .iter()
                .filter(|(o, _)| o.outcome == Outcome::Ok)
                .count();
            let allowed: Vec<String> = found
                .counts
                .iter()
                .map(|(a, c)| format!("{c} {a}"))
                .collect();
            let allowed = if allowed.is_empty() {
                String::new()
            } else {
                format!(" ({} allowed by {model})", allowed.join(", "))
            };
            return Verdict::valid(
                name,
                format!(
                    "{model}: no anomaly in {ok} ok txns of {n} over {} dependency edges{allowed}",
                    graph.edges.len()
                ),
            );
        };
        let instances = &found.named[anomaly];
        let first = &instances[0];
        let reason = format!(
            "{model} forbids {anomaly} ({}): {} instance(s); first: txns {} on keys {}",
            describe(anomaly),
            found.counts[anomaly],
            first["txns"]
                .as_array()
                .map(|ts| ts
                    .iter()
                    .map(|t| t["index"].to_string())
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default(),
            first["keys"]
        );
        Verdict::invalid(
            name,
            reason,
            json!({
                "property": anomaly,
                "model": model,
                "counts": found.counts,
                "anomalies": found.named,
            }),
        )
    }
}

/// What each anomaly means, for the reason sentence.
fn describe(anomaly: &str) -> &'static str {
    match anomaly {
        "internal" => "a txn did not read its own earlier write",
        "garbage-read" => "a read of a value no txn wrote",
        "G0" => "a cycle of write-write dependencies",
        "G1a" => "a read of a write whose txn failed",
        "G1b" => "a read of a value its txn overwrote",
        _ => "a cycle of write-write and write-read dependencies",
    }
}

/// Why an `ok` txn's micro-ops `got` do not answer `asked`: another length, another
/// function or key at some position, or a write whose value changed.
fn shape_problem(asked: &[Mop], got: &[Mop]) -> Option<String> {
    if asked.len() != got.len() {
        return Some(format!(
            "{} micro-ops asked, {} answered",
            asked.len(),
            got.len()
        ));
    }
    asked.iter().zip(got).enumerate().find_map(|(i, (a, g))| {
        let same = a.write == g.write && a.key == g.key && (!a.write || a.value == g.value);
        (!same).then(|| format!("micro-op {i} does not answer the one asked"))
    })
}

/// A cycle in evidence: its txns and each step's dependency and key.
fn cycle_json(txns: &[(Op, Vec<Mop>)], graph: &Graph, steps: &[(usize, usize, Dep)]) -> Value {
    let keys: BTreeSet<&str> = steps.iter().map(|s| graph.edges[s].as_str()).collect();
    json!({
        "txns": steps.iter().map(|(from, _, _)| txn_json(&txns[*from].0)).collect::<Vec<_>>(),
        "keys": keys,
        "steps": steps.iter().map(|&(from, to, dep)| json!({
            "from": txns[from].0.invoke_index,
            "to": txns[to].0.invoke_index,
            "dep": dep.name(),
            "key": graph.edges[&(from, to, dep)],
        })).collect::<Vec<_>>(),
    })
}
