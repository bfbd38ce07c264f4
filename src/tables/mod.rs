//! Clinical tables in Polars: reading CSV/Parquet, the clinical schema (required
//! columns, types, categories, ranges), patient ids and labels. Every error
//! names the file, the row (and CSV line) and the column.

mod clinical;

pub use clinical::{ClinicalSchema, ColumnRule, ColumnType, LabelRule, Table};
