//! Markdown renderer: the postmortem section people paste into an incident document
//! (GitHub-flavoured tables). Same content as the HTML report, without the charts.

use super::Report;
use super::postmortem::{self, Block, Line, Span};
use std::io::{self, Write};

/// Writes the postmortem section.
pub fn write(report: &Report, mut out: impl Write) -> io::Result<()> {
    let doc = postmortem::build(report);
    let mut first = true;
    for block in &doc {
        if matches!(block, Block::Chart(_)) {
            continue;
        }
        if !first {
            writeln!(out)?;
        }
        first = false;
        match block {
            Block::Heading(level, text) => {
                writeln!(out, "{} {}", "#".repeat(*level as usize), text_esc(text))?
            }
            Block::Para(line) => writeln!(out, "{}", inline(line, false))?,
            Block::List(items) => {
                for item in items {
                    writeln!(out, "- {}", inline(item, false))?;
                }
            }
            Block::Table {
                header,
                numeric,
                rows,
            } => {
                writeln!(out, "| {} |", header.join(" | "))?;
                let rule: Vec<&str> = numeric
                    .iter()
                    .map(|&n| if n { "---:" } else { "---" })
                    .collect();
                writeln!(out, "|{}|", rule.join("|"))?;
                for row in rows {
                    let cells: Vec<String> = row.iter().map(|c| inline(c, true)).collect();
                    writeln!(out, "| {} |", cells.join(" | "))?;
                }
            }
            Block::Chart(_) => {}
        }
    }
    Ok(())
}

/// Plain text with the characters Markdown would read as markup escaped. `_` stays: GFM
/// does not emphasise inside words, and codes are full of it.
fn text_esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '*' | '`' | '[' | ']' => {
                o.push('\\');
                o.push(ch);
            }
            '<' => o.push_str("&lt;"),
            _ => o.push(ch),
        }
    }
    o
}

fn inline(line: &Line, in_table: bool) -> String {
    let mut o = String::new();
    for span in line {
        let piece = match span {
            Span::Text(s) => text_esc(s),
            Span::Strong(s) => format!("**{}**", text_esc(s)),
            Span::Code(s) if s.contains('`') => format!("`` {s} ``"),
            Span::Code(s) => format!("`{s}`"),
        };
        o.push_str(&piece);
    }
    if in_table {
        // A pipe ends a cell even inside a code span (GFM): escape it everywhere.
        o = o.replace('|', "\\|");
    }
    o
}
