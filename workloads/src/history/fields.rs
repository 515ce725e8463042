//! [`Fields`]: an op's arguments or result, the `value` of a history event, held small.
//!
//! A long run's history has hundreds of thousands of events, each with a JSON object of
//! two to four fields. As a `serde_json::Value` such an object is a B-tree node of eleven
//! slots (over 600 bytes) plus one allocation per field name, about eight times the line
//! it was read from. `Fields` keeps the fields in one shared slice sorted by name, with
//! the usual names shared as `&'static str`: under 60 bytes a field, and a clone (an
//! op's input taken from its invoke event) costs a reference count. It reads like a `Value`
//! object (`fields["key"].as_u64()`, `fields.get("value")`, a missing name reads as
//! null) and serialises to the same JSON, fields in name order as `Value` writes them.
//! A value that is not an object (a history written by another tool) is kept as it is.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Field names common enough to share instead of allocating per event.
const NAMES: [&str; 10] = [
    "ballot", "echo", "from", "key", "node", "quorum", "round", "rounds", "to", "value",
];

/// A field name: shared when it is one of [`NAMES`].
type Name = Cow<'static, str>;

fn name(s: &str) -> Name {
    match NAMES.iter().find(|n| **n == s) {
        Some(n) => Cow::Borrowed(n),
        None => Cow::Owned(s.to_string()),
    }
}

/// What a missing field reads as, like indexing a `Value` by a name it lacks.
static NULL: Value = Value::Null;

/// A JSON object of named values, or any other JSON value, held compactly (see the
/// module docs). Build one from a `Value` with `.into()`; [`Fields::to_value`] gives the
/// `Value` back.
#[derive(Clone, PartialEq)]
pub struct Fields(Repr);

#[derive(Clone, PartialEq)]
enum Repr {
    /// Sorted by name, names unique.
    Object(Arc<[(Name, Value)]>),
    Other(Arc<Value>),
}

impl Default for Fields {
    /// The empty object.
    fn default() -> Self {
        Fields(Repr::Object(Arc::from(Vec::new())))
    }
}

impl Fields {
    /// The field `name`, if this is an object that has it.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match &self.0 {
            Repr::Object(fields) => fields
                .binary_search_by(|(n, _)| n.as_ref().cmp(name))
                .ok()
                .map(|i| &fields[i].1),
            Repr::Other(v) => v.get(name),
        }
    }

    /// Whether this is a JSON object.
    pub fn is_object(&self) -> bool {
        match &self.0 {
            Repr::Object(_) => true,
            Repr::Other(v) => v.is_object(),
        }
    }

    /// The same JSON as a `Value`.
    pub fn to_value(&self) -> Value {
        match &self.0 {
            Repr::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.clone()))
                    .collect(),
            ),
            Repr::Other(v) => (**v).clone(),
        }
    }

    fn from_pairs(mut pairs: Vec<(Name, Value)>) -> Fields {
        // A repeated name keeps its last value, as a `Value` object does.
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        Fields(Repr::Object(Arc::from(pairs)))
    }
}

impl std::ops::Index<&str> for Fields {
    type Output = Value;

    /// The field `name`, or null when there is none (as `Value` indexing does).
    fn index(&self, name: &str) -> &Value {
        self.get(name).unwrap_or(&NULL)
    }
}

impl From<Value> for Fields {
    fn from(v: Value) -> Fields {
        match v {
            Value::Object(map) => {
                Fields::from_pairs(map.into_iter().map(|(n, v)| (name(&n), v)).collect())
            }
            other => Fields(Repr::Other(Arc::new(other))),
        }
    }
}

impl From<&Fields> for Value {
    fn from(f: &Fields) -> Value {
        f.to_value()
    }
}

impl From<Fields> for Value {
    fn from(f: Fields) -> Value {
        f.to_value()
    }
}

impl PartialEq<Value> for Fields {
    fn eq(&self, other: &Value) -> bool {
        match (&self.0, other) {
            (Repr::Object(fields), Value::Object(map)) => {
                fields.len() == map.len()
                    && fields
                        .iter()
                        .all(|(n, v)| map.get(n.as_ref()).is_some_and(|w| w == v))
            }
            (Repr::Other(v), other) => **v == *other,
            _ => false,
        }
    }
}

impl PartialEq<Fields> for Value {
    fn eq(&self, other: &Fields) -> bool {
        other == self
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_value(), f)
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_value(), f)
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (n, v) in fields.iter() {
                    map.serialize_entry(n.as_ref(), v)?;
                }
                map.end()
            }
            Repr::Other(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fields, D::Error> {
        d.deserialize_any(FieldsVisitor)
    }
}

/// Reads an object field by field into [`Fields`] without building a `Value` map; any
/// other JSON becomes a `Value`.
struct FieldsVisitor;

impl FieldsVisitor {
    fn other<E>(v: Value) -> Result<Fields, E> {
        Ok(Fields(Repr::Other(Arc::new(v))))
    }
}

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(4).min(16));
        while let Some(n) = map.next_key::<Cow<'de, str>>()? {
            pairs.push((name(&n), map.next_value::<Value>()?));
        }
        Ok(Fields::from_pairs(pairs))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Fields, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        Self::other(Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Fields, E> {
        Self::other(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Fields, E> {
        Self::other(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Fields, E> {
        Self::other(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Fields, E> {
        Self::other(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Fields, E> {
        Self::other(Value::from(v))
    }

    fn visit_unit<E>(self) -> Result<Fields, E> {
        Self::other(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Fields, E> {
        Self::other(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Fields, D::Error> {
        Fields::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_writes_the_json_a_value_would() {
        for text in [
            r#"{"key":3,"value":null}"#,
            r#"{"ballot":{"node":"n3","round":1},"key":0,"rounds":1,"value":1}"#,
            r#"{"zeta":"z","alpha":[1,2],"key":1}"#,
            r#"{}"#,
            r#"5"#,
            r#""text""#,
            r#"null"#,
            r#"[1,{"a":2}]"#,
        ] {
            let fields: Fields = serde_json::from_str(text).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&fields).unwrap(), value.to_string());
            assert_eq!(fields, value);
            assert_eq!(fields.to_value(), value);
            assert_eq!(Fields::from(value.clone()), fields);
            assert_eq!(fields["key"], value["key"]);
            assert_eq!(fields["missing"], Value::Null);
            assert_eq!(fields.get("key"), value.get("key"));
        }
    }

    #[test]
    fn a_repeated_name_keeps_its_last_value_as_a_value_does() {
        let text = r#"{"key":1,"value":2,"key":3}"#;
        let fields: Fields = serde_json::from_str(text).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(fields, value);
        assert_eq!(fields["key"], json!(3));
    }
}
