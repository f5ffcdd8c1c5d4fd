//! livesteer's integration tests: one binary (one link) with a module per area.

mod api;
mod cli;
mod dashboards;
mod directory;
mod jobs;
mod master;
mod origin;
mod payments;
mod probes;
mod providers;
mod rooms;
mod scoring;
mod sim;
mod steering;
mod store;
mod support;
