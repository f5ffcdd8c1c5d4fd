//! livesteer's integration tests: one binary (one link) with a module per area.

mod api;
mod architecture;
mod backends;
mod balancer;
mod cli;
mod cmcd;
mod dashboards;
mod directory;
mod durable;
mod jobs;
mod master;
mod media;
mod mpd;
mod openapi;
mod origin;
mod payments;
mod probes;
mod providers;
mod replicas;
mod rooms;
mod scoring;
mod sim;
mod steering;
mod store;
mod support;
