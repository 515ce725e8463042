//! Envelopes: the unit the router routes.
//!
//! Every line on the wire is one envelope `{"src":..,"dest":..,"body":{..}}`. The router
//! parses [`EnvelopeHead`] only: the addresses and the body's `type`, borrowing from the
//! line, so routing never allocates a body tree.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Address of the harness itself (init, reports, lockstep control).
pub const HARNESS: &str = "harness";
/// Address of the router: the first line on a connection (`hello`) goes here.
pub const ROUTER: &str = "router";

/// A fully typed envelope, for endpoints that build or read whole messages.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Envelope<B> {
    /// Sender address: `n1`.., `c1`.., or `harness`.
    pub src: String,
    /// Destination address.
    pub dest: String,
    /// Message body; its `type` field names the message.
    pub body: B,
}

/// The parts of an envelope the router needs, borrowed from the raw line.
#[derive(Debug, Deserialize)]
pub struct EnvelopeHead<'a> {
    /// Sender address.
    #[serde(borrow)]
    pub src: &'a str,
    /// Destination address.
    #[serde(borrow)]
    pub dest: &'a str,
    /// The body, unparsed.
    #[serde(borrow)]
    pub body: &'a RawValue,
}

#[derive(Deserialize)]
struct TypeOnly<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
}

#[derive(Deserialize)]
struct TypeAndKey<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    /// Kept raw: a key of any JSON type must not make the type unreadable.
    #[serde(borrow, default)]
    key: Option<&'a RawValue>,
}

impl<'a> EnvelopeHead<'a> {
    /// Parses the head of one line (without its trailing newline).
    pub fn parse(line: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(line)
    }

    /// The body's `type`; `None` if the body is not an object with a string `type`.
    pub fn body_type(&self) -> Option<String> {
        body_type(self.body.get())
    }

    /// The body's `type` and, when the body has one that is an unsigned integer, its
    /// `key` (the instance a message is about), read in one pass.
    pub fn body_type_key(&self) -> Option<(Cow<'a, str>, Option<u64>)> {
        body_type_key(self.body.get())
    }
}

/// The `type` of a body given as JSON text, read without building the body's tree.
pub fn body_type(body_json: &str) -> Option<String> {
    serde_json::from_str::<TypeOnly<'_>>(body_json)
        .ok()
        .map(|t| t.ty.into_owned())
}

/// The `type` and the unsigned-integer `key` of a body, read in one pass without
/// building the body's tree (the type borrows from it unless it has escapes). A `key`
/// that is not an unsigned integer reads as `None`.
pub fn body_type_key(body_json: &str) -> Option<(Cow<'_, str>, Option<u64>)> {
    serde_json::from_str::<TypeAndKey<'_>>(body_json)
        .ok()
        .map(|t| (t.ty, t.key.and_then(|k| k.get().parse().ok())))
}

/// Serialises an envelope around an already-encoded body, newline included.
pub fn frame_raw(src: &str, dest: &str, body_json: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body_json.len() + src.len() + dest.len() + 32);
    out.extend_from_slice(b"{\"src\":");
    out.extend_from_slice(serde_json::to_string(src).expect("str encodes").as_bytes());
    out.extend_from_slice(b",\"dest\":");
    out.extend_from_slice(serde_json::to_string(dest).expect("str encodes").as_bytes());
    out.extend_from_slice(b",\"body\":");
    out.extend_from_slice(body_json.as_bytes());
    out.extend_from_slice(b"}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_borrows_and_reads_type() {
        let line =
            br#"{"src":"n1","dest":"n2","body":{"type":"prepare","msg_id":7,"ballot":[1,2]}}"#;
        let head = EnvelopeHead::parse(line).unwrap();
        assert_eq!(head.src, "n1");
        assert_eq!(head.dest, "n2");
        assert_eq!(head.body_type().as_deref(), Some("prepare"));
    }

    #[test]
    fn type_and_key_read_together_and_odd_keys_do_not_hide_the_type() {
        let key = body_type_key;
        assert_eq!(
            key(r#"{"type":"accept","key":29,"value":3}"#),
            Some(("accept".into(), Some(29)))
        );
        assert_eq!(
            key(r#"{"key":"k1","type":"put"}"#),
            Some(("put".into(), None))
        );
        assert_eq!(
            key(r#"{"type":"ping","key":[1,2]}"#),
            Some(("ping".into(), None))
        );
        assert_eq!(key(r#"{"type":"ping"}"#), Some(("ping".into(), None)));
        assert_eq!(key(r#"{"key":1}"#), None);
    }

    #[test]
    fn frame_raw_round_trips() {
        let line = frame_raw("c1", "n3", r#"{"type":"echo","msg_id":1,"echo":"x"}"#);
        assert_eq!(*line.last().unwrap(), b'\n');
        let head = EnvelopeHead::parse(&line[..line.len() - 1]).unwrap();
        assert_eq!((head.src, head.dest), ("c1", "n3"));
        assert_eq!(head.body_type().as_deref(), Some("echo"));
    }
}
