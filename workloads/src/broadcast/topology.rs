//! Maelstrom's broadcast topologies: who each node is told to talk to.
//!
//! - `grid`: nodes laid out row by row in a square of side ⌈√n⌉; each node's
//!   neighbours are the ones left, right, above and below it (Maelstrom's default).
//! - `line`: each node talks to the one before and the one after it.
//! - `total`: everyone talks to everyone else.
//! - `tree2`, `tree3`, `tree4`: a tree with that many children per node, in node order
//!   (node i's parent is (i-1)/k); each node talks to its parent and its children.
//!
//! Every topology is symmetric and connected, so a message gossiped along it reaches
//! every node.

use std::collections::BTreeMap;

/// The topology when none is named (as in Maelstrom).
pub const TOPOLOGY_DEFAULT: &str = "grid";
/// Every topology name [`topology`] knows, for `squall list` and usage errors.
pub const TOPOLOGIES: &[&str] = &["grid", "line", "total", "tree2", "tree3", "tree4"];

/// The neighbours of every node of `nodes` under topology `name`; `None` for an unknown
/// name.
pub fn topology(name: &str, nodes: &[String]) -> Option<BTreeMap<String, Vec<String>>> {
    let n = nodes.len();
    let edges: Vec<Vec<usize>> = match name {
        "grid" => {
            let side = (1..=n).find(|s| s * s >= n).unwrap_or(1);
            (0..n)
                .map(|i| {
                    let (row, col) = (i / side, i % side);
                    let mut out = Vec::new();
                    if row > 0 {
                        out.push(i - side);
                    }
                    if col > 0 {
                        out.push(i - 1);
                    }
                    if col + 1 < side && i + 1 < n {
                        out.push(i + 1);
                    }
                    if i + side < n {
                        out.push(i + side);
                    }
                    out
                })
                .collect()
        }
        "line" => (0..n)
            .map(|i| {
                let mut out = Vec::new();
                if i > 0 {
                    out.push(i - 1);
                }
                if i + 1 < n {
                    out.push(i + 1);
                }
                out
            })
            .collect(),
        "total" => (0..n)
            .map(|i| (0..n).filter(|&j| j != i).collect())
            .collect(),
        "tree2" | "tree3" | "tree4" => {
            let k: usize = name[4..].parse().expect("tree arity is a digit");
            (0..n)
                .map(|i| {
                    let mut out = Vec::new();
                    if i > 0 {
                        out.push((i - 1) / k);
                    }
                    out.extend((k * i + 1..=k * i + k).filter(|&c| c < n));
                    out
                })
                .collect()
        }
        _ => return None,
    };
    Some(
        edges
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                (
                    nodes[i].clone(),
                    e.into_iter().map(|j| nodes[j].clone()).collect(),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("n{i}")).collect()
    }

    /// Every topology is symmetric and connected, for every size up to 30.
    #[test]
    fn topologies_are_symmetric_and_connected() {
        for name in TOPOLOGIES {
            for n in 1..=30 {
                let nodes = ids(n);
                let t = topology(name, &nodes).expect("known");
                assert_eq!(t.len(), n);
                for (a, ns) in &t {
                    for b in ns {
                        assert!(t[b].contains(a), "{name} n={n}: {a}->{b} not symmetric");
                        assert_ne!(a, b);
                    }
                }
                let mut seen = std::collections::BTreeSet::from([nodes[0].clone()]);
                let mut stack = vec![nodes[0].clone()];
                while let Some(a) = stack.pop() {
                    for b in &t[&a] {
                        if seen.insert(b.clone()) {
                            stack.push(b.clone());
                        }
                    }
                }
                assert_eq!(seen.len(), n, "{name} n={n} not connected");
            }
        }
        assert!(topology("ring", &ids(3)).is_none());
    }

    #[test]
    fn grid_of_five_and_tree2_of_five() {
        let g = topology("grid", &ids(5)).unwrap();
        // 3x3 grid, row by row: n0 n1 n2 / n3 n4.
        assert_eq!(g["n0"], vec!["n1", "n3"]);
        assert_eq!(g["n4"], vec!["n1", "n3"]);
        let t = topology("tree2", &ids(5)).unwrap();
        assert_eq!(t["n0"], vec!["n1", "n2"]);
        assert_eq!(t["n1"], vec!["n0", "n3", "n4"]);
    }
}
