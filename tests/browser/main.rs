//! The stock-player tests, in a test binary of their own.
//!
//! `cargo test` runs test binaries one after another, so the players, Chromium's decoders and
//! ffmpeg's live encode never share the machine's cores with the integration suite in
//! `tests/it` (its three-replica balancer, its simulations). Stalls measured here are the
//! players' and livesteer's, not the scheduler's.
//!
//! The nginx-rtmp origin and the test app are `tests/it`'s own modules; the edges in front of
//! the origin are this binary's.

#[path = "../it/media.rs"]
#[allow(dead_code)]
mod media;
#[path = "../it/support.rs"]
#[allow(dead_code)]
mod support;

mod edge;
mod players;
