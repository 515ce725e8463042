//! Partition shapes: which directed links a partition cuts.
//!
//! Each shape has a deterministic form that takes the node order explicitly (what the
//! tests pin down) and a random form, [`Shape::cut`], that shuffles the nodes with the
//! RNG passed in. Shapes follow Jepsen's nemeses (random halves, isolate one node,
//! majorities ring, bridge) plus one-way partitions and FoundationDB's swizzle-clog.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::Rng;

use super::Link;

/// A partition shape the expander can draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shape {
    /// Two random halves (the smaller has `⌊N/2⌋` nodes) that cannot talk.
    Halves,
    /// One random node cut off from all others, both ways.
    Isolate,
    /// Nodes on a random ring; each hears only the majority centred on itself.
    MajoritiesRing,
    /// Two halves that cannot talk, plus one node that talks to both.
    Bridge,
    /// A random set of up to `⌊N/2⌋` nodes cannot send to the others but still receives.
    OneWay,
}

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 5] = [
        Shape::Halves,
        Shape::Isolate,
        Shape::MajoritiesRing,
        Shape::Bridge,
        Shape::OneWay,
    ];

    /// Draws this shape over `nodes`: a label for humans and the links to cut.
    pub fn cut<R: Rng>(self, nodes: &[String], rng: &mut R) -> (String, BTreeSet<Link>) {
        let mut order = nodes.to_vec();
        order.shuffle(rng);
        let n = order.len();
        match self {
            Shape::Halves => {
                let (a, b) = order.split_at(n / 2);
                (
                    format!("halves {} | {}", a.join(" "), b.join(" ")),
                    between(a, b),
                )
            }
            Shape::Isolate => match order.first() {
                Some(node) => (format!("isolate {node}"), isolate(nodes, node)),
                None => ("isolate".to_string(), BTreeSet::new()),
            },
            Shape::MajoritiesRing => (
                format!("majorities-ring {}", order.join(" ")),
                majorities_ring(&order),
            ),
            Shape::Bridge => {
                let label = match order.get(n / 2) {
                    Some(b) => {
                        let (a, c) = (order[..n / 2].join(" "), order[n / 2 + 1..].join(" "));
                        format!("bridge {a} | {b} | {c}")
                    }
                    None => "bridge".to_string(),
                };
                (label, bridge(&order))
            }
            Shape::OneWay => {
                let k = rng.gen_range(1..=(n / 2).max(1)).min(n);
                let senders: BTreeSet<String> = order[..k].iter().cloned().collect();
                let label = format!("one-way {} cannot send", order[..k].join(" "));
                (label, one_way(nodes, &senders))
            }
        }
    }
}

/// Every link between group `a` and group `b`, both directions.
pub fn between(a: &[String], b: &[String]) -> BTreeSet<Link> {
    let mut cut = BTreeSet::new();
    for x in a {
        for y in b {
            cut.insert((x.clone(), y.clone()));
            cut.insert((y.clone(), x.clone()));
        }
    }
    cut
}

/// `node` cut off from every other node, both ways.
pub fn isolate(nodes: &[String], node: &str) -> BTreeSet<Link> {
    let others: Vec<String> = nodes.iter().filter(|n| *n != node).cloned().collect();
    between(&[node.to_string()], &others)
}

/// Every link into and out of `node`: what a clog holds.
pub fn clog_links(nodes: &[String], node: &str) -> BTreeSet<Link> {
    isolate(nodes, node)
}

/// Jepsen's majorities ring over `ring` (in ring order): with `m = ⌊N/2⌋ + 1`, the node
/// at position `p` hears only from the window of `m` nodes starting at `p - ⌊m/2⌋`, so
/// every node hears a majority and, for `N ≥ 3`, no two hear the same one.
pub fn majorities_ring(ring: &[String]) -> BTreeSet<Link> {
    let n = ring.len();
    let m = n / 2 + 1;
    let mut cut = BTreeSet::new();
    for (p, node) in ring.iter().enumerate() {
        let start = p + n - m / 2;
        let window: BTreeSet<usize> = (0..m).map(|i| (start + i) % n).collect();
        for (q, other) in ring.iter().enumerate() {
            if !window.contains(&q) {
                cut.insert((other.clone(), node.clone()));
            }
        }
    }
    cut
}

/// Halves `order[..N/2]` and `order[N/2 + 1..]` cut apart; `order[N/2]` talks to both.
pub fn bridge(order: &[String]) -> BTreeSet<Link> {
    let n = order.len();
    if n < 3 {
        return BTreeSet::new();
    }
    between(&order[..n / 2], &order[n / 2 + 1..])
}

/// `senders` cannot send to the other nodes; everything else flows.
pub fn one_way(nodes: &[String], senders: &BTreeSet<String>) -> BTreeSet<Link> {
    let mut cut = BTreeSet::new();
    for s in nodes.iter().filter(|n| senders.contains(*n)) {
        for r in nodes.iter().filter(|n| !senders.contains(*n)) {
            cut.insert((s.clone(), r.clone()));
        }
    }
    cut
}

/// FoundationDB's swizzle-clog orders: `count` random nodes in the order to clog them,
/// and the same nodes in the order to unclog them, which differs when `count ≥ 2`.
pub fn swizzle_orders<R: Rng>(
    nodes: &[String],
    count: usize,
    rng: &mut R,
) -> (Vec<String>, Vec<String>) {
    let mut clog = nodes.to_vec();
    clog.shuffle(rng);
    clog.truncate(count);
    let mut unclog = clog.clone();
    unclog.shuffle(rng);
    if unclog.len() >= 2 && unclog == clog {
        unclog.rotate_left(1);
    }
    (clog, unclog)
}

/// Who can send to whom under `cut`: each node maps to the nodes it reaches (itself
/// included).
pub fn reachability(nodes: &[String], cut: &BTreeSet<Link>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for src in nodes {
        let reach = nodes
            .iter()
            .filter(|dest| !cut.contains(&(src.clone(), (*dest).clone())))
            .cloned()
            .collect();
        out.insert(src.clone(), reach);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// Renders who reaches whom, one sender per line, and compares.
    fn check(n: usize, cut: &BTreeSet<Link>, want: &str) {
        let got: Vec<String> = reachability(&nodes(n), cut)
            .into_iter()
            .map(|(src, reach)| {
                format!(
                    "{src} -> {}",
                    reach.into_iter().collect::<Vec<_>>().join(" ")
                )
            })
            .collect();
        assert_eq!(got.join("\n"), want.trim(), "cut: {cut:?}");
    }

    #[test]
    fn matrix_of_halves() {
        let order = nodes(5);
        let cut = between(&order[..2], &order[2..]);
        check(
            5,
            &cut,
            "
n1 -> n1 n2
n2 -> n1 n2
n3 -> n3 n4 n5
n4 -> n3 n4 n5
n5 -> n3 n4 n5",
        );
    }

    #[test]
    fn matrix_of_isolate() {
        check(
            4,
            &isolate(&nodes(4), "n2"),
            "
n1 -> n1 n3 n4
n2 -> n2
n3 -> n1 n3 n4
n4 -> n1 n3 n4",
        );
        assert_eq!(clog_links(&nodes(4), "n2"), isolate(&nodes(4), "n2"));
    }

    #[test]
    fn matrix_of_majorities_ring() {
        // Ring n1..n5: n3 hears n2 n3 n4, so only n2 and n4 reach n3; and so on round.
        check(
            5,
            &majorities_ring(&nodes(5)),
            "
n1 -> n1 n2 n5
n2 -> n1 n2 n3
n3 -> n2 n3 n4
n4 -> n3 n4 n5
n5 -> n1 n4 n5",
        );
    }

    #[test]
    fn matrix_of_bridge() {
        check(
            5,
            &bridge(&nodes(5)),
            "
n1 -> n1 n2 n3
n2 -> n1 n2 n3
n3 -> n1 n2 n3 n4 n5
n4 -> n3 n4 n5
n5 -> n3 n4 n5",
        );
    }

    #[test]
    fn matrix_of_one_way() {
        let senders = BTreeSet::from(["n1".to_string()]);
        check(
            3,
            &one_way(&nodes(3), &senders),
            "
n1 -> n1
n2 -> n1 n2 n3
n3 -> n1 n2 n3",
        );
    }

    /// Who hears `node`'s senders: the inverse of reachability.
    fn hears(n: usize, cut: &BTreeSet<Link>) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (src, reach) in reachability(&nodes(n), cut) {
            for dest in reach {
                out.entry(dest).or_default().insert(src.clone());
            }
        }
        out
    }

    #[test]
    fn random_shapes_keep_their_invariants() {
        for n in 3..=9 {
            for seed in 0..50 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let all = nodes(n);
                for shape in Shape::ALL {
                    let (label, cut) = shape.cut(&all, &mut rng);
                    assert!(!cut.is_empty(), "{label}");
                    assert!(cut
                        .iter()
                        .all(|(a, b)| a != b && all.contains(a) && all.contains(b)));
                    let reach = reachability(&all, &cut);
                    let sizes: Vec<usize> = reach.values().map(BTreeSet::len).collect();
                    match shape {
                        Shape::Halves => {
                            let mut sorted = sizes.clone();
                            sorted.sort_unstable();
                            let mut want = vec![n / 2; n / 2];
                            want.extend(vec![n - n / 2; n - n / 2]);
                            assert_eq!(sorted, want, "{label}");
                            assert_eq!(cut.len(), 2 * (n / 2) * (n - n / 2));
                        }
                        Shape::Isolate => {
                            assert_eq!(sizes.iter().filter(|&&s| s == 1).count(), 1, "{label}");
                            assert_eq!(cut.len(), 2 * (n - 1));
                        }
                        Shape::MajoritiesRing => {
                            let views = hears(n, &cut);
                            assert!(views.values().all(|v| v.len() == n / 2 + 1), "{label}");
                            let distinct: BTreeSet<_> = views.values().collect();
                            assert_eq!(distinct.len(), n, "{label}: views must differ");
                        }
                        Shape::Bridge => {
                            assert_eq!(sizes.iter().filter(|&&s| s == n).count(), 1, "{label}");
                            assert!(sizes.iter().all(|&s| s >= n / 2), "{label}");
                        }
                        Shape::OneWay => {
                            let cut_off = sizes.iter().filter(|&&s| s < n).count();
                            assert!((1..=n / 2).contains(&cut_off), "{label}");
                            assert!(sizes.iter().all(|&s| s == n || s == cut_off), "{label}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn swizzle_unclogs_in_another_order() {
        let all = nodes(5);
        for seed in 0..100 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (clog, unclog) = swizzle_orders(&all, 3, &mut rng);
            assert_eq!(clog.len(), 3);
            assert_ne!(clog, unclog);
            let (a, b): (BTreeSet<_>, BTreeSet<_>) =
                (clog.iter().collect(), unclog.iter().collect());
            assert_eq!(a, b);
        }
    }
}
