//! Exponentially decayed windows of observations.

use serde::{Deserialize, Serialize};

/// Decayed weight, sum and sum of squares of one quantity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub w: f64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl Moments {
    pub fn add(&mut self, x: f64, weight: f64) {
        self.w += weight;
        self.sum += weight * x;
        self.sum_sq += weight * x * x;
    }

    fn scale(&mut self, f: f64) {
        self.w *= f;
        self.sum *= f;
        self.sum_sq *= f;
    }

    pub fn merge(&mut self, other: &Moments) {
        self.w += other.w;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }

    /// What is left of `self` without `part` (a group without one of its members). Both must
    /// be decayed to the same instant.
    pub fn minus(&self, part: &Moments) -> Moments {
        Moments {
            w: (self.w - part.w).max(0.0),
            sum: (self.sum - part.sum).max(0.0),
            sum_sq: (self.sum_sq - part.sum_sq).max(0.0),
        }
    }

    /// The mean shrunk toward `prior` as if `prior_w` observations of it had been seen.
    pub fn shrunk_mean(&self, prior: f64, prior_w: f64) -> f64 {
        let w = self.w + prior_w;
        if w <= 0.0 {
            prior
        } else {
            (self.sum + prior_w * prior) / w
        }
    }

    /// The data's variance, when there is enough of it.
    pub fn variance(&self) -> Option<f64> {
        if self.w < 2.0 {
            return None;
        }
        let mean = self.sum / self.w;
        Some((self.sum_sq / self.w - mean * mean).max(0.0))
    }
}

/// What is known about one provider for one group (a region, an anchor, everyone).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Per-report rebuffer ratio.
    pub rebuffer: Moments,
    /// Per-report startup time in seconds (reports that cover a start).
    pub startup: Moments,
    /// Per-report failure (0 or 1).
    pub error: Moments,
    /// Per-report bad session (0 or 1).
    pub bad: Moments,
    /// Ingest: per-observation "not flowing" (0 or 1).
    pub unhealthy: Moments,
    /// Per steering reload: the throughput the player measured, as its natural log (bits per
    /// second), weighed as the reload's rebuffer evidence is. An edge past its capacity shows
    /// here first: every player's share of it falls.
    #[serde(default)]
    pub throughput: Moments,
    /// Per stint (a player session's stretch on one provider): bad (1) or not (0), counted
    /// when the stint first reports and again only when it first tells a stall. Per report,
    /// the players who stayed on a provider outnumber those who stalled and left; per stint,
    /// each counts once.
    #[serde(default)]
    pub stints: Moments,
    /// When the sums were last decayed, unix ms.
    pub last_ms: i64,
}

impl Window {
    /// Decays the sums to `now_ms`: an observation `half_life_ms` old counts half.
    pub fn decay_to(&mut self, now_ms: i64, half_life_ms: f64) {
        if now_ms <= self.last_ms {
            return;
        }
        if self.last_ms > 0 && half_life_ms > 0.0 {
            let f = 0.5f64.powf((now_ms - self.last_ms) as f64 / half_life_ms);
            for m in [
                &mut self.rebuffer,
                &mut self.startup,
                &mut self.error,
                &mut self.bad,
                &mut self.unhealthy,
                &mut self.throughput,
                &mut self.stints,
            ] {
                m.scale(f);
            }
        }
        self.last_ms = now_ms;
    }

    /// A copy decayed to `now_ms`.
    pub fn at(&self, now_ms: i64, half_life_ms: f64) -> Window {
        let mut w = self.clone();
        w.decay_to(now_ms, half_life_ms);
        w
    }

    /// Adds another window's sums (both decayed to the same instant first).
    pub fn merge(&mut self, other: &Window, now_ms: i64, half_life_ms: f64) {
        self.decay_to(now_ms, half_life_ms);
        let o = other.at(now_ms, half_life_ms);
        self.rebuffer.merge(&o.rebuffer);
        self.startup.merge(&o.startup);
        self.error.merge(&o.error);
        self.bad.merge(&o.bad);
        self.unhealthy.merge(&o.unhealthy);
        self.throughput.merge(&o.throughput);
        self.stints.merge(&o.stints);
    }

    /// Reports held (decayed), the delivery side.
    pub fn samples(&self) -> f64 {
        self.bad.w
    }

    /// Whether anything is held at all.
    pub fn is_empty(&self) -> bool {
        self.bad.w < 1e-6 && self.unhealthy.w < 1e-6 && self.startup.w < 1e-6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_life_halves() {
        let mut w = Window::default();
        w.decay_to(1_000, 10_000.0);
        w.bad.add(1.0, 4.0);
        w.decay_to(11_000, 10_000.0);
        assert!((w.bad.w - 2.0).abs() < 1e-9);
        assert!((w.bad.sum - 2.0).abs() < 1e-9);
        // Time going backwards changes nothing.
        w.decay_to(5_000, 10_000.0);
        assert!((w.bad.w - 2.0).abs() < 1e-9);
    }

    #[test]
    fn shrinkage_moves_from_prior_to_data() {
        let mut m = Moments::default();
        assert_eq!(m.shrunk_mean(0.1, 10.0), 0.1);
        m.add(1.0, 10.0);
        assert!((m.shrunk_mean(0.1, 10.0) - 0.55).abs() < 1e-9);
        m.add(1.0, 980.0);
        assert!(m.shrunk_mean(0.1, 10.0) > 0.99);
        assert!(m.variance().unwrap() < 1e-9);
    }
}
