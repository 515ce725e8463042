//! What a `link_faults` event puts on a link: drop, delay, duplicate and reorder.
//!
//! The fault parameters are plain data; the random draws are made by the link table,
//! which hands the uniform numbers in here, so sampling is a pure function that tests
//! can check at its edges (`u = 0`, `u → 1`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::FaultKind;

/// An exponential delay's jitter is capped at this many means, so no message waits for
/// ever on an unlucky draw (`P(exceed) = e^-10 ≈ 4.5e-5`).
pub const EXP_JITTER_MEANS_MAX: f64 = 10.0;
/// A reordered message gets an extra delay drawn uniformly up to the larger of this and
/// twice the link's largest ordinary delay, so that later messages can overtake it.
pub const REORDER_WINDOW_MS_MIN: u64 = 10;

/// How the jitter of a delay is distributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DelayDist {
    /// Always `base_ms`; the jitter is ignored.
    Constant,
    /// `base_ms` plus a uniform draw in `[0, jitter_ms)`.
    Uniform,
    /// `base_ms` plus an exponential draw of mean `jitter_ms`, capped at
    /// [`EXP_JITTER_MEANS_MAX`] means.
    Exponential,
}

/// A delay fault: `{"dist": "uniform", "base_ms": 5, "jitter_ms": 20}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelaySpec {
    /// Distribution of the jitter.
    pub dist: DelayDist,
    /// Delay every message gets.
    pub base_ms: u64,
    /// Scale of the random part (0 when omitted).
    #[serde(default)]
    pub jitter_ms: u64,
}

impl DelaySpec {
    /// The delay for a uniform draw `u` in `[0, 1)`, in microseconds.
    pub fn sample_us(&self, u: f64) -> u64 {
        debug_assert!((0.0..1.0).contains(&u), "u must be in [0, 1): {u}");
        let base_us = self.base_ms.saturating_mul(1_000);
        let jitter_us = self.jitter_ms.saturating_mul(1_000) as f64;
        let extra_us = match self.dist {
            DelayDist::Constant => 0.0,
            DelayDist::Uniform => u * jitter_us,
            DelayDist::Exponential => {
                (-(1.0 - u).ln() * jitter_us).min(EXP_JITTER_MEANS_MAX * jitter_us)
            }
        };
        // `as` saturates for floats: a huge or NaN product cannot wrap.
        base_us.saturating_add(extra_us as u64)
    }

    /// The largest delay this spec can produce, in microseconds.
    pub fn max_us(&self) -> u64 {
        let jitter_us = self.jitter_ms.saturating_mul(1_000);
        let extra_us = match self.dist {
            DelayDist::Constant => 0,
            DelayDist::Uniform => jitter_us,
            DelayDist::Exponential => (EXP_JITTER_MEANS_MAX * jitter_us as f64) as u64,
        };
        self.base_ms.saturating_mul(1_000).saturating_add(extra_us)
    }
}

/// The message faults active on one directed link.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkFaults {
    /// Probability that a message is dropped.
    pub drop: f64,
    /// Delay of every delivered copy, if any.
    pub delay: Option<DelaySpec>,
    /// Probability that a delivered message is delivered twice.
    pub duplicate: f64,
    /// Probability that a copy may overtake earlier messages (gets `fifo: false`).
    pub reorder: f64,
    /// Only messages whose body `type` is in this set are affected; `None`: all.
    pub msg_types: Option<BTreeSet<String>>,
}

impl LinkFaults {
    /// Whether these faults apply to a message of body type `msg_type`.
    pub fn applies_to(&self, msg_type: &str) -> bool {
        match &self.msg_types {
            None => true,
            Some(types) => types.contains(msg_type),
        }
    }

    /// The fault kinds these faults amount to, in [`FaultKind`] order (none if every
    /// probability and delay is zero).
    pub fn kinds(&self) -> Vec<FaultKind> {
        [
            (self.drop > 0.0, FaultKind::Drop),
            (self.delay.is_some_and(|d| d.max_us() > 0), FaultKind::Delay),
            (self.duplicate > 0.0, FaultKind::Duplicate),
            (self.reorder > 0.0, FaultKind::Reorder),
        ]
        .into_iter()
        .filter_map(|(on, kind)| on.then_some(kind))
        .collect()
    }

    /// Upper bound of the extra delay a reordered copy gets, in microseconds (at least 1).
    pub fn reorder_window_us(&self) -> u64 {
        let ordinary_us = self.delay.map_or(0, |d| d.max_us());
        ordinary_us
            .saturating_mul(2)
            .max(REORDER_WINDOW_MS_MIN * 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dist: DelayDist) -> DelaySpec {
        DelaySpec {
            dist,
            base_ms: 5,
            jitter_ms: 20,
        }
    }

    #[test]
    fn constant_ignores_jitter() {
        let d = spec(DelayDist::Constant);
        assert_eq!(d.sample_us(0.0), 5_000);
        assert_eq!(d.sample_us(0.999), 5_000);
        assert_eq!(d.max_us(), 5_000);
    }

    #[test]
    fn uniform_spans_base_to_base_plus_jitter() {
        let d = spec(DelayDist::Uniform);
        assert_eq!(d.sample_us(0.0), 5_000);
        assert_eq!(d.sample_us(0.5), 15_000);
        assert!(d.sample_us(0.999_999) < d.max_us());
        assert_eq!(d.max_us(), 25_000);
    }

    #[test]
    fn exponential_has_its_mean_and_a_cap() {
        let d = spec(DelayDist::Exponential);
        assert_eq!(d.sample_us(0.0), 5_000);
        let n = 10_000;
        let sum: u64 = (0..n)
            .map(|i| d.sample_us((i as f64 + 0.5) / n as f64))
            .sum();
        let mean_us = sum / n;
        assert!((24_000..26_000).contains(&mean_us), "mean {mean_us}");
        let top = d.sample_us(1.0 - f64::EPSILON);
        assert!(top <= d.max_us() && d.max_us() == 205_000, "{top}");
    }

    #[test]
    fn type_filter_and_reorder_window() {
        let mut f = LinkFaults {
            delay: Some(spec(DelayDist::Uniform)),
            ..LinkFaults::default()
        };
        assert!(f.applies_to("accept"));
        f.msg_types = Some(BTreeSet::from(["accept".to_string()]));
        assert!(f.applies_to("accept") && !f.applies_to("prepare"));
        assert_eq!(f.reorder_window_us(), 50_000);
        assert_eq!(LinkFaults::default().reorder_window_us(), 10_000);
    }
}
