//! The scoring engine: ranks providers per viewer region (delivery smoothness) and per anchor
//! (ingest smoothness) from player QoS reports, switch calls, probes, provider statistics and
//! origin callbacks.
//!
//! - **Windows** ([`window`]): exponentially decayed sums per (provider, region) for delivery
//!   and per (provider, anchor) for ingest; the policy sets the half-life.
//! - **Score**: a cost (lower is better) combining rebuffer ratio, startup time, error rate and
//!   bad-session rate with the policy's weights, plus price per GB if weighted. Each estimate is
//!   shrunk toward its broader group when the window is thin (Pytheas-style grouping: provider ×
//!   region → provider everywhere → every provider → the policy's prior), so a small region
//!   with little data borrows what is known elsewhere.
//! - **Exploration**: a share of play decisions (the policy's `exploration_rate`) draws each
//!   carrier's cost from its posterior (Thompson sampling on a normal approximation) and puts
//!   the lowest draw first, so a provider that recovered is noticed.
//! - **Hysteresis**: a challenger must be cheaper than the incumbent by the margin for the hold
//!   time before it takes first place, so noise does not bounce viewers around.
//! - **Controls**: drains (policy and run time), per-region pins and exclusions, a maximum share
//!   of first places per provider ([`share`], which the simulator's baselines obey too), and
//!   commit shares for contracted volume.
//!
//! **Architecture invariant:** no I/O and no wall clock: callers pass `now_ms` and an rng, so a
//! test or the simulator replays exactly. The [`Engine`] is mutated by one consumer of the
//! signal bus; the hot path ranks with an immutable [`Snapshot`] the engine rebuilds.

pub mod engine;
pub mod score;
pub mod share;
pub mod snapshot;
pub mod tally;
pub mod window;

pub use engine::{Engine, WindowKind};
pub use score::{Drift, Incumbency, Score};
pub use snapshot::{Pick, RegionRank, Snapshot};
pub use tally::ReloadTally;

#[cfg(test)]
pub(crate) mod tests;
