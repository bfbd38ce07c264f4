//! Clinical tables in Polars: reading CSV/Parquet, the clinical schema (required
//! columns, types, categories, ranges), patient ids, labels and landmark labels. Every error
//! names the file, the row (and CSV line) and the column.

mod cells;
mod clinical;
mod landmark;

pub use cells::{cells, Cell};
pub use clinical::{value_text, ClinicalSchema, ColumnRule, ColumnType, LabelRule, Table};
pub use landmark::{EventColumn, Landmark, LandmarkRule, Unclassified};

use polars::prelude::*;
use std::path::Path;

/// Write a CSV table as Parquet (types inferred from the whole file).
pub fn csv_to_parquet(csv: &Path, parquet: &Path) -> PolarsResult<()> {
    let mut df = clinical::read_csv(csv)?;
    ParquetWriter::new(std::fs::File::create(parquet)?).finish(&mut df)?;
    Ok(())
}
