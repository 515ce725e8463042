//! Small text helpers shared across the harness: quoted text cut to a bound, and the
//! durations every command's flags take.

/// `s` cut to at most `n` bytes (at a character boundary) with `...` when it was longer:
/// for node output and reasons quoted in messages.
pub fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
}

/// Parses `250ms`, `5s`, `2m`, `8h` or a bare number of seconds into milliseconds.
pub fn parse_duration_ms(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let (num, mult) = if let Some(n) = raw.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = raw.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = raw.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = raw.strip_suffix('h') {
        (n, 3_600_000.0)
    } else {
        (raw, 1_000.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{raw}' is not a duration (e.g. 500ms, 5s, 2m, 8h)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!(
            "'{raw}' is not a duration (e.g. 500ms, 5s, 2m, 8h)"
        ));
    }
    let ms = (v * mult).round();
    // `as u64` would saturate silently; a duration this long is a typo.
    if ms >= u64::MAX as f64 {
        return Err(format!("'{raw}' is too long a duration"));
    }
    Ok(ms as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("5s"), Ok(5_000));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1_500));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("8h"), Ok(28_800_000));
        assert_eq!(parse_duration_ms("3"), Ok(3_000));
        assert!(parse_duration_ms("soon").is_err());
        assert!(parse_duration_ms("-1s").is_err());
    }
}
