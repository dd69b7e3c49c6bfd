//! `ghostmem`: see what the engine does (`demo`), measure it (`bench`), try to break it
//! (`stress`), and draw measurements (`plot`).

mod bench;
mod data;
mod demo;
mod engine;
mod plot;
mod procfs;
mod size;
mod stress;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

/// Userspace compressed memory: keep far more data than the resident budget, transparently.
#[derive(Debug, Parser)]
#[command(name = "ghostmem", version, propagate_version = true)]
struct Cli {
    /// Log what the engine and the tool do to stderr (RUST_LOG overrides the filter).
    #[arg(long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Store a lot of mixed data under a small budget, read it back and show what happened.
    Demo(demo::DemoArgs),
    /// Measure a workload on ghost memory (and optionally on plain memory).
    Bench(bench::BenchArgs),
    /// Hammer private and shared pages from many threads and check every value.
    Stress(stress::StressArgs),
    /// Draw runs saved by `bench --json` in one SVG figure: latency CDFs and throughput bars.
    Plot(plot::PlotArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return argument_error(&err),
    };
    if cli.verbose {
        init_logging();
    }
    let result = match &cli.command {
        Command::Demo(args) => demo::run(args, cli.verbose),
        Command::Bench(args) => bench::run(args, cli.verbose),
        Command::Stress(args) => stress::run(args, cli.verbose),
        Command::Plot(args) => plot::run(args),
    };
    result.unwrap_or_else(engine::Failure::report)
}

/// Help and version go out as clap prints them; a bad argument gets one line on stderr and
/// clap's exit code (2).
fn argument_error(err: &clap::Error) -> ExitCode {
    let exit = |code: i32| ExitCode::from(u8::try_from(code).unwrap_or(2));
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        // Nothing sensible is left to do if stdout or stderr is gone.
        let _ = err.print();
        return exit(err.exit_code());
    }
    eprintln!("{}", one_line(&err.render().to_string()));
    exit(err.exit_code())
}

/// Clap's error text up to its usage section, joined into one line.
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("ghostmem=debug,ghostmem_cli=debug"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_size_is_one_line() {
        let err = Cli::try_parse_from(["ghostmem", "bench", "--size", "12XB"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let line = one_line(&err.render().to_string());
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with("error: invalid value '12XB' for '--size"),
            "{line}"
        );
    }

    #[test]
    fn missing_argument_is_one_line() {
        let err = Cli::try_parse_from(["ghostmem", "bench", "--workload"]).unwrap_err();
        let line = one_line(&err.render().to_string());
        assert!(line.starts_with("error:") && !line.contains('\n'), "{line}");
    }

    #[test]
    fn sizes_parse_through_clap() {
        let cli =
            Cli::try_parse_from(["ghostmem", "demo", "--size", "16MiB", "--budget", "2M"]).unwrap();
        let Command::Demo(args) = cli.command else {
            panic!("not demo")
        };
        let debug = format!("{args:?}");
        assert!(
            debug.contains("size: 16777216") && debug.contains("budget: 2097152"),
            "{debug}"
        );
    }
}
