//! Frames: the report's attempts (the rows of [`summary::rows`]) and flagged packets as
//! polars DataFrames, and their summaries as polars aggregations, for the CSV and Parquet
//! exports: the tables and aggregations users query.
//!
//! Invariants: one attempts row per judged client attempt (or per client-capture attempt
//! when a pair has no verdicts), pair by pair, in attempt order; one events row per
//! (flagged packet, flag), in capture order, then frame order, then flag order. Every row
//! names its pair (`pair`). Integers are `Int64` (Spark
//! reads no unsigned Parquet types), times are integer nanoseconds with a UTC ISO-8601
//! string column beside them, and an absent value is null. Column names are a stable schema
//! (`docs/schema.md`, "Tables").

use super::summary::{self, Row};
use super::{PairResult, Report};
use crate::flows::Attempt;
use crate::units::{Endpoint, Tuple};
use crate::units::{NS_PER_S, utc};
use crate::verdict::{AttemptVerdict, Cause, Side, attempt_evidence};
use polars::prelude::*;

/// A summary section of [`summary`]: what the attempts are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Summary {
    /// All attempts, one row: the latency percentiles.
    All,
    Verdict,
    /// The RS-side server endpoint (null key: no RS-side counterpart).
    RealServer,
    ClientIp,
    /// The second (UTC) of the first SYN.
    Second,
}

impl Summary {
    pub const ALL: [Summary; 5] = [
        Summary::All,
        Summary::Verdict,
        Summary::RealServer,
        Summary::ClientIp,
        Summary::Second,
    ];

    /// The value of the `summary` column.
    pub fn code(self) -> &'static str {
        match self {
            Summary::All => "all",
            Summary::Verdict => "verdict",
            Summary::RealServer => "real_server",
            Summary::ClientIp => "client_ip",
            Summary::Second => "second",
        }
    }
}

/// Column vectors of the attempts table, filled row by row.
#[derive(Default)]
struct AttemptCols {
    pair: Vec<String>,
    attempt: Vec<i64>,
    client_ip: Vec<String>,
    client_port: Vec<i64>,
    server_ip: Vec<String>,
    server_port: Vec<i64>,
    rs_client_ip: Vec<Option<String>>,
    rs_client_port: Vec<Option<i64>>,
    rs_server_ip: Vec<Option<String>>,
    rs_server_port: Vec<Option<i64>>,
    rs_server: Vec<Option<String>>,
    rs_tuples: Vec<i64>,
    isn: Vec<i64>,
    first_syn_ns: Vec<i64>,
    first_syn_utc: Vec<String>,
    tries: Vec<i64>,
    outcome: Vec<&'static str>,
    setup_ns: Vec<Option<i64>>,
    slow: Vec<bool>,
    verdict: Vec<Option<&'static str>>,
    signature: Vec<Option<&'static str>>,
    delay_ns: Vec<i64>,
    one_sided: Vec<Option<bool>>,
    evidence_client_frames: Vec<Option<String>>,
    evidence_rs_frames: Vec<Option<String>>,
    evidence_other_frames: Vec<Option<String>>,
    previous_side: Vec<Option<&'static str>>,
    previous_conn: Vec<Option<i64>>,
    previous_conn_age_ns: Vec<Option<i64>>,
    clock_offset_ns: Vec<Option<i64>>,
    clock_error_ns: Vec<Option<i64>>,
    explanation: Vec<Option<String>>,
    /// Kubernetes names (`--k8s`) of the client, the server (VIP) and the real server.
    client_name: Vec<Option<String>>,
    server_name: Vec<Option<String>>,
    rs_server_name: Vec<Option<String>>,
}

/// An address's Kubernetes label, or null.
fn name_of(report: &Report, ip: std::net::IpAddr) -> Option<String> {
    report.names.get(&ip).map(|n| n.label())
}

/// Space-separated frame numbers, or null when there are none.
fn frames_of(frames: impl Iterator<Item = u64>) -> Option<String> {
    let v: Vec<String> = frames.map(|f| f.to_string()).collect();
    (!v.is_empty()).then(|| v.join(" "))
}

impl AttemptCols {
    fn push_common(
        &mut self,
        report: &Report,
        pair: &PairResult,
        a: &Attempt,
        client: Endpoint,
        server: Endpoint,
    ) {
        self.client_name.push(name_of(report, client.ip));
        self.server_name.push(name_of(report, server.ip));
        self.pair.push(pair.name.clone());
        self.attempt.push(i64::from(a.id));
        self.client_ip.push(client.ip.to_string());
        self.client_port.push(i64::from(client.port));
        self.server_ip.push(server.ip.to_string());
        self.server_port.push(i64::from(server.port));
        self.isn.push(i64::from(a.isn.0));
        self.first_syn_ns.push(a.first_syn().ts);
        self.first_syn_utc.push(utc(a.first_syn().ts));
        self.tries.push(a.tries() as i64);
        self.outcome.push(a.outcome.code());
        self.setup_ns.push(a.setup_ns());
    }

    fn push_rs_tuple(&mut self, report: &Report, rs: Option<&Tuple>, n: usize) {
        self.rs_server_name
            .push(rs.and_then(|t| name_of(report, t.server.ip)));
        self.rs_client_ip.push(rs.map(|t| t.client.ip.to_string()));
        self.rs_client_port
            .push(rs.map(|t| i64::from(t.client.port)));
        self.rs_server_ip.push(rs.map(|t| t.server.ip.to_string()));
        self.rs_server_port
            .push(rs.map(|t| i64::from(t.server.port)));
        self.rs_server.push(rs.map(|t| t.server.to_string()));
        self.rs_tuples.push(n as i64);
    }

    fn push_verdict(
        &mut self,
        report: &Report,
        pair: &PairResult,
        row: &Row<'_>,
        v: &AttemptVerdict,
    ) {
        self.push_common(report, pair, row.attempt, v.client, v.server);
        self.push_rs_tuple(report, v.rs_tuples.first(), v.rs_tuples.len());
        self.slow.push(row.slow);
        self.verdict.push(Some(v.verdict.code()));
        self.signature.push(v.signature.map(Cause::code));
        self.delay_ns.push(row.delay_ns);
        self.one_sided.push(Some(v.one_sided));
        let on = |side: Side| {
            frames_of(
                v.notes()
                    .evidence
                    .iter()
                    .filter(move |e| e.side == side)
                    .map(|e| e.frame),
            )
        };
        self.evidence_client_frames.push(on(Side::Client));
        self.evidence_rs_frames.push(on(Side::Rs));
        let other: Vec<String> = v
            .notes()
            .evidence
            .iter()
            .filter(|e| e.side == Side::Other)
            .map(|e| format!("{}#{}", summary::evidence_file(report, pair, e), e.frame))
            .collect();
        self.evidence_other_frames
            .push((!other.is_empty()).then(|| other.join(" ")));
        self.previous_side
            .push(v.notes().previous.map(|p| p.side.code()));
        self.previous_conn
            .push(v.notes().previous.map(|p| i64::from(p.conn)));
        self.previous_conn_age_ns
            .push(v.notes().previous.map(|p| p.age_ns));
        // The estimate the verdict used; none without two captures or without a handshake
        // seen on both sides (RS times are then taken as recorded).
        let clock = pair
            .pairing
            .as_ref()
            .map(|p| &p.clock)
            .filter(|c| !c.segments.is_empty());
        self.clock_offset_ns
            .push(clock.map(|c| c.offset_at(v.first_syn_ts)));
        self.clock_error_ns
            .push(clock.map(|c| c.error_at(v.first_syn_ts)));
        self.explanation
            .push((!v.notes().explanation.is_empty()).then(|| v.notes().explanation.clone()));
    }

    fn push_attempt(&mut self, report: &Report, pair: &PairResult, row: &Row<'_>) {
        let a = row.attempt;
        self.push_common(report, pair, a, a.client, a.server);
        self.push_rs_tuple(report, None, 0);
        self.slow.push(row.slow);
        self.verdict.push(None);
        self.signature.push(None);
        self.delay_ns.push(row.delay_ns);
        self.one_sided.push(None);
        self.evidence_client_frames
            .push(frames_of(attempt_evidence(a).iter().map(|e| e.frame)));
        self.evidence_rs_frames.push(None);
        self.evidence_other_frames.push(None);
        self.previous_side.push(None);
        self.previous_conn.push(None);
        self.previous_conn_age_ns.push(None);
        self.clock_offset_ns.push(None);
        self.clock_error_ns.push(None);
        self.explanation.push(None);
    }

    fn finish(self) -> PolarsResult<DataFrame> {
        let height = self.attempt.len();
        let strs = |v: Vec<&'static str>| v.into_iter().map(str::to_string).collect::<Vec<_>>();
        let opt_strs = |v: Vec<Option<&'static str>>| {
            v.into_iter()
                .map(|o| o.map(str::to_string))
                .collect::<Vec<_>>()
        };
        DataFrame::new(
            height,
            vec![
                Column::new("pair".into(), self.pair),
                Column::new("attempt".into(), self.attempt),
                Column::new("client_ip".into(), self.client_ip),
                Column::new("client_port".into(), self.client_port),
                Column::new("server_ip".into(), self.server_ip),
                Column::new("server_port".into(), self.server_port),
                Column::new("rs_client_ip".into(), self.rs_client_ip),
                Column::new("rs_client_port".into(), self.rs_client_port),
                Column::new("rs_server_ip".into(), self.rs_server_ip),
                Column::new("rs_server_port".into(), self.rs_server_port),
                Column::new("rs_server".into(), self.rs_server),
                Column::new("rs_tuples".into(), self.rs_tuples),
                Column::new("isn".into(), self.isn),
                Column::new("first_syn_ns".into(), self.first_syn_ns),
                Column::new("first_syn_utc".into(), self.first_syn_utc),
                Column::new("tries".into(), self.tries),
                Column::new("outcome".into(), strs(self.outcome)),
                Column::new("setup_ns".into(), self.setup_ns),
                Column::new("slow".into(), self.slow),
                Column::new("verdict".into(), opt_strs(self.verdict)),
                Column::new("signature".into(), opt_strs(self.signature)),
                Column::new("delay_ns".into(), self.delay_ns),
                Column::new("one_sided".into(), self.one_sided),
                Column::new("evidence_client_frames".into(), self.evidence_client_frames),
                Column::new("evidence_rs_frames".into(), self.evidence_rs_frames),
                Column::new("evidence_other_frames".into(), self.evidence_other_frames),
                Column::new("previous_side".into(), opt_strs(self.previous_side)),
                Column::new("previous_conn".into(), self.previous_conn),
                Column::new("previous_conn_age_ns".into(), self.previous_conn_age_ns),
                Column::new("clock_offset_ns".into(), self.clock_offset_ns),
                Column::new("clock_error_ns".into(), self.clock_error_ns),
                Column::new("explanation".into(), self.explanation),
                Column::new("client_name".into(), self.client_name),
                Column::new("server_name".into(), self.server_name),
                Column::new("rs_server_name".into(), self.rs_server_name),
            ],
        )
    }
}

/// One row per client connection attempt of every pair ([`summary::rows`]), pair by pair:
/// from the pair's verdicts when it has them, else from its client capture's attempts
/// (verdict columns null).
pub fn attempts(report: &Report) -> PolarsResult<DataFrame> {
    let mut cols = AttemptCols::default();
    for row in summary::rows(report) {
        let pair = &report.pairs[row.pair];
        match row.verdict {
            Some(v) => cols.push_verdict(report, pair, &row, v),
            None => cols.push_attempt(report, pair, &row),
        }
    }
    cols.finish()
}

/// One row per flag of each flagged packet of every capture. The tuple is the
/// connection's (originator first), whichever direction the packet went; times are on the
/// capture's own clock.
pub fn events(report: &Report) -> PolarsResult<DataFrame> {
    let mut pair = Vec::new();
    let mut file = Vec::new();
    let mut frame = Vec::new();
    let mut ts_ns = Vec::new();
    let mut ts_utc = Vec::new();
    let mut conn = Vec::new();
    let (mut cip, mut cport, mut sip, mut sport) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut flag = Vec::new();
    for (i, cap) in report.captures.iter().enumerate() {
        let name = report.pair_of_capture(i).map(|p| p.name.clone());
        for p in &cap.flagged_packets {
            let c = &cap.connections[p.conn as usize];
            for f in p.flags.iter() {
                pair.push(name.clone());
                file.push(cap.file.clone());
                frame.push(p.frame as i64);
                ts_ns.push(p.ts);
                ts_utc.push(utc(p.ts));
                conn.push(i64::from(p.conn));
                cip.push(c.client.ip.to_string());
                cport.push(i64::from(c.client.port));
                sip.push(c.server.ip.to_string());
                sport.push(i64::from(c.server.port));
                flag.push(f.code().to_string());
            }
        }
    }
    DataFrame::new(
        file.len(),
        vec![
            Column::new("pair".into(), pair),
            Column::new("file".into(), file),
            Column::new("frame".into(), frame),
            Column::new("ts_ns".into(), ts_ns),
            Column::new("ts_utc".into(), ts_utc),
            Column::new("conn".into(), conn),
            Column::new("client_ip".into(), cip),
            Column::new("client_port".into(), cport),
            Column::new("server_ip".into(), sip),
            Column::new("server_port".into(), sport),
            Column::new("flag".into(), flag),
        ],
    )
}

/// `x` divided by the positive constant `d`, rounded down, for `0 <= x < 2^51`. Polars'
/// `floor_div` needs the `round_series` feature (and panics at run time without it), and
/// its division by a constant multiplies by the inverse, so `700 / 100` can come out just
/// under 7: subtract the remainder, divide, and round the (integral) quotient to nearest.
fn div_floor(x: Expr, d: i64) -> Expr {
    (((x.clone() - x % lit(d)).cast(DataType::Float64) / lit(d as f64)) + lit(0.5))
        .cast(DataType::Int64)
}

/// The nearest-rank percentile of `setup_ns` (the terminal summary's definition):
/// the value at rank ⌈n·p/100⌉ of the n established attempts, null when there are none.
fn setup_percentile(p: i64) -> Expr {
    let n = col("setup_ns").count().cast(DataType::Int64);
    let rank = div_floor(n * lit(p) + lit(99i64), 100);
    col("setup_ns")
        .drop_nulls()
        .sort(SortOptions::default())
        .get(rank - lit(1i64), true)
}

/// The aggregations every summary row has, with their column names, in column order
/// after `summary, key, key_ns`.
fn metrics() -> Vec<(String, Expr)> {
    let mut v: Vec<(String, Expr)> = vec![
        ("attempts".into(), len().cast(DataType::Int64)),
        ("slow".into(), col("slow").cast(DataType::Int64).sum()),
        // Filled in after the aggregation (see `summarize`).
        ("share".into(), lit(NULL).cast(DataType::Float64)),
        ("delay_total_ns".into(), col("delay_ns").sum()),
        ("delay_max_ns".into(), col("delay_ns").max()),
        ("setup_p50_ns".into(), setup_percentile(50)),
        ("setup_p90_ns".into(), setup_percentile(90)),
        ("setup_p99_ns".into(), setup_percentile(99)),
        ("setup_max_ns".into(), col("setup_ns").max()),
    ];
    for c in Cause::ALL {
        v.push((
            format!("verdict_{}", c.code()),
            col("verdict").eq(lit(c.code())).cast(DataType::Int64).sum(),
        ));
    }
    v
}

fn metric_exprs() -> Vec<Expr> {
    metrics()
        .into_iter()
        .map(|(name, e)| e.alias(name))
        .collect()
}

/// The summary table's column names, in order.
pub fn summary_columns() -> Vec<String> {
    let mut v = vec![
        "pair".to_string(),
        "summary".into(),
        "key".into(),
        "key_ns".into(),
    ];
    v.extend(metrics().into_iter().map(|(name, _)| name));
    v
}

/// One section of the summary table, grouped as `by` says, in a stable order. The `pair`
/// column is null: [`summary`] names the pair.
pub fn summarize(attempts: &DataFrame, by: Summary) -> PolarsResult<DataFrame> {
    let total = attempts.height();
    let lf = attempts.clone().lazy();
    let null_str = || lit(NULL).cast(DataType::String);
    let null_i64 = || lit(NULL).cast(DataType::Int64);
    let grouped = |key: Expr| lf.clone().group_by([key.alias("key")]).agg(metric_exprs());
    let lf = match by {
        Summary::All => lf
            .select(metric_exprs())
            .with_columns([null_str().alias("key"), null_i64().alias("key_ns")]),
        Summary::Verdict => grouped(col("verdict"))
            .with_column(null_i64().alias("key_ns"))
            .sort(
                ["attempts", "key"],
                SortMultipleOptions::new().with_order_descending_multi([true, false]),
            ),
        Summary::RealServer => grouped(col("rs_server"))
            .with_column(null_i64().alias("key_ns"))
            .sort(["key"], SortMultipleOptions::new()),
        Summary::ClientIp => grouped(col("client_ip"))
            .with_column(null_i64().alias("key_ns"))
            .sort(["key"], SortMultipleOptions::new()),
        Summary::Second => lf
            .group_by([(col("first_syn_ns") - col("first_syn_ns") % lit(NS_PER_S)).alias("key_ns")])
            .agg(metric_exprs())
            .with_column(null_str().alias("key"))
            .sort(["key_ns"], SortMultipleOptions::new()),
    };
    let order: Vec<Expr> = summary_columns()
        .iter()
        .map(|c| match c.as_str() {
            "pair" => null_str().alias("pair"),
            "summary" => lit(by.code()).alias("summary"),
            c => col(c),
        })
        .collect();
    let mut df = lf.select(order).collect()?;
    // attempts / all attempts, divided here: polars divides by a constant through its
    // inverse, which prints 3/40 as 0.07500000000000001.
    let share: Vec<Option<f64>> = df
        .column("attempts")?
        .i64()?
        .iter()
        .map(|n| n.map(|n| n as f64 / total.max(1) as f64))
        .collect();
    df.with_column(Column::new("share".into(), share))?;
    if by == Summary::Second {
        // The second's UTC name, beside its integer start.
        let names: Vec<Option<String>> = df
            .column("key_ns")?
            .i64()?
            .iter()
            .map(|t| t.map(utc))
            .collect();
        df.with_column(Column::new("key".into(), names))?;
    }
    Ok(df)
}

/// Every summary section stacked, in [`Summary::ALL`] order, for each of `pairs` in turn
/// (its rows of `attempts`, named in the `pair` column); then, with more than one pair,
/// every section over all the attempts together, with a null `pair`.
pub fn summary(attempts: &DataFrame, pairs: &[String]) -> PolarsResult<DataFrame> {
    let mut out: Option<DataFrame> = None;
    let mut push = |df: DataFrame| -> PolarsResult<()> {
        out = Some(match out.take() {
            None => df,
            Some(acc) => acc.vstack(&df)?,
        });
        Ok(())
    };
    for name in pairs {
        let these = attempts
            .clone()
            .lazy()
            .filter(col("pair").eq(lit(name.as_str())))
            .collect()?;
        for by in Summary::ALL {
            let mut df = summarize(&these, by)?;
            df.with_column(Column::new("pair".into(), vec![name.as_str(); df.height()]))?;
            push(df)?;
        }
    }
    if pairs.len() != 1 {
        for by in Summary::ALL {
            push(summarize(attempts, by)?)?;
        }
    }
    Ok(out.expect("at least one section"))
}

/// The three exported tables of one report.
pub struct Tables {
    pub attempts: DataFrame,
    pub events: DataFrame,
    pub summary: DataFrame,
}

impl Tables {
    pub fn build(report: &Report) -> PolarsResult<Tables> {
        let attempts = attempts(report)?;
        let pairs: Vec<String> = report.pairs.iter().map(|p| p.name.clone()).collect();
        Ok(Tables {
            summary: summary(&attempts, &pairs)?,
            events: events(report)?,
            attempts,
        })
    }

    /// (file stem, table), in the order they are written.
    pub fn named(&mut self) -> [(&'static str, &mut DataFrame); 3] {
        [
            ("attempts", &mut self.attempts),
            ("events", &mut self.events),
            ("summary", &mut self.summary),
        ]
    }
}

/// A polars error as an I/O error, for renderers that return `io::Result`.
pub(crate) fn io_err(e: PolarsError) -> std::io::Error {
    match e {
        PolarsError::IO { error, .. } => std::io::Error::new(error.kind(), error.to_string()),
        e => std::io::Error::other(e),
    }
}

/// Creates `dir` and calls `write` with each table's file in it.
pub(crate) fn write_tables(
    report: &Report,
    dir: &std::path::Path,
    ext: &str,
    mut write: impl FnMut(&mut DataFrame, &mut std::io::BufWriter<std::fs::File>) -> PolarsResult<()>,
) -> std::io::Result<()> {
    use std::io::Write;
    let with_path = |p: &std::path::Path, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{}: {e}", p.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| with_path(dir, e))?;
    let mut tables = Tables::build(report).map_err(io_err)?;
    for (stem, df) in tables.named() {
        let path = dir.join(format!("{stem}.{ext}"));
        let file = std::fs::File::create(&path).map_err(|e| with_path(&path, e))?;
        let mut out = std::io::BufWriter::new(file);
        write(df, &mut out)
            .map_err(io_err)
            .and_then(|()| out.flush())
            .map_err(|e| with_path(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attempts table with just the columns the summaries read.
    fn table(setups: &[Option<i64>], verdicts: &[&str]) -> DataFrame {
        let n = setups.len();
        DataFrame::new(
            n,
            vec![
                Column::new("pair".into(), vec!["p"; n]),
                Column::new("setup_ns".into(), setups.to_vec()),
                Column::new(
                    "delay_ns".into(),
                    setups.iter().map(|s| s.unwrap_or(0)).collect::<Vec<_>>(),
                ),
                Column::new("slow".into(), vec![false; n]),
                Column::new(
                    "verdict".into(),
                    (0..n)
                        .map(|i| verdicts[i % verdicts.len()].to_string())
                        .collect::<Vec<_>>(),
                ),
                Column::new("rs_server".into(), vec![None::<String>; n]),
                Column::new("client_ip".into(), vec!["10.0.0.1".to_string(); n]),
                Column::new(
                    "first_syn_ns".into(),
                    (0..n as i64).map(|i| i * 400_000_000).collect::<Vec<_>>(),
                ),
            ],
        )
        .unwrap()
    }

    fn all_row(df: &DataFrame, name: &str) -> Option<i64> {
        let s = summarize(df, Summary::All).unwrap();
        s.column(name).unwrap().i64().unwrap().get(0)
    }

    #[test]
    fn test_summary_percentiles_are_nearest_rank_like_the_terminal() {
        for n in 0..=300i64 {
            // Values out of order, and a null (never established) every seventh.
            let setups: Vec<Option<i64>> = (0..n)
                .map(|i| (i % 7 != 3).then_some((i * 7919) % 1000 * 1000 + i))
                .collect();
            let df = table(&setups, &["ok"]);
            let mut sorted: Vec<i64> = setups.iter().flatten().copied().collect();
            sorted.sort_unstable();
            for (p, name) in [
                (50, "setup_p50_ns"),
                (90, "setup_p90_ns"),
                (99, "setup_p99_ns"),
            ] {
                assert_eq!(
                    all_row(&df, name),
                    crate::capture::percentile(&sorted, p),
                    "n={n} p={p}"
                );
            }
            assert_eq!(all_row(&df, "setup_max_ns"), sorted.last().copied());
        }
    }

    #[test]
    fn test_summary_share_is_the_exact_quotient() {
        let setups = vec![Some(1); 40];
        let mut verdicts = vec!["ok"; 37];
        verdicts.extend(["rs_refused"; 3]);
        let df = table(&setups, &verdicts);
        let s = summarize(&df, Summary::Verdict).unwrap();
        let share: Vec<Option<f64>> = s.column("share").unwrap().f64().unwrap().iter().collect();
        assert_eq!(share, vec![Some(37.0 / 40.0), Some(3.0 / 40.0)]);
        assert_eq!(format!("{}", 3.0f64 / 40.0), "0.075");
    }

    #[test]
    fn test_summary_by_second_groups_on_whole_seconds() {
        let df = table(&[Some(1); 6], &["ok"]);
        let s = summarize(&df, Summary::Second).unwrap();
        // First SYNs at 0, 0.4, 0.8, 1.2, 1.6, 2.0 s.
        let keys: Vec<Option<i64>> = s.column("key_ns").unwrap().i64().unwrap().iter().collect();
        assert_eq!(keys, vec![Some(0), Some(NS_PER_S), Some(2 * NS_PER_S)]);
        let n: Vec<Option<i64>> = s
            .column("attempts")
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(n, vec![Some(3), Some(2), Some(1)]);
        assert_eq!(
            s.column("key").unwrap().str().unwrap().get(1),
            Some("1970-01-01T00:00:01.000000000Z")
        );
    }

    #[test]
    fn test_summary_sections_share_one_schema() {
        let df = table(&[Some(5), None, Some(9)], &["ok", "unmatched"]);
        let s = summary(&df, &["p".to_string()]).unwrap();
        let names: Vec<String> = s.get_column_names().iter().map(|c| c.to_string()).collect();
        assert_eq!(names, summary_columns());
        // all, 2 verdicts, 1 real server (null), 1 client, 1 second.
        assert_eq!(s.height(), 6);
        assert_eq!(s.column("pair").unwrap().str().unwrap().get(5), Some("p"));
    }
}
