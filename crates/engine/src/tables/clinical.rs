use indexmap::IndexMap;
use polars::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

use crate::diagnostics::{Diagnostic, Diagnostics, Origin};

/// The clinical schema file (`schemas/clinical.yaml`): one rule per column.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClinicalSchema {
    pub columns: IndexMap<String, ColumnRule>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    #[serde(rename = "type")]
    pub dtype: ColumnType,
    /// The column must exist (default true).
    #[serde(default = "yes")]
    pub required: bool,
    /// Empty cells allowed (default false).
    #[serde(default)]
    pub nullable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Allowed values (categories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    String,
    Integer,
    Number,
    Category,
}

impl ColumnType {
    fn polars(self) -> DataType {
        match self {
            ColumnType::String | ColumnType::Category => DataType::String,
            ColumnType::Integer => DataType::Int64,
            ColumnType::Number => DataType::Float64,
        }
    }
}

/// How the binary label is derived: `{ name: pdl1_high, from: cps, rule: ">= 20" }`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelRule {
    pub name: String,
    pub from: String,
    /// A comparison with a number: `>= 20`, `> 0.5`, `== 1`, `< 3`, `<= 3`, `!= 0`.
    pub rule: String,
}

impl LabelRule {
    /// (operator, threshold), or what is wrong with the rule.
    pub fn parse(&self) -> Result<(&str, f64), String> {
        let rule = self.rule.trim();
        for op in [">=", "<=", "==", "!=", ">", "<"] {
            if let Some(rest) = rule.strip_prefix(op) {
                return rest.trim().parse::<f64>().map(|t| (op, t)).map_err(|_| format!("`{}`: `{}` is not a number", self.rule, rest.trim()));
            }
        }
        Err(format!("`{}` does not start with one of >=, <=, ==, !=, >, <", self.rule))
    }

    fn apply(op: &str, x: f64, t: f64) -> bool {
        match op {
            ">=" => x >= t,
            "<=" => x <= t,
            "==" => x == t,
            "!=" => x != t,
            ">" => x > t,
            _ => x < t,
        }
    }
}

/// A clinical table read from a file, with its patient ids.
#[derive(Debug, Clone)]
pub struct Table {
    pub path: PathBuf,
    pub df: DataFrame,
    pub id_column: String,
    pub ids: Vec<String>,
}

impl Table {
    /// Where row `row` (0-based) and column `col` are: a CSV gives line:col.
    pub fn origin(&self, row: usize, column: &str) -> Origin {
        let is_csv = self.path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if is_csv {
            let col = self.df.get_column_names().iter().position(|c| c.as_str() == column).unwrap_or(0) + 1;
            Origin::File { path: self.path.clone(), line: row + 2, col }
        } else {
            Origin::Unknown(self.path.clone())
        }
    }

    pub(crate) fn row_label(&self, row: usize) -> String {
        match self.ids.get(row) {
            Some(id) if !id.is_empty() => format!("row {} (patient {id})", row + 1),
            _ => format!("row {}", row + 1),
        }
    }

    /// Read a CSV or Parquet table and its patient ids (unique, non-empty).
    pub fn read(path: &Path, id_column: &str) -> Result<Table, Diagnostics> {
        let whole = Origin::Unknown(path.to_path_buf());
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let df = match ext.as_str() {
            "csv" => read_csv(path),
            "parquet" | "pq" => std::fs::File::open(path).map_err(PolarsError::from).and_then(|f| ParquetReader::new(f).finish()),
            _ => return Err(Diagnostic::new(whole, "unsupported table format").hint("clinical tables are `.csv` or `.parquet` files").into()),
        };
        let df = df.map_err(|e| {
            let hint =
                if path.exists() { "check that it is a valid table with a header row" } else { "check the cohort's `table:` path (relative to the workspace)" };
            Diagnostic::new(whole.clone(), format!("cannot read the table: {e}")).hint(hint)
        })?;
        let mut table = Table { path: path.to_path_buf(), df, id_column: id_column.to_string(), ids: Vec::new() };
        let Ok(col) = table.df.column(id_column) else {
            return Err(Diagnostic::new(whole, format!("no patient id column `{id_column}`"))
                .hint(format!(
                    "set the cohort's `id_column:`; the table has: {}",
                    table.df.get_column_names().iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
                ))
                .into());
        };
        let ids = col.cast(&DataType::String).map_err(|e| Diagnostic::new(whole.clone(), e.to_string()))?;
        let ids: Vec<Option<String>> = ids.str().map_err(|e| Diagnostic::new(whole, e.to_string()))?.iter().map(|s| s.map(|s| s.trim().to_string())).collect();
        let mut diags = Diagnostics::default();
        let mut first_row: std::collections::HashMap<&str, usize> = Default::default();
        for (row, id) in ids.iter().enumerate() {
            match id.as_deref() {
                None | Some("") => {
                    diags.push(Diagnostic::new(table.origin(row, id_column), format!("row {}: empty patient id", row + 1)).hint("every row needs a patient id"))
                }
                Some(id) => {
                    if let Some(prev) = first_row.insert(id, row) {
                        diags.push(
                            Diagnostic::new(table.origin(row, id_column), format!("patient `{id}` appears twice (rows {} and {})", prev + 1, row + 1))
                                .hint("patient ids must be unique; remove or rename one of the rows"),
                        );
                    }
                }
            }
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        table.ids = ids.into_iter().map(Option::unwrap_or_default).collect();
        Ok(table)
    }

    /// Check the table against the schema; every violation is reported.
    pub fn check(&self, schema: &ClinicalSchema) -> Diagnostics {
        let mut diags = Diagnostics::default();
        let whole = Origin::Unknown(self.path.clone());
        for (name, rule) in &schema.columns {
            let Ok(column) = self.df.column(name) else {
                if rule.required {
                    diags.push(
                        Diagnostic::new(whole.clone(), format!("required column `{name}` is missing"))
                            .hint("add the column, or mark it `required: false` in the clinical schema"),
                    );
                }
                continue;
            };
            let text = column.cast(&DataType::String).ok();
            let text: Vec<Option<String>> =
                text.as_ref().and_then(|c| c.str().ok()).map(|s| s.iter().map(|v| v.map(str::to_string)).collect()).unwrap_or_default();
            let mut bad = 0usize;
            let mut report = |row: usize, msg: String, hint: &str| {
                bad += 1;
                if bad <= 20 {
                    diags.push(Diagnostic::new(self.origin(row, name), format!("{}, column `{name}`: {msg}", self.row_label(row))).hint(hint.to_string()));
                }
            };
            let numeric = matches!(rule.dtype, ColumnType::Integer | ColumnType::Number);
            for (row, cell) in text.iter().enumerate() {
                let Some(cell) = cell.as_deref().map(str::trim).filter(|c| !c.is_empty()) else {
                    if !rule.nullable {
                        report(row, "empty value".into(), "fill it in, or mark the column `nullable: true`");
                    }
                    continue;
                };
                if numeric {
                    let Ok(x) = cell.parse::<f64>() else {
                        report(row, format!("`{cell}` is not a number"), "use a plain number such as 42 or 3.5");
                        continue;
                    };
                    if rule.dtype == ColumnType::Integer && x.fract() != 0.0 {
                        report(row, format!("`{cell}` is not an integer"), "use a whole number");
                    }
                    if let Some(min) = rule.min.filter(|m| x < *m) {
                        report(row, format!("{x} is below the minimum {min}"), "check the value or the schema's `min`");
                    }
                    if let Some(max) = rule.max.filter(|m| x > *m) {
                        report(row, format!("{x} is above the maximum {max}"), "check the value or the schema's `max`");
                    }
                }
                if let Some(values) = &rule.values {
                    let allowed: Vec<String> = values.iter().map(value_text).collect();
                    let matches = allowed.iter().any(|a| a == cell || (numeric && a.parse::<f64>().ok() == cell.parse::<f64>().ok()));
                    if !matches {
                        report(row, format!("`{cell}` is not one of {}", allowed.join(", ")), "fix the value or add it to the schema's `values`");
                    }
                }
            }
            if bad > 20 {
                diags.push(Diagnostic::new(whole.clone(), format!("column `{name}`: {} more invalid rows not shown", bad - 20)));
            }
        }
        diags
    }

    /// The table with schema columns cast to their types and other columns as text.
    pub fn typed(&self, schema: Option<&ClinicalSchema>) -> PolarsResult<DataFrame> {
        let columns = self
            .df
            .columns()
            .iter()
            .map(|c| {
                let target = schema.and_then(|s| s.columns.get(c.name().as_str())).map(|r| r.dtype.polars()).unwrap_or(DataType::String);
                c.cast(&target)
            })
            .collect::<PolarsResult<Vec<Column>>>()?;
        DataFrame::new_infer_height(columns)
    }

    /// The label column: 1 where `rule` holds for `from`, 0 where not; errors name the rows.
    pub fn label(&self, rule: &LabelRule) -> Result<Vec<i32>, Diagnostics> {
        let whole = Origin::Unknown(self.path.clone());
        let (op, threshold) = rule.parse().map_err(|m| Diagnostics::from(Diagnostic::new(whole.clone(), m)))?;
        let Ok(column) = self.df.column(&rule.from) else {
            return Err(Diagnostic::new(whole, format!("the label's column `{}` is missing", rule.from)).into());
        };
        let values = column.cast(&DataType::Float64).map_err(|e| Diagnostic::new(whole.clone(), e.to_string()))?;
        let values = values.f64().map_err(|e| Diagnostic::new(whole, e.to_string()))?;
        let mut diags = Diagnostics::default();
        let mut out = Vec::with_capacity(values.len());
        for (row, v) in values.iter().enumerate() {
            match v {
                Some(x) if x.is_finite() => out.push(LabelRule::apply(op, x, threshold) as i32),
                _ => diags.push(
                    Diagnostic::new(
                        self.origin(row, &rule.from),
                        format!("{}, column `{}`: no numeric value to derive `{}`", self.row_label(row), rule.from, rule.name),
                    )
                    .hint("every patient needs a value for the label's source column"),
                ),
            }
        }
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(diags)
        }
    }
}

/// A CSV table with a header, column types inferred from every row.
pub fn read_csv(path: &Path) -> PolarsResult<DataFrame> {
    CsvReadOptions::default().with_has_header(true).with_infer_schema_length(None).try_into_reader_with_file_path(Some(path.to_path_buf()))?.finish()
}

/// A YAML value (an allowed category, a label's positive value, an event
/// value) as a table's text shows it: `yes`, `1` (also for `1.0`), `true` as `1`.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()).map(|x| format!("{x}")).unwrap_or_else(|| n.to_string()),
        Value::Bool(b) => (*b as u8).to_string(),
        other => other.to_string(),
    }
}
