//! The multicast checkers, one per property, all reading one [`Record`]. An invalid
//! verdict names the two messages, the nodes, the orders each node delivered them in,
//! and the faults active from the first message's multicast to the wrong delivery.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::record::{Bits, Record, Relation, Sequence};
use super::Guarantee;
use crate::history::Outcome;
use crate::verdict::{CheckInput, Checker, Verdict};

/// The checkers that judge `g`: integrity always, then each property `g` asks for.
pub fn for_guarantee(g: Guarantee) -> Vec<Box<dyn Checker>> {
    let mut out: Vec<Box<dyn Checker>> = vec![Box::new(Integrity)];
    if g.order.fifo() {
        out.push(Box::new(Ordered { causal: false }));
    }
    if g.order.causal() {
        out.push(Box::new(Ordered { causal: true }));
    }
    if g.order.total() {
        out.push(Box::new(Total));
    }
    if g.reliable {
        out.push(Box::new(Reliable));
    }
    out
}

/// The faults active at any moment of `[from, to]`, as evidence lists them.
fn faults(input: &CheckInput, from: u64, to: u64) -> Vec<Value> {
    let faults = input.faults_during(from.min(to), from.max(to));
    faults.iter().map(|f| json!(f)).collect()
}

/// `delay 5+20 ms on all links; crash n1`, or `none`.
fn described(faults: &[Value]) -> String {
    let what: Vec<&str> = faults.iter().filter_map(|f| f["what"].as_str()).collect();
    if what.is_empty() {
        "none".into()
    } else {
        what.join("; ")
    }
}

/// `n3 delivered 12 (#4) before 17 (#9)`, or `.. and never 17`.
fn seen(s: &Sequence, first: u64, second: u64) -> String {
    let at = |v: u64| s.position(v).map(|p| p + 1);
    match (at(first), at(second)) {
        (Some(a), Some(b)) => format!(
            "{} delivered {first} (#{a}) before {second} (#{b})",
            s.name()
        ),
        (Some(a), None) => format!("{} delivered {first} (#{a}) and never {second}", s.name()),
        (None, Some(b)) => format!("{} delivered {second} (#{b}) and never {first}", s.name()),
        (None, None) => format!("{} delivered neither {first} nor {second}", s.name()),
    }
}

/// When `s` delivered `value` (ns), if it did.
fn delivered_at(s: &Sequence, value: u64) -> Option<u64> {
    s.deliveries.iter().find(|(v, _)| *v == value).map(|d| d.1)
}

/// What the report draws on the lifelines (`evidence.marks`): each of `values`'s
/// multicast at its sender and its deliveries at the node incarnations `at`.
fn marks(r: &Record, values: [u64; 2], at: &[&Sequence]) -> Value {
    let mut out = Vec::new();
    for v in values {
        if let Some(m) = r.by_value.get(&v).map(|i| &r.messages[*i]) {
            let label = format!("multicast {v}");
            out.push(json!({"node": m.sender, "time_ns": m.invoked, "label": label}));
        }
        for s in at {
            if let Some(p) = s.position(v) {
                let label = format!("delivered {v} (#{})", p + 1);
                out.push(json!({"node": s.node, "time_ns": s.deliveries[p].1, "label": label}));
            }
        }
    }
    Value::Array(out)
}

/// Integrity: no duplicates, nothing never multicast, reads agree with reports.
pub struct Integrity;

impl Checker for Integrity {
    fn name(&self) -> &'static str {
        "multicast-integrity"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let r = Record::build(input);
        if r.messages.is_empty() {
            return Verdict::unknown(self.name(), "no multicast was invoked", Value::Null);
        }
        let mut problems: Vec<Value> = Vec::new();
        for s in &r.sequences {
            let mut at: BTreeMap<u64, usize> = BTreeMap::new();
            for (pos, (value, time)) in s.deliveries.iter().enumerate() {
                if let Some(first) = at.insert(*value, pos) {
                    problems.push(json!({"node": s.name(), "value": value,
                        "what": format!("delivered twice, #{} and #{}", first + 1, pos + 1)}));
                }
                let sent = r.by_value.get(value).map(|i| r.messages[*i].outcome);
                if matches!(sent, None | Some(Outcome::Fail)) {
                    let what = match sent {
                        None => "delivered but never multicast",
                        _ => "delivered though its multicast failed (it surely never happened)",
                    };
                    problems.push(json!({"node": s.name(), "value": value, "what": what,
                        "time_ns": time, "faults": faults(input, 0, *time)}));
                }
            }
        }
        for (node, read) in &r.reads {
            let reported: Vec<u64> = r
                .sequences
                .iter()
                .rev()
                .find(|s| &s.node == node)
                .map(|s| s.deliveries.iter().map(|d| d.0).collect())
                .unwrap_or_default();
            if !reported.starts_with(read) {
                problems.push(json!({"node": node, "what": "its final read is not what it reported delivering",
                    "read": read, "reported": reported}));
            }
        }
        let Some(first) = problems.first() else {
            let n: usize = r.sequences.iter().map(|s| s.deliveries.len()).sum();
            return Verdict::valid(
                self.name(),
                format!(
                    "{n} deliveries at {} node incarnations: no duplicate, nothing never \
                     multicast, {} final reads agree with the reports",
                    r.sequences.len(),
                    r.reads.len()
                ),
            );
        };
        let reason = format!(
            "integrity violated: {} {}; {} problems in all",
            first["node"].as_str().unwrap_or("?"),
            first["what"].as_str().unwrap_or("?"),
            problems.len()
        );
        let evidence = json!({"property": "integrity", "first": first, "count": problems.len(),
            "problems": problems.iter().take(20).collect::<Vec<_>>()});
        Verdict::invalid(self.name(), reason, evidence)
    }
}

/// One delivery that came before a predecessor's.
struct Inversion {
    seq: usize,
    earlier: usize,
    later: usize,
}

/// Every delivery at a node incarnation of a message whose predecessor (by `rel`) it had
/// not delivered yet: the predecessor comes later (any incarnation) or never (a correct
/// node). Returns the first and how many.
fn inversions(r: &Record, rel: &Relation) -> (Option<Inversion>, usize) {
    let n = r.messages.len();
    let mut first = None;
    let mut count = 0;
    for (si, s) in r.sequences.iter().enumerate() {
        let here: BTreeMap<usize, usize> = s
            .deliveries
            .iter()
            .enumerate()
            .filter_map(|(p, (v, _))| r.by_value.get(v).map(|i| (*i, p)))
            .collect();
        let mut done = Bits::new(n);
        for (v, _) in &s.deliveries {
            let Some(&later) = r.by_value.get(v) else {
                continue;
            };
            let mut missing = rel[later].clone();
            while let Some(earlier) = missing.first_outside(&done) {
                missing.clear_one(earlier);
                if s.correct || here.contains_key(&earlier) {
                    count += 1;
                    first.get_or_insert(Inversion {
                        seq: si,
                        earlier,
                        later,
                    });
                    break;
                }
            }
            done.set(later);
        }
    }
    (first, count)
}

/// FIFO or causal order: every node delivers a message's predecessors before it.
pub struct Ordered {
    /// Causal (the closure over deliveries) rather than FIFO (the same sender only).
    pub causal: bool,
}

impl Ordered {
    fn property(&self) -> &'static str {
        if self.causal {
            "causal"
        } else {
            "fifo"
        }
    }

    /// Why m → m', in the harness's own terms.
    fn why(&self, r: &Record, m: usize, m2: usize, fifo: &Relation) -> String {
        let (a, b) = (&r.messages[m], &r.messages[m2]);
        if fifo[m2].get(m) {
            return format!(
                "both multicast by {}: {} was answered mcast_ok before {} was invoked",
                b.sender, a.value, b.value
            );
        }
        let direct = r
            .sequences
            .iter()
            .filter(|s| s.node == b.sender)
            .find_map(|s| delivered_at(s, a.value).filter(|t| *t < b.invoked));
        match direct {
            Some(t) => format!(
                "{} reported delivering {} at {:.3} ms, before {} was multicast there at {:.3} ms",
                b.sender,
                a.value,
                t as f64 / 1e6,
                b.value,
                b.invoked as f64 / 1e6
            ),
            None => format!(
                "{} → {} through a chain of multicasts and deliveries",
                a.value, b.value
            ),
        }
    }
}

impl Checker for Ordered {
    fn name(&self) -> &'static str {
        if self.causal {
            "multicast-causal"
        } else {
            "multicast-fifo"
        }
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let r = Record::build(input);
        let Some((fifo, causal)) = r.relations(input) else {
            return Verdict::unknown(
                self.name(),
                format!(
                    "{} multicasts: more than {} to relate",
                    r.messages.len(),
                    super::record::MESSAGES_MAX
                ),
                Value::Null,
            );
        };
        let rel = if self.causal { &causal } else { &fifo };
        let pairs: usize = (0..r.messages.len())
            .map(|i| (0..r.messages.len()).filter(|j| rel[i].get(*j)).count())
            .sum();
        let (first, count) = inversions(&r, rel);
        let Some(Inversion {
            seq,
            earlier,
            later,
        }) = first
        else {
            return Verdict::valid(
                self.name(),
                format!(
                    "{pairs} ordered pairs of {} multicasts, delivered in order at all {} node \
                     incarnations",
                    r.messages.len(),
                    r.sequences.len()
                ),
            );
        };
        let s = &r.sequences[seq];
        let (a, b) = (&r.messages[earlier], &r.messages[later]);
        let why = self.why(&r, earlier, later, &fifo);
        let senders: Vec<&Sequence> = r
            .sequences
            .iter()
            .filter(|t| t.node == b.sender && t.node != s.node)
            .collect();
        let at_sender: Vec<String> = senders.iter().map(|t| seen(t, a.value, b.value)).collect();
        let drawn = marks(&r, [a.value, b.value], &[&[s][..], &senders].concat());
        let until = delivered_at(s, b.value).unwrap_or(b.invoked);
        let faults = faults(input, a.invoked, until);
        let reason = format!(
            "{} order violated: {} must come before {} ({why}), but {}; faults active then: {}; \
             {count} such deliveries in all",
            self.property(),
            a.value,
            b.value,
            seen(s, b.value, a.value),
            described(&faults)
        );
        let evidence = json!({
            "property": self.property(),
            "node": s.name(),
            "earlier": r.message(earlier),
            "later": r.message(later),
            "why": why,
            "seen": seen(s, b.value, a.value),
            "at_sender": at_sender,
            "faults": faults,
            "count": count,
            "pair": [a.value, b.value],
            "marks": drawn,
        });
        Verdict::invalid(self.name(), reason, evidence)
    }
}

/// Total order: every two node incarnations deliver their common messages in one order,
/// and a correct node that delivered m' delivered everything a correct node delivered
/// before m'.
pub struct Total;

/// The first pair `(m, m')` that `a` delivers in the order m, m' while `b` delivers m'
/// and m later or, if both are correct, never.
fn total_clash(a: &Sequence, b: &Sequence, both_correct: bool) -> Option<(u64, u64)> {
    let in_b: BTreeMap<u64, usize> = b
        .deliveries
        .iter()
        .enumerate()
        .map(|(p, (v, _))| (*v, p))
        .collect();
    // The largest position at b of what a delivered so far, and that message.
    let mut max: Option<(usize, u64)> = None;
    for (v, _) in &a.deliveries {
        let Some(&p) = in_b.get(v) else { continue };
        if let Some((_, w)) = max.filter(|(q, _)| *q > p) {
            return Some((w, *v));
        }
        max = Some((p, *v));
    }
    if !both_correct {
        return None;
    }
    // m delivered at a before some m' that b delivered, and m never at b.
    let last_common = a
        .deliveries
        .iter()
        .rposition(|(v, _)| in_b.contains_key(v))?;
    let missing = a.deliveries[..last_common]
        .iter()
        .find(|(v, _)| !in_b.contains_key(v))?;
    Some((missing.0, a.deliveries[last_common].0))
}

impl Checker for Total {
    fn name(&self) -> &'static str {
        "multicast-total"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        let r = Record::build(input);
        let seqs = &r.sequences;
        let mut clashes = 0usize;
        let mut first = None;
        for i in 0..seqs.len() {
            for j in 0..seqs.len() {
                if i == j {
                    continue;
                }
                let both = seqs[i].correct && seqs[j].correct;
                if let Some(pair) = total_clash(&seqs[i], &seqs[j], both) {
                    clashes += 1;
                    first.get_or_insert((i, j, pair));
                }
            }
        }
        let Some((i, j, (m, m2))) = first else {
            return Verdict::valid(
                self.name(),
                format!(
                    "{} node incarnations deliver their common messages in one order",
                    seqs.len()
                ),
            );
        };
        let (a, b) = (&seqs[i], &seqs[j]);
        let invoked = |v: u64| r.by_value.get(&v).map_or(0, |k| r.messages[*k].invoked);
        let until = [delivered_at(a, m2), delivered_at(b, m2)]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0);
        let faults = faults(input, invoked(m).min(invoked(m2)), until);
        let orders = [seen(a, m, m2), seen(b, m2, m)];
        let reason = format!(
            "total order violated: {} but {}; faults active then: {}; {clashes} ordered pairs \
             of node incarnations disagree",
            orders[0],
            orders[1],
            described(&faults)
        );
        let message = |v: u64| {
            r.by_value
                .get(&v)
                .map_or(json!({"value": v}), |k| r.message(*k))
        };
        let evidence = json!({
            "property": "total",
            "nodes": [a.name(), b.name()],
            "first": message(m),
            "second": message(m2),
            "seen": orders,
            "faults": faults,
            "count": clashes,
            "pair": [m, m2],
            "marks": marks(&r, [m, m2], &[a, b]),
        });
        Verdict::invalid(self.name(), reason, evidence)
    }
}

/// Reliability: every correct node delivers what any correct node delivered (agreement),
/// and a correct node delivers every multicast it answered `mcast_ok` for (validity).
pub struct Reliable;

impl Checker for Reliable {
    fn name(&self) -> &'static str {
        "multicast-reliable"
    }

    fn check(&self, input: &CheckInput) -> Verdict {
        if input.quiet_from.is_none() {
            return Verdict::unknown(
                self.name(),
                "no quiet window: what every node delivered in the end was never seen",
                Value::Null,
            );
        }
        let r = Record::build(input);
        let end = input.quiet_from.unwrap_or(0);
        let at_correct: BTreeMap<&str, BTreeSet<u64>> = r
            .correct
            .iter()
            .map(|n| {
                let d = r.sequences.iter().filter(|s| &s.node == n);
                let values = d.flat_map(|s| s.deliveries.iter().map(|x| x.0)).collect();
                (n.as_str(), values)
            })
            .collect();
        // Validity first: a correct sender's acknowledged multicast it never delivered.
        let lost = r.messages.iter().enumerate().filter(|(_, m)| {
            m.outcome == Outcome::Ok
                && at_correct
                    .get(m.sender.as_str())
                    .is_some_and(|d| !d.contains(&m.value))
        });
        let lost: Vec<usize> = lost.map(|(i, _)| i).collect();
        if let Some(&i) = lost.first() {
            let m = &r.messages[i];
            let faults = faults(input, m.invoked, end);
            let reason = format!(
                "reliable validity violated: correct {} answered mcast_ok for {} and never \
                 delivered it; faults active then: {}; {} such multicasts",
                m.sender,
                m.value,
                described(&faults),
                lost.len()
            );
            let evidence = json!({"property": "reliable-validity", "message": r.message(i),
                "faults": faults, "count": lost.len()});
            return Verdict::invalid(self.name(), reason, evidence);
        }
        let mut partial: Vec<(u64, Vec<&str>, Vec<&str>)> = Vec::new();
        let mut all: Vec<u64> = at_correct.values().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        for v in all {
            let with = |yes: bool| -> Vec<&str> {
                at_correct
                    .iter()
                    .filter(|(_, d)| d.contains(&v) == yes)
                    .map(|(n, _)| *n)
                    .collect()
            };
            let (has, lacks) = (with(true), with(false));
            if !lacks.is_empty() {
                partial.push((v, has, lacks));
            }
        }
        let Some((v, has, lacks)) = partial.first() else {
            return Verdict::valid(
                self.name(),
                format!(
                    "all {} correct nodes delivered the same set, and every acknowledged \
                     multicast of a correct node",
                    at_correct.len()
                ),
            );
        };
        let invoked = r.by_value.get(v).map_or(0, |k| r.messages[*k].invoked);
        let faults = faults(input, invoked, end);
        let reason = format!(
            "reliable agreement violated: {v} was delivered by correct {} but never by correct \
             {}; faults active then: {}; {} messages delivered by some correct nodes only",
            has.join(", "),
            lacks.join(", "),
            described(&faults),
            partial.len()
        );
        let message = r
            .by_value
            .get(v)
            .map_or(json!({"value": v}), |k| r.message(*k));
        let evidence = json!({"property": "reliable-agreement", "message": message,
            "delivered_by": has, "missing_at": lacks, "faults": faults, "count": partial.len()});
        Verdict::invalid(self.name(), reason, evidence)
    }
}
