//! Arrow labels: a message body's salient fields in at most [`LABEL_BYTES_MAX`] bytes,
//! `(1,n3) 133` for `{"type":"accept","key":4,"ballot":{"round":1,"node":"n3"},"value":133}`.
//!
//! The same words label an arrow in both modes: the router reads them off each line as
//! it routes it ([`read_body`], in the one pass that already reads the body's `type` and
//! `key`), and the report reads them off a lockstep trace's bodies ([`label_of`]).
//!
//! The rule, field by field in the order the body has them: `type`, `key`, `msg_id`,
//! `in_reply_to` and nulls are left out; an object with `round` and `node` (a ballot) is
//! `(round,node)`; another object with a `value` is `v` and the value; anything else is
//! its JSON text. Fields are joined by spaces; a label that does not fit ends in `...`.
//! Building one allocates nothing: a label is a fixed array kept inline in the log's
//! records.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Bytes a label holds at most (the `...` of a cut label included).
pub const LABEL_BYTES_MAX: usize = 32;

/// What a cut label ends with.
const CUT: &str = "...";

/// A short UTF-8 label, zero-padded (JSON text never holds a raw NUL byte).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Label([u8; LABEL_BYTES_MAX]);

impl Label {
    /// The text.
    pub fn as_str(&self) -> &str {
        let len = self
            .0
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(LABEL_BYTES_MAX);
        // Only whole characters are ever written (see `Writer::finish`).
        std::str::from_utf8(&self.0[..len]).unwrap_or("")
    }

    /// Whether there is no text.
    pub fn is_empty(&self) -> bool {
        self.0[0] == 0
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// What the log keeps of a body besides its type: the instance and the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Salient {
    /// The body's `key` when it is an unsigned integer.
    pub key: Option<u64>,
    /// Its other fields, short.
    pub label: Label,
}

/// A body's `type` and its [`Salient`] fields, in one pass over the body's JSON text;
/// `None` when the body is not an object with a string `type`. The type borrows from
/// the text unless it has escapes.
pub fn read_body(body_json: &str) -> Option<(Cow<'_, str>, Salient)> {
    let head: Head<'_> = serde_json::from_str(body_json).ok()?;
    Some((head.ty?, head.salient))
}

/// The label of a body given as JSON text (empty when it is not an object).
pub fn label_of(body_json: &str) -> String {
    let mut w = Writer::default();
    if let Ok(fields) = serde_json::from_str::<Fields>(body_json) {
        w = fields.0;
    }
    w.finish().as_str().to_string()
}

struct Head<'a> {
    ty: Option<Cow<'a, str>>,
    salient: Salient,
}

impl<'de> Deserialize<'de> for Head<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(BodyVisitor { want_type: true })
            .map(|(ty, key, w)| Head {
                ty,
                salient: Salient {
                    key,
                    label: w.finish(),
                },
            })
    }
}

/// Only the label's writer, for [`label_of`].
struct Fields(Writer);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(BodyVisitor { want_type: false })
            .map(|(_, _, w)| Fields(w))
    }
}

struct BodyVisitor {
    want_type: bool,
}

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = (Option<Cow<'de, str>>, Option<u64>, Writer);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message body (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut ty, mut key, mut w) = (None, None, Writer::default());
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Type if self.want_type => {
                    // A type that is not a string fails the whole body, as
                    // `proto::envelope::body_type_key` does.
                    ty = Some(map.next_value::<Text<'de>>()?.0);
                }
                Field::Key => {
                    let raw: &RawValue = map.next_value()?;
                    key = raw.get().parse().ok();
                }
                Field::Type | Field::Skip => {
                    map.next_value::<IgnoredAny>()?;
                }
                Field::Other => {
                    let raw: &RawValue = map.next_value()?;
                    w.field(raw.get());
                }
            }
        }
        Ok((ty, key, w))
    }
}

/// What a body's field is to the label (its name matched without keeping it).
enum Field {
    Type,
    Key,
    /// Left out of the label: `msg_id`, `in_reply_to`.
    Skip,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "type" => Field::Type,
                    "key" => Field::Key,
                    "msg_id" | "in_reply_to" => Field::Skip,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// A string that borrows from the input unless it has escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A ballot (`round` and `node`) or a proposal (`value`) inside a body.
#[derive(Deserialize)]
struct Inner<'a> {
    #[serde(borrow, default)]
    round: Option<&'a RawValue>,
    #[serde(borrow, default)]
    node: Option<&'a RawValue>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
}

/// `{"round":1,"node":"n3"}` exactly as serde_json writes a ballot: its round and node,
/// read without a parse (the router's hot path; anything else takes the general one).
fn compact_ballot(raw: &str) -> Option<(&str, &str)> {
    let rest = raw.strip_prefix(r#"{"round":"#)?;
    let (round, rest) = rest.split_once(',')?;
    let node = rest.strip_prefix(r#""node":""#)?.strip_suffix(r#""}"#)?;
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    (plain(round) && plain(node)).then_some((round, node))
}

/// `{...,"value":133}`: an object whose last field is an unsigned `value`, the way
/// serde_json writes a proposal; its value, read without a parse.
fn compact_value(raw: &str) -> Option<&str> {
    let body = raw.strip_suffix('}')?;
    let at = body.rfind(r#","value":"#)?;
    let value = &body[at + r#","value":"#.len()..];
    (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())).then_some(value)
}

/// Writes a label into a fixed array, remembering whether anything did not fit.
#[derive(Default)]
struct Writer {
    buf: [u8; LABEL_BYTES_MAX],
    len: usize,
    cut: bool,
}

impl Writer {
    /// Adds one field's value (its JSON text), by the rule of the module docs.
    fn field(&mut self, raw: &str) {
        let raw = raw.trim();
        if raw == "null" || self.cut {
            return;
        }
        if self.len > 0 {
            self.push(" ");
        }
        if raw.starts_with('{') {
            if let Some((round, node)) = compact_ballot(raw) {
                self.push("(");
                self.push(round);
                self.push(",");
                self.push(node);
                self.push(")");
                return;
            }
            if let Some(value) = compact_value(raw) {
                self.push("v");
                self.push(value);
                return;
            }
            if let Ok(inner) = serde_json::from_str::<Inner<'_>>(raw) {
                match (inner.round, inner.node, inner.value) {
                    (Some(round), Some(node), _) => {
                        self.push("(");
                        self.push(round.get());
                        self.push(",");
                        let node = serde_json::from_str::<Text<'_>>(node.get());
                        self.push(node.as_ref().map_or("?", |t| t.0.as_ref()));
                        self.push(")");
                        return;
                    }
                    (_, _, Some(value)) => {
                        self.push("v");
                        self.push(value.get());
                        return;
                    }
                    _ => {}
                }
            }
        }
        self.push(raw);
    }

    fn push(&mut self, s: &str) {
        let room = LABEL_BYTES_MAX - self.len;
        if s.len() > room {
            self.buf[self.len..].copy_from_slice(&s.as_bytes()[..room]);
            self.len = LABEL_BYTES_MAX;
            self.cut = true;
        } else {
            self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
            self.len += s.len();
        }
    }

    /// The label: whole characters only, ending in `...` if something did not fit.
    fn finish(mut self) -> Label {
        if self.cut {
            let mut end = LABEL_BYTES_MAX - CUT.len();
            // Back up to a character boundary: never end inside a UTF-8 sequence.
            while end > 0 && (self.buf[end] & 0b1100_0000) == 0b1000_0000 {
                end -= 1;
            }
            self.buf[end..end + CUT.len()].copy_from_slice(CUT.as_bytes());
            self.buf[end + CUT.len()..].fill(0);
        }
        Label(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paxos_bodies_read_as_ballot_and_value() {
        let (ty, s) = read_body(
            r#"{"type":"accept","key":4,"ballot":{"round":1,"node":"n3"},"value":133,"msg_id":9}"#,
        )
        .expect("a body");
        assert_eq!(ty, "accept");
        assert!(matches!(ty, Cow::Borrowed(_)), "the type borrows");
        assert_eq!(s.key, Some(4));
        assert_eq!(s.label.as_str(), "(1,n3) 133");
        let promise = r#"{"type":"promise","key":4,"ballot":{"round":2,"node":"n1"},
            "accepted":{"ballot":{"round":1,"node":"n3"},"value":133}}"#;
        assert_eq!(label_of(promise), "(2,n1) v133");
        assert_eq!(
            read_body(promise).expect("a body").1.label.as_str(),
            "(2,n1) v133"
        );
        let empty =
            r#"{"type":"promise","key":4,"ballot":{"round":2,"node":"n1"},"accepted":null}"#;
        assert_eq!(label_of(empty), "(2,n1)");
    }

    #[test]
    fn the_fast_paths_say_what_the_general_rule_says() {
        for (raw, want) in [
            (r#"{"round":12,"node":"n3"}"#, "(12,n3)"),
            (r#"{"round":1,"node":"n\"3"}"#, r#"(1,n"3)"#),
            (r#"{"node":"n3","round":1}"#, "(1,n3)"),
            (r#"{"ballot":{"round":1,"node":"n3"},"value":133}"#, "v133"),
            (
                r#"{"value":"x","ballot":{"round":1,"node":"n3"}}"#,
                r#"v"x""#,
            ),
            (r#"{"a":1}"#, r#"{"a":1}"#),
        ] {
            let mut w = Writer::default();
            w.field(raw);
            assert_eq!(w.finish().as_str(), want, "{raw}");
        }
    }

    #[test]
    fn reads_what_body_type_key_reads() {
        for body in [
            r#"{"type":"x"}"#,
            r#"{"type":"x","key":"k"}"#,
            r#"{"key":-1,"type":"x\"y"}"#,
            r#"{"type":3}"#,
            r#"{"key":3}"#,
            r#"[1]"#,
            r#"{"type":"values","key":1,"round":2,"values":[1,2]}"#,
        ] {
            let want = proto::envelope::body_type_key(body);
            let got = read_body(body).map(|(t, s)| (t, s.key));
            assert_eq!(got, want, "{body}");
        }
    }

    #[test]
    fn long_labels_are_cut_at_a_character_boundary_within_the_bound() {
        let body = r#"{"type":"values","values":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}"#;
        let label = label_of(body);
        assert_eq!(label.len(), LABEL_BYTES_MAX);
        assert!(label.starts_with("[1,2,3,4,5,6,7,8,9,10,11,") && label.ends_with("..."));
        // "é" is two bytes: the cut never splits it.
        let body = format!(r#"{{"type":"t","name":"{}"}}"#, "é".repeat(40));
        let label = label_of(&body);
        assert!(
            label.len() <= LABEL_BYTES_MAX && label.ends_with("..."),
            "{label}"
        );
        let fields = [r#"{"type":"t","a":"x"}"#, r#"{"type":"t"}"#];
        assert_eq!(label_of(fields[0]), r#""x""#);
        assert!(read_body(fields[1]).expect("a body").1.label.is_empty());
    }
}
