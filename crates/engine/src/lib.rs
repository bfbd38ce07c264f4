//! The engine: pipeline file -> plan -> cached, parallel execution, with status
//! and lineage read from the store. It names no stage kind: kinds implement
//! [`stage::Stage`] in the crates above and come in through a
//! [`stage::Registry`], so Cargo keeps the dependency pointing down.
//!
//! - `yaml`: the span-keeping YAML tree, `--set` overrides, `${params.x}`.
//! - `spec`: the typed pipeline file (stages typed by the registry) and its JSON Schema.
//! - `stage`: the Stage and Registry traits, node declarations, the run context.
//! - `plan`: nodes, edges, cycles, topological order.
//! - `key` (private): cache keys. `store`: objects, actions, runs, lock, memo.
//!   `action_index` (private): which action records have all their objects.
//! - `remote`: the shared cache (S3 or a shared folder) behind the store.
//! - `resources`: what a stage's cluster jobs ask for (never in a key).
//! - `settings`: command line over `RADPIPE_*` over `radpipe.toml` over defaults.
//! - `exec`: the scheduler, units of work named by digest, executors (local
//!   threads, `exec-node` child processes, Slurm jobs). `status`: why-stale. `lineage`: number -> sources.
//! - `sweep`: the members of a sweep (`--vary`), their names and folders.
//! - `partition`: the fit/apply partition file. `tables`: cohort tables and the clinical schema.
//! - `diagnostics`: problems with file:line:col. `events`: what the CLI shows.
//! - `worker`: spawns `radpipe-nn` for deep-learning nodes (libtorch stays out).

mod action_index;
pub mod diagnostics;
pub mod events;
pub mod exec;
mod key;
pub mod lineage;
pub mod partition;
pub mod plan;
pub mod remote;
pub mod resources;
pub mod settings;
pub mod spec;
pub mod stage;
pub mod status;
pub mod store;
pub mod sweep;
pub mod tables;
pub mod worker;
pub mod yaml;

pub use diagnostics::{Diagnostic, Diagnostics};
pub use plan::Plan;
