//! `pcapdiag`: parse the flags, run, map the outcome to an exit code.

use clap::{CommandFactory, Parser};
use pcapdiag::cli::{Cli, Command, Config};
use pcapdiag::run::{self, Status};
use std::io;
use std::process::ExitCode;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => {
            Config::from_args(*args).map(|c| run::analyze(&c, io::stdout().lock()))
        }
        Command::Flows(args) => {
            Config::from_flows(args).map(|c| run::flows(&c, io::stdout().lock()))
        }
        Command::Explain { code } => return explain(&code),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "pcapdiag", &mut io::stdout());
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Err(usage) => {
            eprintln!("pcapdiag: {usage}");
            ExitCode::from(2)
        }
        Ok(Ok(Status::Clean)) => ExitCode::SUCCESS,
        Ok(Ok(Status::CaptureFailed)) => ExitCode::from(1),
        // A closed pipe (`| head`) is not an error worth a message.
        Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("pcapdiag: {e}");
            ExitCode::from(1)
        }
    }
}

fn explain(code: &str) -> ExitCode {
    match pcapdiag::explain::explain(code) {
        Some(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "pcapdiag: unknown code {code}; known codes: {}",
                pcapdiag::explain::codes().join(", ")
            );
            ExitCode::from(1)
        }
    }
}
