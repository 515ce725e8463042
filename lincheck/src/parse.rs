//! Reading histories: Jepsen log lines, EDN op maps, and squall's `history.jsonl`.
//!
//! Every parser pairs invokes with completions per process (see
//! `history::Pairing`) and returns a [`History`]; errors carry the line number.
//! Line numbers serve as times in the formats that have no clock.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::history::History;
use crate::model::ModelKind;

pub mod edn;
pub mod jepsen_log;
pub mod squall;

/// A history file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `INFO  jepsen.util - <proc> <:type> <:f> <value>` lines (Jepsen etcd logs).
    JepsenLog,
    /// `{:process 0, :type :invoke, :f :get, :key "1", :value nil}` lines.
    Edn,
    /// squall's `history.jsonl`.
    Squall,
}

impl Format {
    /// Every format, in the order [`FromStr`](std::str::FromStr) lists them.
    pub const ALL: [Format; 3] = [Format::JepsenLog, Format::Edn, Format::Squall];

    /// The name used on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Format::JepsenLog => "jepsen-log",
            Format::Edn => "edn",
            Format::Squall => "squall",
        }
    }

    /// The model a history in this format is checked against unless told otherwise.
    pub fn default_model(self, history: &History) -> ModelKind {
        match self {
            Format::JepsenLog => ModelKind::CasRegister,
            Format::Edn => ModelKind::KvStrings,
            Format::Squall if history.has_propose() => ModelKind::WriteOnce,
            Format::Squall => ModelKind::Kv,
        }
    }

    /// Guesses the format from the file name, then from the first non-blank line.
    pub fn detect(path: &Path, text: &str) -> Option<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("log") => return Some(Format::JepsenLog),
            Some("jsonl") => return Some(Format::Squall),
            Some("edn") => return Some(Format::Edn),
            _ => {}
        }
        let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
        if line.starts_with("{\"") {
            Some(Format::Squall)
        } else if line.starts_with("{:") || line.starts_with('{') && line.contains(':') {
            Some(Format::Edn)
        } else if line.contains("jepsen.util") {
            Some(Format::JepsenLog)
        } else {
            None
        }
    }

    /// Parses `text` in this format.
    pub fn parse(self, text: &str) -> Result<History, ParseError> {
        match self {
            Format::JepsenLog => jepsen_log::parse(text),
            Format::Edn => edn::parse(text),
            Format::Squall => squall::parse(text),
        }
    }
}

named_set!(Format, UnknownFormat, "format");

/// A malformed history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            message: message.into(),
        }
    }
}
