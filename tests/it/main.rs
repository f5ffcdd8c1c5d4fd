//! livesteer's integration tests: one binary (one link) with a module per area.

mod api;
mod cli;
mod jobs;
mod providers;
mod store;
mod support;
