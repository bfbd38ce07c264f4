//! The engine: pipeline file -> plan -> cached, parallel execution, with status
//! and lineage read from the store.
//!
//! - `yaml`: the span-keeping YAML tree, `--set` overrides, `${params.x}`.
//! - `spec`: the typed pipeline file and its JSON Schema.
//! - `plan`: nodes, edges, cycles, topological order.
//! - `key`: cache keys. `store`: objects, actions, runs, lock, memo.
//! - `exec`: the scheduler. `status`: why-stale. `lineage`: number -> sources.
//! - `diagnostics`: problems with file:line:col. `events`: what the CLI shows.
//! - `worker`: spawns `radpipe-nn` for deep-learning nodes (libtorch stays out).

pub mod diagnostics;
pub mod events;
pub mod exec;
mod key;
pub mod lineage;
pub mod partition;
pub mod plan;
pub mod spec;
pub mod stage;
pub mod status;
pub mod store;
pub mod tables;
pub mod worker;
pub mod yaml;

pub use diagnostics::{Diagnostic, Diagnostics};
pub use plan::Plan;
