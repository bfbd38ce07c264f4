//! The fit/apply partition contract. A stage that defines partitions (a split)
//! writes [`FILE`]: one row per patient with `patient_id`, `cohort`,
//! `partition`, then the label columns it carries. The engine reads it to give
//! a fit node only the patients of its `fit_on` partitions; learning stages
//! read their labels from it. CSV, read and written by the `csv` crate, so a
//! value with a comma, a quote or a newline stays one field.

use std::collections::BTreeMap;

/// The file name of a partition in a split's outputs.
pub const FILE: &str = "partition.csv";

/// The three leading columns of a partition file.
const LEADING: [&str; 3] = ["patient_id", "cohort", "partition"];

/// One patient of a partition file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub patient: String,
    pub cohort: String,
    pub partition: String,
    /// Values of the label columns, parallel to [`Partition::columns`].
    pub values: Vec<String>,
}

/// A partition file, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partition {
    /// The label columns after the leading three.
    pub columns: Vec<String>,
    pub rows: Vec<Assignment>,
}

/// A partition file that cannot be read, with the record where it went wrong.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("{FILE}: {0}")]
    Csv(#[from] csv::Error),
    #[error("{FILE}: the header must start with patient_id,cohort,partition (it is: {0})")]
    Header(String),
    #[error("{FILE}: no column `{column}` (it has: {known}); it holds the stratification column and the ingest label")]
    NoColumn { column: String, known: String },
}

impl Partition {
    /// Serialise as CSV (quoting only where needed).
    pub fn to_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(LEADING.iter().copied().chain(self.columns.iter().map(String::as_str)))?;
        for r in &self.rows {
            w.write_record([&r.patient, &r.cohort, &r.partition].into_iter().chain(&r.values))?;
        }
        w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
    }

    /// Parse a partition file.
    pub fn from_csv(bytes: &[u8]) -> Result<Partition, PartitionError> {
        let mut r = csv::Reader::from_reader(bytes);
        let header: Vec<String> = r.headers()?.iter().map(str::to_string).collect();
        if header.len() < LEADING.len() || header[..LEADING.len()] != LEADING {
            return Err(PartitionError::Header(header.join(",")));
        }
        let mut rows = Vec::new();
        for record in r.records() {
            let record = record?;
            let field = |i: usize| record.get(i).unwrap_or_default().to_string();
            rows.push(Assignment { patient: field(0), cohort: field(1), partition: field(2), values: (LEADING.len()..header.len()).map(field).collect() });
        }
        Ok(Partition { columns: header[LEADING.len()..].to_vec(), rows })
    }

    /// Patient id -> partition.
    pub fn partition_of(&self) -> BTreeMap<String, String> {
        self.rows.iter().map(|r| (r.patient.clone(), r.partition.clone())).collect()
    }

    /// Patient id -> value of a label column.
    pub fn column(&self, column: &str) -> Result<BTreeMap<String, String>, PartitionError> {
        let k = self.columns.iter().position(|c| c == column).ok_or_else(|| PartitionError::NoColumn {
            column: column.to_string(),
            known: LEADING.iter().copied().chain(self.columns.iter().map(String::as_str)).collect::<Vec<_>>().join(", "),
        })?;
        Ok(self.rows.iter().map(|r| (r.patient.clone(), r.values[k].clone())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_commas_quotes_and_newlines_survive_a_round_trip() {
        let p = Partition {
            columns: vec!["grade, WHO".into(), "label".into()],
            rows: vec![
                Assignment { patient: "P1".into(), cohort: "c".into(), partition: "train".into(), values: vec!["G1, \"well\"\ndiff".into(), "1".into()] },
                Assignment { patient: "P2".into(), cohort: "c".into(), partition: "internal".into(), values: vec![String::new(), "0".into()] },
            ],
        };
        let bytes = p.to_csv().unwrap();
        let back = Partition::from_csv(&bytes).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.column("label").unwrap()["P1"], "1");
        assert_eq!(back.partition_of()["P2"], "internal");
    }

    #[test]
    fn plain_values_are_written_without_quotes() {
        let p = Partition {
            columns: vec!["pdl1_high".into()],
            rows: vec![Assignment { patient: "P1".into(), cohort: "inst1".into(), partition: "train".into(), values: vec!["1".into()] }],
        };
        assert_eq!(String::from_utf8(p.to_csv().unwrap()).unwrap(), "patient_id,cohort,partition,pdl1_high\nP1,inst1,train,1\n");
    }

    #[test]
    fn a_wrong_header_and_an_unknown_column_are_named() {
        let e = Partition::from_csv(b"id,partition\nP1,train\n").unwrap_err();
        assert!(e.to_string().contains("patient_id,cohort,partition"), "{e}");
        let p = Partition::from_csv(b"patient_id,cohort,partition,y\nP1,c,train,1\n").unwrap();
        let e = p.column("z").unwrap_err().to_string();
        assert!(e.contains("`z`") && e.contains("y"), "{e}");
    }
}
