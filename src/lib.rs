//! pcapdiag: diagnose slow TCP connection setups from packet captures.
//!
//! The pipeline, one module per stage, data flowing one way:
//! [`read`] (records from a capture) → [`decode`] (bytes to a [`decode::Segment`], once;
//! [`defrag`] puts IP fragments back together) → [`flows`] (connections, attempts; [`classify`] flags each packet) → [`capture`] (the
//! analysed capture every later stage reads) → [`correlate`] (the client side's attempts
//! paired with the real server's through the NAT; [`clock`] puts both on one clock) →
//! [`verdict`] (the cause of every slow attempt) → [`report`] (one model, its derived
//! numbers computed once, one renderer per format). [`units`] is the vocabulary all of
//! them share, and [`k8s`] puts Kubernetes names on addresses. [`pcapng`] writes the
//! annotated copies of the captures and their merge on one clock (`--annotate`). [`cli`]
//! turns flags into a validated config, [`run`] wires the stages together, and `main.rs`
//! only maps the outcome to an exit code.
#![forbid(unsafe_code)]

pub mod capture;
pub mod classify;
pub mod cli;
pub mod clock;
pub mod correlate;
pub mod decode;
pub mod defrag;
pub mod explain;
pub mod flags;
pub mod flows;
pub mod fuzzing;
pub mod k8s;
pub mod pcapng;
pub mod read;
pub mod records;
pub mod report;
pub mod rotated;
pub mod run;
pub mod seq;
pub mod skip;
pub mod units;
pub mod vantage;
pub mod verdict;
