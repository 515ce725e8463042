//! A string object (one key of Porcupine's kv model), initially "".
//!
//! `get` must return the current string, `put` replaces it, `append` concatenates.
//!
//! States are `Copy` ids in a trie of appends: node `(parent, suffix)` is the parent's
//! string followed by the interned value `suffix`, and `put(v)` is the child `(root, v)`.
//! Building a state therefore never copies text. Each node carries its length and a
//! polynomial hash of its text; `get` compares length and hash, then confirms by
//! walking the chain once per node (the node remembers the text it spells), so a hash
//! collision never makes an illegal `get` legal. Two different trie paths can spell
//! the same text (`"a"+"bc"` and `"ab"+"c"`): they are different states, which costs
//! memo hits, never correctness. Texts live back to back in one arena, interned by
//! their polynomial hash; a node's first children are a sibling list, later ones a
//! hash map.
//!
//! Appends only extend the string, so from a state that is not a prefix of what a
//! `get` returned, only a `put` can make that `get` legal ([`Model::may_become_legal`]),
//! and only a put of a prefix of that value ([`Model::may_rescue`]).
//!
//! **Unread strings are one state.** Once [`Model::prepare`] has seen the partition,
//! every string that is not a prefix of any value a `get` of the partition returned is
//! the single state `JUNK`. *Soundness:* such strings are bisimilar for every op of
//! the partition: a `get` is illegal in all of them (its value does not even start
//! with them), an `append` leads from one to another (a string that is no prefix of a
//! value stays none when extended), and a `put` leads to the same state from all of
//! them. Merging them is therefore exact, like [`crate::model::Observed`] for integers:
//! a history has a linearization iff it has one in the merged model. *Effect:* crashed
//! appends and puts that nobody reads, tried in every order ahead of a put that
//! overwrites them, used to make a distinct string per order; they now make one state,
//! so the memo and the "optional op that changes nothing" rule cut them off. Each node
//! keeps the range of sorted read values its text is a prefix of, narrowed by binary
//! search when a child is made; an empty range is `JUNK`.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::history::{Input, Op, Outcome, Value};
use crate::model::{Model, ModelError};
use crate::search::memo::FxHasher;

const NAME: &str = "kv-strings";
const BASE: u64 = 0x100_0000_01b3;
const ROOT: u32 = 0;
/// Every string that is not a prefix of any value a get of the partition returned
/// (see the module docs).
const JUNK: u32 = 1;
const ROOT_NODE: Node = Node {
    parent: ROOT,
    suffix: NO_TEXT,
    len: 0,
    spells: NO_TEXT,
    hash: 0,
    first_child: NO_NODE,
    next_sibling: NO_NODE,
    lo: 0,
    hi: u32::MAX,
};
/// `JUNK`'s length matches no text, so no get is legal there and none becomes legal
/// by appends (`prefix_hash` is `None` past a text's end).
const JUNK_NODE: Node = Node {
    parent: ROOT,
    suffix: NO_TEXT,
    len: u32::MAX,
    spells: NO_TEXT,
    hash: 0,
    first_child: NO_NODE,
    next_sibling: NO_NODE,
    lo: 0,
    hi: 0,
};

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[derive(Debug, Clone, Copy)]
struct Text {
    /// The text is `arena[at..at + len]`.
    at: u32,
    len: u32,
    hash: u64,
    /// `BASE^len`.
    pow: u64,
    /// Hashes of every prefix are `prefixes[..len + 1]` from here, computed the first
    /// time a dead-read test needs them; `NO_TEXT` before.
    prefixes_at: u32,
    /// The next interned text with the same hash, or `NO_TEXT`.
    same_hash: u32,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    parent: u32,
    suffix: u32,
    len: u32,
    /// The interned text this node was verified to spell, or `NO_TEXT`. Texts are
    /// interned by content, so a node spells at most one of them.
    spells: u32,
    hash: u64,
    /// The first of this node's first `SIBLINGS_MAX` children, linked through
    /// `next_sibling` (`NO_NODE` ends); later children are in `KvStrings::children`.
    first_child: u32,
    next_sibling: u32,
    /// The values read (`KvStrings::reads`, sorted) that this node's text is a prefix
    /// of are `reads[lo..hi]`; never empty (a node with none is `JUNK`).
    lo: u32,
    hi: u32,
}

const NO_TEXT: u32 = u32::MAX;
const NO_NODE: u32 = u32::MAX;
/// Children of a node kept in its sibling list; more go to a hash map.
const SIBLINGS_MAX: usize = 8;

/// The string model of one key.
#[derive(Debug, Clone)]
pub struct KvStrings {
    /// Every interned text, back to back (each one whole UTF-8).
    arena: Vec<u8>,
    texts: Vec<Text>,
    /// The first interned text with each hash (others chain through `same_hash`).
    text_ids: FxMap<u64, u32>,
    /// Prefix hashes of the texts that needed them.
    prefixes: Vec<u64>,
    nodes: Vec<Node>,
    /// Children past a node's first `SIBLINGS_MAX`, by (parent, suffix).
    children: FxMap<(u32, u32), u32>,
    /// Every value a get of the partition returned, sorted by bytes, without repeats;
    /// `None` until [`Model::prepare`] learned them (then no state is `JUNK`).
    reads: Option<Vec<u32>>,
    /// The read values [`Model::prepare`] interned, in its order, and how many
    /// `convert` has used: `convert` usually sees the same ops in the same order and
    /// then only confirms the text instead of hashing it again.
    read_ids: Vec<u32>,
    read_ids_used: usize,
}

impl Default for KvStrings {
    fn default() -> Self {
        KvStrings::new()
    }
}

fn poly(text: &str) -> (u64, u64) {
    text.bytes().fold((0u64, 1u64), |(h, p), b| {
        (
            h.wrapping_mul(BASE).wrapping_add(u64::from(b) + 1),
            p.wrapping_mul(BASE),
        )
    })
}

impl KvStrings {
    /// A model whose only state is "".
    pub fn new() -> Self {
        KvStrings {
            arena: Vec::new(),
            texts: Vec::new(),
            text_ids: FxMap::default(),
            prefixes: Vec::new(),
            nodes: vec![ROOT_NODE, JUNK_NODE],
            children: FxMap::default(),
            reads: None,
            read_ids: Vec::new(),
            read_ids_used: 0,
        }
    }

    #[inline]
    fn text(&self, v: u32) -> &[u8] {
        let t = &self.texts[v as usize];
        &self.arena[t.at as usize..(t.at + t.len) as usize]
    }

    fn intern(&mut self, op: &Op, v: &Value) -> Result<u32, ModelError> {
        let text = match v {
            Value::Nil => "",
            Value::Str(s) => s.as_str(),
            Value::Int(_) => return Err(ModelError::new(NAME, op, "values must be strings")),
        };
        let (hash, pow) = poly(text);
        let first = self.text_ids.get(&hash).copied().unwrap_or(NO_TEXT);
        let mut at = first;
        while at != NO_TEXT {
            if self.text(at) == text.as_bytes() {
                return Ok(at);
            }
            at = self.texts[at as usize].same_hash;
        }
        let id = u32::try_from(self.texts.len()).expect("fewer than 2^32 values");
        let start = u32::try_from(self.arena.len()).expect("texts fit 4 GiB");
        assert!(
            start as usize + text.len() <= u32::MAX as usize,
            "texts fit 4 GiB"
        );
        self.arena.extend_from_slice(text.as_bytes());
        self.texts.push(Text {
            at: start,
            len: text.len() as u32,
            hash,
            pow,
            prefixes_at: NO_TEXT,
            same_hash: first,
        });
        self.text_ids.insert(hash, id);
        Ok(id)
    }

    /// `intern` for a read value, using the id [`Model::prepare`] found for the next
    /// read when its text is the same.
    fn intern_read(&mut self, op: &Op, v: &Value) -> Result<u32, ModelError> {
        let text = match v {
            Value::Nil => Some(""),
            Value::Str(s) => Some(s.as_str()),
            Value::Int(_) => None,
        };
        if let (Some(&id), Some(text)) = (self.read_ids.get(self.read_ids_used), text) {
            if self.text(id) == text.as_bytes() {
                self.read_ids_used += 1;
                return Ok(id);
            }
        }
        self.intern(op, v)
    }

    /// The hash of the first `len` bytes of text `v` (`None` past its end); every
    /// prefix hash of `v` is computed once.
    fn prefix_hash(&mut self, v: u32, len: u32) -> Option<u64> {
        let t = self.texts[v as usize];
        if len > t.len {
            return None;
        }
        let at = if t.prefixes_at == NO_TEXT {
            let at = self.prefixes.len();
            let bytes = &self.arena[t.at as usize..(t.at + t.len) as usize];
            self.prefixes.reserve(bytes.len() + 1);
            self.prefixes.push(0);
            let mut h = 0u64;
            self.prefixes.extend(bytes.iter().map(|&b| {
                h = h.wrapping_mul(BASE).wrapping_add(u64::from(b) + 1);
                h
            }));
            let at = u32::try_from(at).expect("prefix hashes fit u32");
            self.texts[v as usize].prefixes_at = at;
            at
        } else {
            t.prefixes_at
        };
        Some(self.prefixes[(at + len) as usize])
    }

    fn child(&mut self, parent: u32, suffix: u32) -> u32 {
        let t = self.texts[suffix as usize];
        if t.len == 0 || parent == JUNK {
            return parent;
        }
        let mut c = self.nodes[parent as usize].first_child;
        let mut siblings = 0;
        while c != NO_NODE {
            let n = &self.nodes[c as usize];
            if n.suffix == suffix {
                return c;
            }
            siblings += 1;
            c = n.next_sibling;
        }
        if siblings == SIBLINGS_MAX {
            if let Some(&c) = self.children.get(&(parent, suffix)) {
                return c;
            }
        }
        let p = self.nodes[parent as usize];
        let (lo, hi) = self.narrow(p, suffix);
        if lo == hi {
            return JUNK;
        }
        let id = u32::try_from(self.nodes.len()).expect("fewer than 2^32 states");
        let listed = siblings < SIBLINGS_MAX;
        self.nodes.push(Node {
            parent,
            suffix,
            len: p.len + t.len,
            spells: NO_TEXT,
            hash: p.hash.wrapping_mul(t.pow).wrapping_add(t.hash),
            first_child: NO_NODE,
            next_sibling: if listed { p.first_child } else { NO_NODE },
            lo,
            hi,
        });
        if listed {
            self.nodes[parent as usize].first_child = id;
        } else {
            self.children.insert((parent, suffix), id);
        }
        id
    }

    /// The values read that start with `p`'s text followed by text `suffix`: a
    /// sub-range of `p`'s (values sharing a prefix are contiguous in sorted order, and
    /// among them those that continue with `suffix` are too). Everything before
    /// [`Model::prepare`].
    fn narrow(&self, p: Node, suffix: u32) -> (u32, u32) {
        let Some(reads) = &self.reads else {
            return (0, u32::MAX);
        };
        let hi = (p.hi as usize).min(reads.len());
        let range = &reads[p.lo as usize..hi];
        let a = self.text(suffix);
        let rest = |v: u32| self.text(v).get(p.len as usize..).unwrap_or(&[]);
        if range.len() <= 8 {
            let Some(lo) = range.iter().position(|&v| rest(v).starts_with(a)) else {
                return (0, 0);
            };
            let len = range[lo..]
                .iter()
                .take_while(|&&v| rest(v).starts_with(a))
                .count();
            return (p.lo + lo as u32, p.lo + (lo + len) as u32);
        }
        let lo = range.partition_point(|&v| rest(v) < a);
        let len = range[lo..].partition_point(|&v| rest(v).starts_with(a));
        (p.lo + lo as u32, p.lo + (lo + len) as u32)
    }

    /// Whether node `s` spells exactly text `v`.
    fn spells(&mut self, s: u32, v: u32) -> bool {
        let (node, t) = (self.nodes[s as usize], self.texts[v as usize]);
        if node.len != t.len || node.hash != t.hash {
            return false;
        }
        if node.spells != NO_TEXT {
            // Interned texts differ in content: a node spells at most one.
            return node.spells == v;
        }
        let expected = self.text(v);
        let mut end = expected.len();
        let mut at = s;
        while at != ROOT {
            let n = self.nodes[at as usize];
            let piece = self.text(n.suffix);
            if !expected[..end].ends_with(piece) {
                // A hash collision: not cached, it is too rare to matter.
                return false;
            }
            end -= piece.len();
            at = n.parent;
        }
        self.nodes[s as usize].spells = v;
        true
    }

    fn text_of(&self, s: u32) -> String {
        let mut pieces = Vec::new();
        let mut at = s;
        while at != ROOT {
            let n = self.nodes[at as usize];
            pieces.push(self.text(n.suffix));
            at = n.parent;
        }
        pieces.reverse();
        String::from_utf8_lossy(&pieces.concat()).into_owned()
    }
}

/// A string op with its observed output (value ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KvStringsOp {
    /// A get that returned this value (`None`: unknown).
    Get(Option<u32>),
    /// A put.
    Put(u32),
    /// An append.
    Append(u32),
}

impl Model for KvStrings {
    type State = u32;
    type Op = KvStringsOp;

    fn init(&self) -> u32 {
        ROOT
    }

    fn prepare(&mut self, ops: &[&Op]) {
        let bytes: usize = ops
            .iter()
            .map(|op| match (&op.input, &op.outcome) {
                (Input::Read, Outcome::Ok(Value::Str(v))) => v.len(),
                (Input::Write { value } | Input::Append { value }, _) => match value {
                    Value::Str(v) => v.len(),
                    _ => 0,
                },
                _ => 0,
            })
            .sum();
        self.arena.reserve(bytes);
        self.texts.reserve(ops.len());
        self.text_ids.reserve(ops.len());
        let read_ids: Vec<u32> = ops
            .iter()
            .filter_map(|op| match (&op.input, &op.outcome) {
                // A value that is not a string fails in `convert`.
                (Input::Read, Outcome::Ok(v)) => self.intern(op, v).ok(),
                _ => None,
            })
            .collect();
        let mut reads = read_ids.clone();
        reads.sort_unstable();
        reads.dedup();
        reads.sort_unstable_by(|&a, &b| self.text(a).cmp(self.text(b)));
        self.reads = Some(reads);
        self.read_ids = read_ids;
        self.read_ids_used = 0;
    }

    fn convert(&mut self, op: &Op) -> Result<KvStringsOp, ModelError> {
        Ok(match (&op.input, &op.outcome) {
            (Input::Read, Outcome::Ok(v)) => KvStringsOp::Get(Some(self.intern_read(op, v)?)),
            (Input::Read, Outcome::Info) => KvStringsOp::Get(None),
            (Input::Write { value }, Outcome::Ok(_) | Outcome::Info) => {
                KvStringsOp::Put(self.intern(op, value)?)
            }
            (Input::Append { value }, Outcome::Ok(_) | Outcome::Info) => {
                KvStringsOp::Append(self.intern(op, value)?)
            }
            _ => return Err(ModelError::new(NAME, op, "unsupported function")),
        })
    }

    #[inline]
    fn step(&mut self, state: u32, op: &KvStringsOp) -> Option<u32> {
        match *op {
            KvStringsOp::Get(None) => Some(state),
            KvStringsOp::Get(Some(v)) => self.spells(state, v).then_some(state),
            KvStringsOp::Put(v) => Some(self.child(ROOT, v)),
            KvStringsOp::Append(v) => Some(self.child(state, v)),
        }
    }

    #[inline]
    fn read_only(&self, op: &KvStringsOp) -> bool {
        matches!(op, KvStringsOp::Get(_))
    }

    #[inline]
    fn blind(&self, op: &KvStringsOp) -> bool {
        matches!(op, KvStringsOp::Put(_))
    }

    #[inline]
    fn monotone(&self, op: &KvStringsOp) -> bool {
        !matches!(op, KvStringsOp::Put(_))
    }

    #[inline]
    fn may_become_legal(&mut self, state: u32, op: &KvStringsOp) -> bool {
        let KvStringsOp::Get(Some(v)) = *op else {
            return true;
        };
        let node = self.nodes[state as usize];
        // A hash mismatch proves the state is not a prefix; a match may be a collision,
        // which only forgoes pruning.
        self.prefix_hash(v, node.len) == Some(node.hash)
    }

    #[inline]
    fn may_rescue(&mut self, rescuer: &KvStringsOp, op: &KvStringsOp) -> bool {
        match (*rescuer, *op) {
            // After put(w) the string is w followed by appends.
            (KvStringsOp::Put(w), KvStringsOp::Get(Some(v))) => {
                self.text(v).starts_with(self.text(w))
            }
            _ => true,
        }
    }

    fn describe(&self, state: u32) -> String {
        if state == JUNK {
            return "a string no get of this key reads, nor a prefix of one".to_string();
        }
        format!("{:?}", self.text_of(state))
    }

    fn forget_states(&mut self) {
        self.nodes.clear();
        self.nodes.shrink_to_fit();
        self.nodes.extend([ROOT_NODE, JUNK_NODE]);
        self.children = FxMap::default();
    }

    fn heap_bytes(&self) -> usize {
        self.arena.capacity()
            + self.prefixes.capacity() * 8
            + self.texts.capacity() * std::mem::size_of::<Text>()
            + self.nodes.len() * std::mem::size_of::<Node>()
            + self.children.len() * 24
            + (self.read_ids.capacity() + self.reads.as_ref().map_or(0, Vec::capacity)) * 4
            + self.text_ids.len() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(input: Input, outcome: Outcome) -> Op {
        Op {
            process: 0,
            key: Value::Nil,
            input,
            outcome,
            call: 0,
            ret: Some(1),
        }
    }

    fn s(v: &str) -> Value {
        Value::Str(v.to_string())
    }

    #[test]
    fn strings_no_get_reads_a_prefix_of_are_one_state() {
        let reads = [
            op(Input::Read, Outcome::Ok(s("ab"))),
            op(Input::Read, Outcome::Ok(s("b"))),
        ];
        let writes = [
            op(Input::Append { value: s("a") }, Outcome::Info),
            op(Input::Append { value: s("b") }, Outcome::Info),
            op(Input::Write { value: s("b") }, Outcome::Info),
        ];
        let mut m = KvStrings::new();
        m.prepare(&reads.iter().chain(&writes).collect::<Vec<_>>());
        let [get_ab, get_b] = reads.map(|r| m.convert(&r).expect("a string"));
        let [a, b, put_b] = writes.map(|w| m.convert(&w).expect("a string"));
        let s_a = m.step(ROOT, &a).expect("appends are legal");
        let s_ab = m.step(s_a, &b).expect("appends are legal");
        assert!(m.step(s_ab, &get_ab).is_some());
        // "aa" and "ba" start no read value: one state, where every append stays.
        let s_aa = m.step(s_a, &a).expect("appends are legal");
        let s_b = m.step(ROOT, &b).expect("appends are legal");
        let s_ba = m.step(s_b, &a).expect("appends are legal");
        assert_eq!(s_aa, JUNK);
        assert_eq!(s_ba, JUNK);
        assert_eq!(m.step(JUNK, &b), Some(JUNK));
        // No get is legal there, nor becomes legal by appends; a put leaves it.
        for g in [get_ab, get_b] {
            assert_eq!(m.step(JUNK, &g), None);
            assert!(!m.may_become_legal(JUNK, &g));
        }
        let s_put = m.step(JUNK, &put_b).expect("puts are legal");
        assert_eq!(Some(s_put), m.step(s_b, &put_b));
        assert!(m.step(s_put, &get_b).is_some());
    }

    #[test]
    fn an_unprepared_model_merges_nothing() {
        let mut m = KvStrings::new();
        let a = m
            .convert(&op(Input::Append { value: s("zz") }, Outcome::Info))
            .expect("a string");
        let st = m.step(ROOT, &a).expect("appends are legal");
        assert_ne!(st, JUNK);
        assert_eq!(m.describe(st), "\"zz\"");
    }
}
