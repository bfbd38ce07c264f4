//! A column's cells as the statistics read them: a number where the value is
//! one (numeric and boolean columns, or text that parses; `TRUE`/`FALSE` in
//! any case, as R writes booleans, are 1 and 0 like a boolean column's),
//! text otherwise, and missing for an empty cell, `NA` or `NaN`.

use polars::prelude::*;

/// A cell of a column: missing, a number, or text that is not a number.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Missing,
    Number(f64),
    Text(String),
}

/// Every cell of `column`.
pub fn cells(column: &Column) -> PolarsResult<Vec<Cell>> {
    if column.dtype().is_primitive_numeric() || column.dtype() == &DataType::Boolean {
        let f = column.cast(&DataType::Float64)?;
        return Ok(f
            .f64()?
            .iter()
            .map(|v| match v {
                Some(x) if !x.is_nan() => Cell::Number(x),
                _ => Cell::Missing,
            })
            .collect());
    }
    let s = column.cast(&DataType::String)?;
    Ok(s.str()?
        .iter()
        .map(|v| match v.map(str::trim) {
            None | Some("") => Cell::Missing,
            Some(t) if t.eq_ignore_ascii_case("na") || t.eq_ignore_ascii_case("nan") => Cell::Missing,
            Some(t) if t.eq_ignore_ascii_case("true") => Cell::Number(1.0),
            Some(t) if t.eq_ignore_ascii_case("false") => Cell::Number(0.0),
            Some(t) => match t.parse::<f64>() {
                Ok(x) => Cell::Number(x),
                Err(_) => Cell::Text(t.to_string()),
            },
        })
        .collect())
}
