//! Newline-delimited framing with a hard limit on frame size.
//!
//! A frame is one line without its `\n`. A partial line is `Ok(None)`; a line longer than
//! [`FRAME_BYTES_MAX`] is an error and the connection that sent it is faulty.

use thiserror::Error;

/// The largest frame accepted, in bytes, excluding the newline.
pub const FRAME_BYTES_MAX: usize = 1 << 20;

/// Why a byte stream could not be framed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// A line exceeded [`FRAME_BYTES_MAX`].
    #[error("frame of at least {0} bytes exceeds the {FRAME_BYTES_MAX}-byte limit")]
    TooLong(usize),
}

/// Incremental line splitter: push bytes in, take whole lines out.
#[derive(Debug, Default)]
pub struct LineDecoder {
    buf: Vec<u8>,
    start: usize,
    scanned: usize,
}

impl LineDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.scanned = 0;
            self.start = 0;
        } else if self.start > (1 << 16) && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete line, without its newline (and without a trailing `\r`).
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let from = self.scanned.max(self.start);
        match self.buf[from..].iter().position(|&b| b == b'\n') {
            Some(pos) => {
                let end = from + pos;
                let line_start = self.start;
                if end - line_start > FRAME_BYTES_MAX {
                    return Err(FrameError::TooLong(end - line_start));
                }
                self.start = end + 1;
                self.scanned = self.start;
                let mut line = &self.buf[line_start..end];
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                Ok(Some(line))
            }
            None => {
                self.scanned = self.buf.len();
                let pending = self.buf.len() - self.start;
                if pending > FRAME_BYTES_MAX {
                    return Err(FrameError::TooLong(pending));
                }
                Ok(None)
            }
        }
    }

    /// Bytes received but not yet returned as a frame.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(dec: &mut LineDecoder) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(f) = dec.next_frame().unwrap() {
            out.push(String::from_utf8(f.to_vec()).unwrap());
        }
        out
    }

    #[test]
    fn splits_across_pushes() {
        let mut dec = LineDecoder::new();
        dec.push(b"ab");
        assert!(frames(&mut dec).is_empty());
        dec.push(b"c\nde\r\nf");
        assert_eq!(frames(&mut dec), vec!["abc", "de"]);
        dec.push(b"\n");
        assert_eq!(frames(&mut dec), vec!["f"]);
        assert_eq!(dec.pending(), 0);
    }

    #[test]
    fn rejects_oversized_line_before_newline_arrives() {
        let mut dec = LineDecoder::new();
        dec.push(&vec![b'x'; FRAME_BYTES_MAX + 1]);
        assert_eq!(
            dec.next_frame(),
            Err(FrameError::TooLong(FRAME_BYTES_MAX + 1))
        );
    }

    #[test]
    fn accepts_line_at_the_limit() {
        let mut dec = LineDecoder::new();
        let mut data = vec![b'x'; FRAME_BYTES_MAX];
        data.push(b'\n');
        dec.push(&data);
        assert_eq!(
            dec.next_frame().unwrap().map(|f| f.len()),
            Some(FRAME_BYTES_MAX)
        );
    }
}
