//! The story of a wrong snapshot, for the verdict and the report: each node's recorded
//! state, the transfers that crossed the cut the wrong way, and the lifeline marks that
//! place the recording points and those transfers in time.

use super::*;

/// Transfers of crossing kinds listed at most per snapshot.
pub const CROSSED_MAX: usize = 32;

/// The transfers that crossed the cut the wrong way, in link order:
/// - `twice`: applied by the receiver before it recorded, or recorded on the channel,
///   yet sent by the sender after it recorded (numbered above what the sender had
///   sent): the sender's balance counts the money too;
/// - `lost`: sent before the sender recorded, yet neither applied by the receiver before
///   it recorded nor on the channel's record: nobody counts it. Which numbers is exact on
///   a link that kept order (the highest not listed); on a reordered link they are the
///   likeliest ones.
pub(super) fn crossed(p: &Pieces, made: &MadeMap) -> Vec<Value> {
    let mut out = Vec::new();
    for ((from, to), chan) in &p.channels {
        let sent = p.locals[from].sent.get(to).copied().unwrap_or(0);
        let local_to = &p.locals[to];
        let received = local_to.received.get(from).copied().unwrap_or(0);
        let received_max = local_to.received_max.get(from).copied().unwrap_or(0);
        let mut push = |seq: u64, how: &str, why: String| {
            let m = made.get(&(from.clone(), to.clone(), seq));
            out.push(json!({
                "link": format!("{from}->{to}"),
                "from": from,
                "to": to,
                "seq": seq,
                "amount": m.map(|m| m.amount),
                "sent_ns": m.map(|m| m.at),
                "how": how,
                "why": why,
            }));
        };
        for seq in (sent + 1..=received_max).take(CROSSED_MAX) {
            let why = format!(
                "{to} applied it before recording; {from} sent it after recording (it had \
                 sent {sent})"
            );
            push(seq, "twice", why);
        }
        for seq in chan.seqs.iter().filter(|s| **s > sent).take(CROSSED_MAX) {
            let why = format!(
                "recorded on the channel, but {from} sent it after recording (it had sent \
                 {sent}): it overtook {from}'s marker, so {from}'s balance counts it too"
            );
            push(*seq, "twice", why);
        }
        let missing = sent.saturating_sub(received).saturating_sub(chan.count);
        let unlisted = (1..=sent).rev().filter(|s| !chan.seqs.contains(s));
        for seq in unlisted.take(missing.min(CROSSED_MAX as u64) as usize) {
            let why = format!(
                "{from} sent it before recording; {to} had not applied it when it recorded \
                 and the channel's record does not hold it"
            );
            push(seq, "lost", why);
        }
    }
    out.sort_by_key(|c| c["sent_ns"].as_u64().unwrap_or(u64::MAX));
    out.truncate(CROSSED_MAX);
    out
}

/// Each node's recorded state, as the report's table shows it.
pub(super) fn nodes(p: &Pieces) -> Value {
    let nodes: serde_json::Map<String, Value> = p
        .locals
        .iter()
        .map(|(n, l)| {
            let v = json!({
                "balance": l.balance,
                "sent": l.sent,
                "received": l.received,
                "recorded_ns": p.recorded_at.get(n),
            });
            (n.clone(), v)
        })
        .collect();
    Value::Object(nodes)
}

/// Lifeline marks: each node's recording point and each crossing transfer's send.
pub(super) fn marks(p: &Pieces, crossed: &[Value]) -> Vec<Value> {
    let mut marks: Vec<Value> = p
        .recorded_at
        .iter()
        .map(|(n, at)| {
            let balance = p.locals.get(n).map_or(0, |l| l.balance);
            json!({"time_ns": at, "node": n, "label": format!("records {balance}")})
        })
        .collect();
    for c in crossed {
        let (Some(at), Some(from)) = (c["sent_ns"].as_u64(), c["from"].as_str()) else {
            continue;
        };
        let label = format!(
            "sends #{} {} to {} ({})",
            c["seq"],
            c["amount"],
            c["to"].as_str().unwrap_or("?"),
            c["how"].as_str().unwrap_or("?")
        );
        marks.push(json!({"time_ns": at, "node": from, "label": label}));
    }
    marks
}
