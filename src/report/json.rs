//! JSON renderer: the report model as it is, with serde (schema in `docs/schema.md`).

use super::Report;
use crate::capture::CaptureReport;
use std::io::{self, Write};

/// Writes the whole report as compact JSON followed by a newline (for people: `| jq .`;
/// pretty-printing a million-packet report doubles its size and the time to write it).
pub fn write(report: &Report, mut out: impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut out, report).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

/// The connections of one capture as a JSON array and a newline (`pcapdiag flows --json`).
pub fn write_connections(capture: &CaptureReport, mut out: impl Write) -> io::Result<()> {
    serde_json::to_writer(&mut out, &capture.connections).map_err(io::Error::other)?;
    out.write_all(b"\n")
}
