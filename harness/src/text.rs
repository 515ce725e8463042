//! Small text helpers shared across the harness: quoted text cut to a bound.

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
