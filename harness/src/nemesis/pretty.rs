//! The JSON layout of `schedule.json`: serde_json's pretty layout, except that an array
//! whose first element is a scalar stays on one line.
//!
//! So a link reads `["n1", "n2"]` instead of four lines, and a node list
//! `["n1", "n2", "n3"]`, which keeps a schedule short enough to read and edit by hand.
//! Key order is the structs' field order, never a map's, so the bytes depend only on
//! the value.

use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};

/// Serialises `value` in the schedule layout, with a trailing newline.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Layout::default());
    value
        .serialize(&mut ser)
        .expect("a schedule has string keys and finite numbers");
    out.push(b'\n');
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// An object; `compact` inside a one-line array.
    Object { compact: bool, has_value: bool },
    /// An array whose first element has not been seen yet.
    Undecided,
    /// An array laid out one element per line.
    Block,
    /// An array on one line.
    Inline,
}

#[derive(Debug, Default)]
struct Layout {
    stack: Vec<Frame>,
}

const INDENT: &[u8] = b"  ";

impl Layout {
    fn depth(&self) -> usize {
        self.stack
            .iter()
            .filter(|f| matches!(f, Frame::Block | Frame::Object { compact: false, .. }))
            .count()
    }

    fn compact(&self) -> bool {
        self.stack
            .iter()
            .any(|f| matches!(f, Frame::Inline | Frame::Object { compact: true, .. }))
    }

    fn newline<W: ?Sized + io::Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.depth() {
            w.write_all(INDENT)?;
        }
        Ok(())
    }

    /// Called before every value: the first element of an array decides its layout.
    fn before_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        container: bool,
    ) -> io::Result<()> {
        if let Some(top @ Frame::Undecided) = self.stack.last_mut() {
            if container {
                *top = Frame::Block;
                return self.newline(w);
            }
            *top = Frame::Inline;
        }
        Ok(())
    }
}

macro_rules! scalar {
    ($($name:ident($ty:ty)),* $(,)?) => {
        $(
            fn $name<W: ?Sized + io::Write>(&mut self, w: &mut W, v: $ty) -> io::Result<()> {
                self.before_value(w, false)?;
                CompactFormatter.$name(w, v)
            }
        )*
    };
}

impl Formatter for Layout {
    scalar!(
        write_bool(bool),
        write_i8(i8),
        write_i16(i16),
        write_i32(i32),
        write_i64(i64),
        write_i128(i128),
        write_u8(u8),
        write_u16(u16),
        write_u32(u32),
        write_u64(u64),
        write_u128(u128),
        write_f32(f32),
        write_f64(f64),
        write_number_str(&str),
        write_byte_array(&[u8]),
        write_raw_fragment(&str),
    );

    fn write_null<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.before_value(w, false)?;
        w.write_all(b"null")
    }

    fn begin_string<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.before_value(w, false)?;
        w.write_all(b"\"")
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.before_value(w, true)?;
        let frame = if self.compact() {
            Frame::Inline
        } else {
            Frame::Undecided
        };
        self.stack.push(frame);
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        if self.stack.pop() == Some(Frame::Block) {
            self.newline(w)?;
        }
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        match self.stack.last() {
            Some(Frame::Block) => {
                w.write_all(b",")?;
                self.newline(w)
            }
            Some(Frame::Inline) if !first => w.write_all(b", "),
            _ => Ok(()),
        }
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.before_value(w, true)?;
        let compact = self.compact();
        self.stack.push(Frame::Object {
            compact,
            has_value: false,
        });
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        if let Some(Frame::Object {
            compact: false,
            has_value: true,
        }) = self.stack.pop()
        {
            self.newline(w)?;
        }
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        if self.compact() {
            if !first {
                w.write_all(b" ")?;
            }
            return Ok(());
        }
        self.newline(w)
    }

    fn end_object_key<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        Ok(())
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        if let Some(Frame::Object { has_value, .. }) = self.stack.last_mut() {
            *has_value = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    fn check(value: serde_json::Value, want: &str) {
        let got = super::to_string(&value);
        assert_eq!(got, want, "got:\n{got}");
        let back: serde_json::Value = serde_json::from_str(&got).expect("valid JSON");
        assert_eq!(back, value);
    }

    #[test]
    fn scalar_arrays_stay_on_one_line() {
        check(
            json!({"a": ["n1", "n2"]}),
            "{\n  \"a\": [\"n1\", \"n2\"]\n}\n",
        );
        check(
            json!({"cut": [["n1", "n2"], ["n2", "n1"]], "e": [], "o": {}}),
            "{\n  \"cut\": [\n    [\"n1\", \"n2\"],\n    [\"n2\", \"n1\"]\n  ],\n  \"e\": [],\n  \"o\": {}\n}\n",
        );
    }

    #[test]
    fn objects_in_arrays_are_blocks() {
        check(
            json!([{"id": 1, "on": {"nth": 2}}, {"id": 2}]),
            "[\n  {\n    \"id\": 1,\n    \"on\": {\n      \"nth\": 2\n    }\n  },\n  {\n    \"id\": 2\n  }\n]\n",
        );
    }

    #[test]
    fn containers_inside_one_line_arrays_are_compact() {
        check(
            json!([1, [2, 3], {"a": null, "b": true}]),
            "[1, [2, 3], {\"a\": null, \"b\": true}]\n",
        );
    }
}
