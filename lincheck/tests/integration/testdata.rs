//! Data-driven checker tests: each file in `lincheck/testdata/` holds cases separated by
//! `====` lines. A case is a header (`model NAME`, optionally `format NAME`), a history,
//! a `----` line, and the expected verdict and explanation. `UPDATE_EXPECT=1` rewrites
//! the expectations in place.
//!
//! The default history format is a shorthand turned into squall `history.jsonl`, one
//! event per line, the line number being the time:
//! `PROCESS TYPE F KEY [ARGS...]`, e.g. `0 invoke write 1 5`, `1 ok read 1 nil`,
//! `2 invoke cas 1 3 4`, `3 ok propose 1 7`.

use std::fmt::Write as _;
use std::path::PathBuf;

use lincheck::{check, CheckOptions, Format, ModelKind, Verdict};

fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Turns shorthand lines into `history.jsonl`.
fn shorthand_to_jsonl(lines: &[&str]) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (process, ty, func, key) = (f[0], f[1], f[2], f[3]);
        let args = &f[4..];
        let num = |s: &str| {
            if s == "nil" {
                "null".to_string()
            } else {
                s.to_string()
            }
        };
        let value = match (func, args) {
            ("cas", [from, to]) => format!(r#"{{"key":{key},"from":{from},"to":{to}}}"#),
            (_, [v]) => format!(r#"{{"key":{key},"value":{}}}"#, num(v)),
            _ => format!(r#"{{"key":{key}}}"#),
        };
        writeln!(
            out,
            r#"{{"index":{i},"process":{process},"type":"{ty}","f":"{func}","value":{value},"time":{}}}"#,
            (i + 1) * 10
        )
        .expect("writes to a string");
    }
    out
}

/// Runs one case and renders its result.
fn run_case(header: &[&str], history: &[&str]) -> String {
    let mut model = None;
    let mut format = None;
    for h in header {
        match h.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["model", m] => model = Some(m.parse::<ModelKind>().expect("model name")),
            ["format", f] => format = Some(f.parse::<Format>().expect("format name")),
            other => panic!("bad header line {other:?}"),
        }
    }
    let text = match format {
        None => shorthand_to_jsonl(history),
        Some(_) => history.join("\n"),
    };
    let h = match format.unwrap_or(Format::Squall).parse(&text) {
        Ok(h) => h,
        Err(e) => return format!("parse error: {e}\n"),
    };
    let opts = CheckOptions {
        threads: 1,
        verbose: true,
        ..CheckOptions::default()
    };
    let outcome = match check(&h, model.expect("a model line"), &opts) {
        Ok(o) => o,
        Err(e) => return format!("model error: {e}\n"),
    };
    match outcome.verdict {
        Verdict::Valid => "valid\n".to_string(),
        Verdict::Invalid { explanation } => format!("invalid\n{explanation}"),
        Verdict::Unknown { reason, partial } => format!("unknown: {reason}\n{partial}"),
    }
}

#[test]
fn testdata() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(testdata_dir())
        .expect("testdata dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut failures = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let mut rewritten = Vec::new();
        for case in text.trim_end().split("\n====\n") {
            let (input, expected) = match case.split_once("\n----\n") {
                Some(parts) => parts,
                None => (case.strip_suffix("\n----").expect("a ---- line"), ""),
            };
            let lines: Vec<&str> = input
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .collect();
            let split = lines
                .iter()
                .position(|l| !(l.starts_with("model ") || l.starts_with("format ")))
                .unwrap_or(lines.len());
            let got = run_case(&lines[..split], &lines[split..]);
            if got.trim_end() != expected.trim_end() {
                failures.push(format!(
                    "{}:\n--- expected\n{expected}\n--- got\n{got}",
                    path.display()
                ));
            }
            rewritten.push(format!("{input}\n----\n{}", got.trim_end()));
        }
        if update {
            std::fs::write(&path, rewritten.join("\n====\n") + "\n").expect("writable");
        }
    }
    assert!(update || failures.is_empty(), "{}", failures.join("\n"));
}
