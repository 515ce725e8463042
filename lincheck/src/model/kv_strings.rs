//! A string object (one key of Porcupine's kv model), initially "".
//!
//! `get` must return the current string, `put` replaces it, `append` concatenates.
//!
//! States are `Copy` ids in a trie of appends: node `(parent, suffix)` is the parent's
//! string followed by the interned value `suffix`, and `put(v)` is the child `(root, v)`.
//! Building a state therefore never copies text. Each node carries its length and a
//! polynomial hash of its text; `get` compares length and hash, then confirms by
//! walking the chain, so a hash collision never makes an illegal `get` legal. Two
//! different trie paths can spell the same text (`"a"+"bc"` and `"ab"+"c"`): they are
//! different states, which costs memo hits, never correctness.
//!
//! Appends only extend the string, so from a state that is not a prefix of what a
//! `get` returned, only a `put` can make that `get` legal ([`Model::may_become_legal`]),
//! and only a put of a prefix of that value ([`Model::may_rescue`]).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::history::{Input, Op, Outcome, Value};
use crate::model::{Model, ModelError};
use crate::search::memo::FxHasher;

const NAME: &str = "kv-strings";
const BASE: u64 = 0x100_0000_01b3;
const ROOT: u32 = 0;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[derive(Debug, Clone)]
struct Text {
    text: Box<str>,
    hash: u64,
    /// `BASE^len`.
    pow: u64,
    /// Hashes of every prefix, for values a `get` returned.
    prefixes: Vec<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    parent: u32,
    suffix: u32,
    len: u32,
    hash: u64,
}

/// The string model of one key.
#[derive(Debug, Clone)]
pub struct KvStrings {
    texts: Vec<Text>,
    text_ids: FxMap<Box<str>, u32>,
    nodes: Vec<Node>,
    children: FxMap<(u32, u32), u32>,
    equal: FxMap<(u32, u32), bool>,
    text_bytes: usize,
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
            texts: Vec::new(),
            text_ids: FxMap::default(),
            nodes: vec![Node {
                parent: ROOT,
                suffix: u32::MAX,
                len: 0,
                hash: 0,
            }],
            children: FxMap::default(),
            equal: FxMap::default(),
            text_bytes: 0,
        }
    }

    fn intern(&mut self, op: &Op, v: &Value, with_prefixes: bool) -> Result<u32, ModelError> {
        let text = match v {
            Value::Nil => "",
            Value::Str(s) => s.as_str(),
            Value::Int(_) => return Err(ModelError::new(NAME, op, "values must be strings")),
        };
        let id = match self.text_ids.get(text) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.texts.len()).expect("fewer than 2^32 values");
                let (hash, pow) = poly(text);
                self.texts.push(Text {
                    text: text.into(),
                    hash,
                    pow,
                    prefixes: Vec::new(),
                });
                self.text_ids.insert(text.into(), id);
                self.text_bytes += 2 * text.len();
                id
            }
        };
        let t = &mut self.texts[id as usize];
        if with_prefixes && t.prefixes.is_empty() {
            let mut h = 0u64;
            t.prefixes.push(0);
            for b in t.text.bytes() {
                h = h.wrapping_mul(BASE).wrapping_add(u64::from(b) + 1);
                t.prefixes.push(h);
            }
            self.text_bytes += 8 * t.prefixes.len();
        }
        Ok(id)
    }

    fn child(&mut self, parent: u32, suffix: u32) -> u32 {
        let t = &self.texts[suffix as usize];
        if t.text.is_empty() {
            return parent;
        }
        if let Some(&c) = self.children.get(&(parent, suffix)) {
            return c;
        }
        let p = self.nodes[parent as usize];
        let id = u32::try_from(self.nodes.len()).expect("fewer than 2^32 states");
        self.nodes.push(Node {
            parent,
            suffix,
            len: p.len + t.text.len() as u32,
            hash: p.hash.wrapping_mul(t.pow).wrapping_add(t.hash),
        });
        self.children.insert((parent, suffix), id);
        id
    }

    /// Whether node `s` spells exactly text `v`.
    fn spells(&mut self, s: u32, v: u32) -> bool {
        let (node, t) = (self.nodes[s as usize], &self.texts[v as usize]);
        if node.len as usize != t.text.len() || node.hash != t.hash {
            return false;
        }
        if let Some(&eq) = self.equal.get(&(s, v)) {
            return eq;
        }
        let expected = t.text.as_bytes();
        let mut end = expected.len();
        let mut at = s;
        let mut eq = true;
        while at != ROOT {
            let n = self.nodes[at as usize];
            let piece = self.texts[n.suffix as usize].text.as_bytes();
            if !expected[..end].ends_with(piece) {
                eq = false;
                break;
            }
            end -= piece.len();
            at = n.parent;
        }
        self.equal.insert((s, v), eq);
        eq
    }

    fn text_of(&self, s: u32) -> String {
        let mut pieces = Vec::new();
        let mut at = s;
        while at != ROOT {
            let n = self.nodes[at as usize];
            pieces.push(&*self.texts[n.suffix as usize].text);
            at = n.parent;
        }
        pieces.reverse();
        pieces.concat()
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

    fn convert(&mut self, op: &Op) -> Result<KvStringsOp, ModelError> {
        Ok(match (&op.input, &op.outcome) {
            (Input::Read, Outcome::Ok(v)) => KvStringsOp::Get(Some(self.intern(op, v, true)?)),
            (Input::Read, Outcome::Info) => KvStringsOp::Get(None),
            (Input::Write { value }, Outcome::Ok(_) | Outcome::Info) => {
                KvStringsOp::Put(self.intern(op, value, false)?)
            }
            (Input::Append { value }, Outcome::Ok(_) | Outcome::Info) => {
                KvStringsOp::Append(self.intern(op, value, false)?)
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
        self.texts[v as usize]
            .prefixes
            .get(node.len as usize)
            .is_some_and(|&h| h == node.hash)
    }

    fn may_rescue(&mut self, rescuer: &KvStringsOp, op: &KvStringsOp) -> bool {
        match (*rescuer, *op) {
            // After put(w) the string is w followed by appends.
            (KvStringsOp::Put(w), KvStringsOp::Get(Some(v))) => self.texts[v as usize]
                .text
                .starts_with(&*self.texts[w as usize].text),
            _ => true,
        }
    }

    fn describe(&self, state: u32) -> String {
        format!("{:?}", self.text_of(state))
    }

    fn forget_states(&mut self) {
        self.nodes.truncate(1);
        self.nodes.shrink_to_fit();
        self.children = FxMap::default();
        self.equal = FxMap::default();
    }

    fn heap_bytes(&self) -> usize {
        self.text_bytes
            + self.texts.len() * std::mem::size_of::<Text>()
            + self.nodes.len() * std::mem::size_of::<Node>()
            + (self.children.len() + self.equal.len()) * 24
    }
}
