//! HTML pieces: escaping, the page's CSS, numbers and times for humans, and a generic
//! rendering of JSON evidence.

use crate::text::truncate;
use std::fmt::Write;

use serde_json::Value;

/// Escapes text for HTML element content and attribute values (both quote kinds).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Nanoseconds as milliseconds, `708.177 ms`.
pub fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

/// A short duration for axis ticks and labels: `850 µs`, `12.5 ms`, `3.2 s`.
pub fn short_ns(ns: f64) -> String {
    if ns == 0.0 {
        "0".into()
    } else if ns < 1e6 {
        format!("{:.0} µs", ns / 1e3)
    } else if ns < 1e9 {
        let v = ns / 1e6;
        if v < 10.0 {
            format!("{v:.2} ms")
        } else {
            format!("{v:.0} ms")
        }
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A compact one-line rendering of a JSON value (strings unquoted at the top).
pub fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// A JSON value for a tooltip, without JSON's quotes: `key=3 value=59`, nested objects
/// as their values in parentheses (`ballot=(n3,1)`).
pub fn brief(v: &Value) -> String {
    match v {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", brief_inner(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => brief_inner(other),
    }
}

fn brief_inner(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(map) => format!(
            "({})",
            map.values().map(brief_inner).collect::<Vec<_>>().join(",")
        ),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(brief_inner).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// A JSON value as nested HTML: objects as definition lists, arrays of objects as
/// tables, scalars as text. `depth` bounds the nesting; `rows_max` the rows of a table.
pub fn json_html(v: &Value, depth: usize, rows_max: usize) -> String {
    let mut s = String::new();
    json_into(&mut s, v, depth, rows_max);
    s
}

fn json_into(s: &mut String, v: &Value, depth: usize, rows_max: usize) {
    if depth == 0 {
        let _ = write!(s, "<code>{}</code>", esc(&truncate(&v.to_string(), 300)));
        return;
    }
    match v {
        Value::Object(map) if !map.is_empty() => {
            s.push_str("<dl class=\"kv\">");
            for (k, v) in map {
                let _ = write!(s, "<dt>{}</dt><dd>", esc(k));
                json_into(s, v, depth - 1, rows_max);
                s.push_str("</dd>");
            }
            s.push_str("</dl>");
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let mut cols: Vec<String> = Vec::new();
            for item in items.iter().take(rows_max) {
                for k in item.as_object().expect("checked").keys() {
                    if !cols.contains(k) {
                        cols.push(k.clone());
                    }
                }
            }
            s.push_str("<table class=\"grid\"><tr>");
            for c in &cols {
                let _ = write!(s, "<th>{}</th>", esc(c));
            }
            s.push_str("</tr>");
            for item in items.iter().take(rows_max) {
                s.push_str("<tr>");
                for c in &cols {
                    s.push_str("<td>");
                    match item.get(c) {
                        Some(v @ (Value::Object(_) | Value::Array(_))) => {
                            let _ =
                                write!(s, "<code>{}</code>", esc(&truncate(&v.to_string(), 200)));
                        }
                        Some(v) => s.push_str(&esc(&compact(v))),
                        None => {}
                    }
                    s.push_str("</td>");
                }
                s.push_str("</tr>");
            }
            s.push_str("</table>");
            if items.len() > rows_max {
                let _ = write!(s, "<p class=\"note\">… {} more</p>", items.len() - rows_max);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let shown: Vec<String> = items
                .iter()
                .take(rows_max)
                .map(|i| esc(&compact(i)))
                .collect();
            s.push_str(&shown.join(", "));
            if items.len() > rows_max {
                let _ = write!(s, ", … {} more", items.len() - rows_max);
            }
        }
        other => s.push_str(&esc(&compact(other))),
    }
}

/// The page's stylesheet: system fonts only, nothing fetched.
pub const CSS: &str = r#"
:root { --ok:#2e9d4f; --fail:#d93b3b; --info:#e8890c; --pending:#8a8a8a; --ink:#1d2330; --mute:#5d6678; --line:#d8dce4; }
* { box-sizing: border-box; }
body { margin: 0; padding: 18px 22px 40px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #f6f7f9; }
h1 { font-size: 20px; margin: 0 0 6px; font-weight: 600; }
h2 { font-size: 16px; margin: 0 0 8px; font-weight: 600; }
h3 { font-size: 14px; margin: 12px 0 6px; font-weight: 600; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 14px 16px; margin: 0 0 14px; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 22px; color: var(--mute); margin: 4px 0 10px; }
.facts b { color: var(--ink); font-weight: 600; }
.verdict { display: inline-block; font-size: 26px; font-weight: 800; letter-spacing: .04em; padding: 2px 14px; border-radius: 6px; color: #fff; margin-right: 12px; vertical-align: middle; }
.warn-fault { color: var(--fail); font-weight: 600; }
.v-valid { background: var(--ok); } .v-invalid { background: var(--fail); } .v-unknown { background: var(--info); }
.small.v-valid, .small.v-invalid, .small.v-unknown { font-size: 12px; padding: 1px 7px; border-radius: 4px; color: #fff; font-weight: 700; }
.reason { font-size: 15px; vertical-align: middle; }
.note { color: var(--mute); font-size: 12.5px; margin: 4px 0; }
table.grid { border-collapse: collapse; font-size: 12.5px; margin: 4px 0 8px; }
table.grid th, table.grid td { border: 1px solid var(--line); padding: 2px 7px; text-align: left; vertical-align: top; }
table.grid th { background: #eef0f4; font-weight: 600; }
table.grid td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 1px 12px; margin: 2px 0; font-size: 12.5px; }
dl.kv dt { color: var(--mute); } dl.kv dd { margin: 0; }
code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; font-size: 12.5px; color: var(--mute); margin: 2px 0 6px; }
.sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -2px; margin-right: 4px; }
.cols { display: flex; flex-wrap: wrap; gap: 10px 40px; align-items: flex-start; }
details > summary { cursor: pointer; color: var(--mute); }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script src="x">'&'</script>"#),
            "&lt;script src=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn json_renders_tables_and_escapes() {
        let v = serde_json::json!({"k": [{"a": 1, "b": "<x>"}, {"a": 2}]});
        let h = json_html(&v, 4, 10);
        assert!(h.contains("<th>a</th><th>b</th>"));
        assert!(h.contains("&lt;x&gt;"));
        assert!(!h.contains("<x>"));
    }

    #[test]
    fn brief_values_drop_the_quotes() {
        let v =
            serde_json::json!({"ballot": {"node": "n3", "round": 1}, "key": 0, "tags": ["a", 2]});
        assert_eq!(brief(&v), "ballot=(n3,1) key=0 tags=[a,2]");
        assert_eq!(brief(&serde_json::json!("x")), "x");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(short_ns(850_000.0), "850 µs");
        assert_eq!(short_ns(2_500_000.0), "2.50 ms");
        assert_eq!(short_ns(3_200_000_000.0), "3.20 s");
    }
}
