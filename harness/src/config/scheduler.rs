//! `--scheduler`: which lockstep scheduler orders deliveries. The type lives with the
//! run's configuration; the adversary itself is in `lockstep::adversary`.

use serde::{Deserialize, Serialize};

/// How a lockstep run orders deliveries (`--scheduler`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scheduler {
    /// Each message after its hop; the seed breaks ties.
    #[default]
    Random,
    /// The adversary; `hold` names decisive message types instead of the bundled
    /// algorithm's defaults.
    Adversary {
        /// Message types to hold, if given.
        hold: Option<Vec<String>>,
    },
}

impl Scheduler {
    /// Parses `random`, `adversary` or `adversary:TYPE,TYPE`.
    pub fn parse(raw: &str) -> Result<Scheduler, String> {
        let raw = raw.trim();
        if raw == "random" {
            return Ok(Scheduler::Random);
        }
        if raw == "adversary" {
            return Ok(Scheduler::Adversary { hold: None });
        }
        let bad = || format!("'{raw}' is not a scheduler (random, adversary, adversary:TYPE,...)");
        let types = raw.strip_prefix("adversary:").ok_or_else(bad)?;
        let hold: Vec<String> = types
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        if hold.is_empty() || hold.len() > 32 || hold.iter().any(|t| t.len() > 64) {
            return Err(bad());
        }
        Ok(Scheduler::Adversary { hold: Some(hold) })
    }

    /// Whether this is the default scheduler (left out of `run.json`).
    pub fn is_random(&self) -> bool {
        *self == Scheduler::Random
    }
}

impl std::fmt::Display for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scheduler::Random => f.write_str("random"),
            Scheduler::Adversary { hold: None } => f.write_str("adversary"),
            Scheduler::Adversary { hold: Some(h) } => write!(f, "adversary:{}", h.join(",")),
        }
    }
}

impl TryFrom<String> for Scheduler {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Scheduler::parse(&s)
    }
}

impl From<Scheduler> for String {
    fn from(s: Scheduler) -> String {
        s.to_string()
    }
}
