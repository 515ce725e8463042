//! EDN op maps, one per line, as in Porcupine's kv corpus and Jepsen histories:
//!
//! ```text
//! {:process 0, :type :invoke, :f :append, :key "4", :value "x 0 1 y"}
//! {:process 0, :type :ok, :f :get, :key "0", :value ""}
//! ```
//!
//! Only the subset of EDN these maps use: integers, strings, keywords, `nil` and vectors
//! (`:value [from to]` for `:cas`); commas are whitespace. `:get`/`:read` read,
//! `:put`/`:write` overwrite, `:append` appends; a completion's `:f` must be its invoke's (up
//! to these aliases). Ops still open at the end never returned. Times are line numbers.

use crate::history::{Input, Outcome, Pairing, Value};
use crate::parse::ParseError;
use crate::History;

/// Nesting of EDN vectors accepted in one value.
const DEPTH_MAX: usize = 4;

#[derive(Debug, Clone, PartialEq)]
enum Edn {
    Nil,
    Int(u64),
    Str(String),
    Keyword(String),
    Vector(Vec<Edn>),
}

/// Parses a whole file.
pub fn parse(text: &str) -> Result<History, ParseError> {
    let mut pairing = Pairing::default();
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        let err = |m: String| ParseError::new(lineno, m);
        if line.trim().is_empty() {
            continue;
        }
        let map = parse_map(line).map_err(err)?;
        let get = |k: &str| map.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        let process = match get("process") {
            Some(Edn::Int(p)) => *p,
            other => return Err(err(format!(":process must be an integer, not {other:?}"))),
        };
        let (Some(Edn::Keyword(ty)), Some(Edn::Keyword(f))) = (get("type"), get("f")) else {
            return Err(err(":type and :f must be keywords".into()));
        };
        let key = get("key")
            .map(value)
            .transpose()
            .map_err(err)?
            .unwrap_or(Value::Nil);
        let val = get("value").unwrap_or(&Edn::Nil);
        let time = lineno as u64;
        match ty.as_str() {
            "invoke" => {
                let input = match (f.as_str(), val) {
                    ("get" | "read", _) => Input::Read,
                    ("put" | "write", v) => Input::Write {
                        value: value(v).map_err(err)?,
                    },
                    ("append", v) => Input::Append {
                        value: value(v).map_err(err)?,
                    },
                    ("cas", Edn::Vector(pair)) if pair.len() == 2 => Input::Cas {
                        from: value(&pair[0]).map_err(err)?,
                        to: value(&pair[1]).map_err(err)?,
                    },
                    _ => return Err(err(format!("unsupported op :{f} {val:?}"))),
                };
                pairing.invoke(process, key, input, time).map_err(err)?;
            }
            "ok" | "fail" | "info" => {
                if let Some(open) = pairing.open_op(process) {
                    let same = match f.as_str() {
                        "get" | "read" => open.input == Input::Read,
                        "put" | "write" => matches!(open.input, Input::Write { .. }),
                        "append" => matches!(open.input, Input::Append { .. }),
                        "cas" => matches!(open.input, Input::Cas { .. }),
                        _ => false,
                    };
                    if !same {
                        return Err(err(format!(
                            "completion :f :{f} does not match the invoke's {}",
                            open.input.name()
                        )));
                    }
                }
                let outcome = match (ty.as_str(), f.as_str()) {
                    ("ok", "get" | "read") => Outcome::Ok(value(val).map_err(err)?),
                    ("ok", _) => Outcome::Ok(Value::Nil),
                    ("fail", _) => Outcome::Fail,
                    _ => Outcome::Info,
                };
                pairing.complete(process, outcome, time).map_err(err)?;
            }
            other => return Err(err(format!("unknown :type :{other}"))),
        }
    }
    Ok(pairing.finish())
}

fn value(v: &Edn) -> Result<Value, String> {
    match v {
        Edn::Nil => Ok(Value::Nil),
        Edn::Int(i) => Ok(Value::Int(*i)),
        Edn::Str(s) => Ok(Value::Str(s.clone())),
        other => Err(format!("unsupported value {other:?}")),
    }
}

/// Parses `{:k v, ...}` into (key name, value) pairs.
fn parse_map(line: &str) -> Result<Vec<(String, Edn)>, String> {
    let mut p = Cursor {
        s: line.as_bytes(),
        i: 0,
    };
    p.skip_ws();
    p.expect(b'{')?;
    let mut pairs = Vec::new();
    loop {
        p.skip_ws();
        if p.peek() == Some(b'}') {
            p.i += 1;
            break;
        }
        let Edn::Keyword(k) = p.value(0)? else {
            return Err("map keys must be keywords".into());
        };
        let v = p.value(0)?;
        pairs.push((k, v));
    }
    p.skip_ws();
    if p.i != p.s.len() {
        return Err("trailing text after map".into());
    }
    Ok(pairs)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',' | b'\r')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at column {}", c as char, self.i + 1))
        }
    }

    fn token(&mut self) -> &str {
        let start = self.i;
        while let Some(c) = self.peek() {
            if matches!(c, b' ' | b'\t' | b',' | b'}' | b']' | b'\r') {
                break;
            }
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("")
    }

    fn value(&mut self, depth: usize) -> Result<Edn, String> {
        self.skip_ws();
        match self.peek() {
            None => Err("unexpected end of line".into()),
            Some(b'"') => self.string(),
            Some(b':') => {
                self.i += 1;
                Ok(Edn::Keyword(self.token().to_string()))
            }
            Some(b'[') if depth < DEPTH_MAX => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        return Ok(Edn::Vector(items));
                    }
                    items.push(self.value(depth + 1)?);
                }
            }
            Some(_) => {
                let at = self.i + 1;
                match self.token() {
                    "nil" => Ok(Edn::Nil),
                    t => t
                        .parse()
                        .map(Edn::Int)
                        .map_err(|_| format!("unsupported token {t:?} at column {at}")),
                }
            }
        }
    }

    fn string(&mut self) -> Result<Edn, String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string".into()),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = self
                        .s
                        .get(self.i + 1)
                        .copied()
                        .ok_or("unterminated escape")?;
                    out.push(match c {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        other => other,
                    });
                    self.i += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(out)
            .map(Edn::Str)
            .map_err(|_| "string is not UTF-8".into())
    }
}
