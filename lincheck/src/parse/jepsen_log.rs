//! Jepsen log lines, as in the etcd histories of Horn & Kroening's linearizability
//! checker (kept by Porcupine):
//!
//! ```text
//! INFO  jepsen.util - 2 :invoke :cas [3 0]
//! INFO  jepsen.util - 2 :fail :cas [3 0]
//! ```
//!
//! Most files separate the last fields with tabs, some with spaces: fields are split on
//! any whitespace. One CAS register, initially nil, no keys.
//! `:ok` completes an op; `:info` (timed out) leaves it open forever; `:fail :read` is a
//! read whose result is unknown (equally open); `:fail :cas` is a CAS that ran and found
//! another value ([`Outcome::CompareFailed`]); any other `:fail` did not take effect.
//! Times are line numbers.

use crate::history::{Input, Outcome, Pairing, Value};
use crate::parse::ParseError;
use crate::History;

/// Parses a whole log.
pub fn parse(text: &str) -> Result<History, ParseError> {
    let mut pairing = Pairing::default();
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        let err = |m: String| ParseError::new(lineno, m);
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let [_, "jepsen.util", "-", process, ty, f, value @ ..] = fields.as_slice() else {
            return Err(err(format!("not a jepsen.util op line: {line:?}")));
        };
        let process: u64 = process
            .parse()
            .map_err(|_| err(format!("bad process {process:?}")))?;
        let time = lineno as u64;
        match *ty {
            ":invoke" => {
                let input = match (*f, value) {
                    (":read", _) => Input::Read,
                    (":write", [v]) => Input::Write {
                        value: int(v).map_err(err)?,
                    },
                    (":cas", [from, to]) => {
                        let (from, to) = cas_pair(from, to).map_err(err)?;
                        Input::Cas { from, to }
                    }
                    _ => return Err(err(format!("unsupported invoke {f} {value:?}"))),
                };
                pairing
                    .invoke(process, Value::Nil, input, time)
                    .map_err(err)?;
            }
            ":ok" | ":fail" | ":info" => {
                let Some(open) = pairing.open_op(process) else {
                    return Err(err(format!(
                        "process {process} completed an op it never invoked"
                    )));
                };
                if *f != format!(":{}", open.input.name()) {
                    return Err(err(format!(
                        "completion {f} does not match invoke of {}",
                        open.input.name()
                    )));
                }
                let outcome = match (*ty, *f) {
                    (":ok", ":read") => match value {
                        [v] => Outcome::Ok(int(v).map_err(err)?),
                        _ => return Err(err("read without a value".into())),
                    },
                    (":ok", _) => Outcome::Ok(Value::Nil),
                    (":fail", ":cas") => Outcome::CompareFailed,
                    (":fail", ":read") | (":info", _) => Outcome::Info,
                    _ => Outcome::Fail,
                };
                pairing.complete(process, outcome, time).map_err(err)?;
            }
            _ => return Err(err(format!("unknown type {ty:?}"))),
        }
    }
    Ok(pairing.finish())
}

fn int(v: &str) -> Result<Value, String> {
    if v == "nil" {
        return Ok(Value::Nil);
    }
    v.parse()
        .map(Value::Int)
        .map_err(|_| format!("bad value {v:?}"))
}

fn cas_pair(from: &str, to: &str) -> Result<(Value, Value), String> {
    let from = from
        .strip_prefix('[')
        .ok_or_else(|| format!("bad cas operand {from:?}"))?;
    let to = to
        .strip_suffix(']')
        .ok_or_else(|| format!("bad cas operand {to:?}"))?;
    Ok((int(from)?, int(to)?))
}
