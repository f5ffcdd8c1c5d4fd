//! livesteer: the control plane between a live-streaming app and its CDNs.
//!
//! See `ARCHITECTURE.md` at the repository root for the bird's-eye view and the code map.

pub mod api;
pub mod auth;
pub mod callbacks;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod cmcd;
pub mod codes;
pub mod config;
pub mod directory;
pub mod geo;
pub mod jobs;
pub mod manifests;
pub mod metrics;
pub mod payments;
pub mod policy;
pub mod probes;
pub mod providers;
pub mod replicas;
pub mod rooms;
pub mod scorer;
pub mod scoring;
pub mod server;
pub mod signals;
pub mod sim;
pub mod state;
pub mod steering;
pub mod store;
pub mod streams;
pub mod vocab;
pub mod writebehind;
