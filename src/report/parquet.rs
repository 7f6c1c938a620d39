//! Parquet renderer: the same three tables as the CSV export (`attempts.parquet`,
//! `events.parquet`, `summary.parquet`), typed (Int64, Float64, Boolean, String; no
//! unsigned types, which Spark cannot read), zstd-compressed, for DuckDB, pandas or Spark.

use super::Report;
use super::frames;
use polars::prelude::*;
use std::io::{self, Write};
use std::path::Path;

fn write_df(df: &mut DataFrame, out: impl Write) -> PolarsResult<()> {
    ParquetWriter::new(out).finish(df).map(|_| ())
}

/// Writes `attempts.parquet`, `events.parquet` and `summary.parquet` into `dir` (created if
/// missing).
pub fn write_dir(report: &Report, dir: &Path) -> io::Result<()> {
    frames::write_tables(report, dir, "parquet", |df, out| write_df(df, out))
}
