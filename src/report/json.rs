//! JSON renderer: the report model as it is, with serde (schema in `docs/schema.md`).

use super::Report;
use std::io::{self, Write};

/// Writes the whole report as pretty-printed JSON followed by a newline.
pub fn write(report: &Report, mut out: impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut out, report).map_err(io::Error::other)?;
    out.write_all(b"\n")
}
