//! What the statistics stages (`evaluate`, `survival`, `table1`) share, one
//! concern per file: the ingested table with each patient's cohort and split
//! partition (`table`), score outputs of other stages (`scores`), the
//! missing-values policy (`missing`), plan-time checks (`checks`), and their
//! outputs (`outputs`): `metrics.json`, the tables and CSV files.

mod checks;
mod missing;
mod outputs;
mod scores;
mod table;

pub use checks::{check_cohorts, check_group_name, check_has_ingest, check_score_input, into_result};
pub use missing::{apply_missing, Missing};
pub use outputs::{dropped_note, list_ids, num, slug, write, write_dropped, write_metrics, write_patients, write_tables, Csv, Metric, TABLE_JSON};
pub use radpipe_engine::tables::value_text;
pub use scores::{score_source, score_values, stage_scores, ScoreSource, Scores};
pub use table::{sort_levels, Cell, Study};
