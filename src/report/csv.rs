//! CSV renderer: `attempts.csv`, `events.csv` and `summary.csv` for spreadsheets. A header
//! row; fields quoted only when needed, quotes doubled (RFC 4180), lines ended by `\n`;
//! null as an empty field; every time as integer nanoseconds with a UTC ISO-8601 column
//! beside it. Columns: `docs/schema.md`, "Tables".

use super::Report;
use super::frames;
use polars::prelude::*;
use std::io::{self, Write};
use std::path::Path;

fn write_df(df: &mut DataFrame, out: impl Write) -> PolarsResult<()> {
    CsvWriter::new(out)
        .include_header(true)
        .with_quote_style(QuoteStyle::Necessary)
        .finish(df)
}

/// Writes `attempts.csv`, `events.csv` and `summary.csv` into `dir` (created if missing).
pub fn write_dir(report: &Report, dir: &Path) -> io::Result<()> {
    frames::write_tables(report, dir, "csv", |df, out| write_df(df, out))
}
