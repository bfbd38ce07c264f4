//! Execution. The scheduler ([`schedule`]) walks the plan in topological
//! order: for each ready node it computes the key from its material
//! ([`material`]); a recorded action with all its objects present is a cache hit
//! (outputs restored where users expect them, [`outputs`]); the others become
//! [`Unit`]s (one node, or a batch of a batching stage's ready nodes) whose
//! inputs are named by digest, handed to an [`Executor`]. An executor resolves
//! the inputs from the store, runs the stage in a private folder and commits
//! each node's outputs: objects first, the action record last ([`unit`]).
//! A node whose upstream failed is skipped; a cohort-level node with
//! `on_missing: drop` runs on what is left and lists the dropped patients.

mod executor;
mod material;
mod outputs;
mod schedule;
pub mod slurm;
mod unit;

pub use executor::{Executor, LocalExecutor, SubprocessExecutor};
pub use schedule::{run, RunOptions, RunSummary};
pub use unit::{execute_unit, Unit, UnitInput, UnitNode, UnitOutcome};

pub(crate) use material::{active_upstream, key_material, selection_digest, source_digest};
