//! `ghostmem demo`: far more data than the budget, through the allocator, read back intact.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use ghostmem::GhostMem;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::data::fill_demo_page;
use crate::engine::{Failure, StoreArgs, describe_pages, new_engine, round_to_pages, stats_lines};
use crate::procfs::{PeakRss, rss_kib};
use crate::size::{format_bytes, parse_nonzero_size, to_u64};

/// Arguments of `ghostmem demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How much data to store (bytes, or with a K/KiB, M/MiB, G/GiB suffix).
    #[arg(long, default_value = "256MiB", value_parser = parse_nonzero_size)]
    size: usize,
    /// Resident budget: at most this much of the data stays uncompressed in RAM.
    #[arg(long, default_value = "16MiB", value_parser = parse_nonzero_size)]
    budget: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[command(flatten)]
    store: StoreArgs,
}

/// The data lives in an ordinary `Vec`, whose allocator is the engine.
type GhostVec<'g> = allocator_api2::vec::Vec<u8, &'g GhostMem>;

/// Run `ghostmem demo`.
pub fn run(args: &DemoArgs, verbose: bool) -> Result<ExitCode, Failure> {
    let page = ghostmem::page_size();
    let size = round_to_pages(args.size)?;
    let pages = size / page;
    let budget_pages = args.budget / page;
    let engine = new_engine(budget_pages, size, verbose, &args.store)?;

    println!(
        "ghostmem demo: {} of mixed data (text, numbers, zeros, random) through a {} budget",
        format_bytes(to_u64(size)),
        format_bytes(to_u64(budget_pages * page)),
    );
    let rss_before = rss_kib();
    let peak = PeakRss::start();

    let mut data = GhostVec::new_in(&engine);
    data.try_reserve_exact(size).map_err(|err| {
        Failure::Runtime(format!(
            "cannot allocate {}: {err}",
            format_bytes(to_u64(size))
        ))
    })?;
    let mut scratch = vec![0u8; page];

    let bar = progress_bar(to_u64(size), "fill", verbose);
    let start = Instant::now();
    for index in 0..to_u64(pages) {
        fill_demo_page(args.seed, index, &mut scratch);
        data.extend_from_slice(&scratch);
        bar.inc(to_u64(page));
    }
    let fill_time = start.elapsed();
    bar.finish_and_clear();
    let rss_after_fill = rss_kib();

    let bar = progress_bar(to_u64(size), "verify", verbose);
    let start = Instant::now();
    let mut bad_pages = 0u64;
    let mut first_bad = None;
    for (stored, index) in data.chunks(page).zip(0u64..) {
        fill_demo_page(args.seed, index, &mut scratch);
        if stored != scratch.as_slice() {
            bad_pages += 1;
            first_bad.get_or_insert(index);
        }
        bar.inc(to_u64(page));
    }
    let verify_time = start.elapsed();
    bar.finish_and_clear();
    let rss_after = rss_kib();
    let rss_peak = peak.finish();
    let stats = engine.stats();
    drop(data);
    let backend = engine.fault_backend();

    let kib = |k: u64| format_bytes(k.saturating_mul(1024));
    let line = |label: &str, text: String| println!("  {label:<17} {text}");
    println!();
    line(
        "data size",
        format!("{} ({pages} pages)", format_bytes(to_u64(size))),
    );
    line("budget", describe_pages(budget_pages));
    line("RSS before", kib(rss_before));
    line("RSS after fill", kib(rss_after_fill));
    line("RSS after verify", kib(rss_after));
    line("RSS peak", kib(rss_peak));
    line("fill", throughput(size, fill_time));
    line("verify", throughput(size, verify_time));
    for (label, text) in stats_lines(backend, &stats) {
        line(label, text);
    }
    println!();
    match first_bad {
        None => {
            println!(
                "verified: all {} read back intact",
                format_bytes(to_u64(size))
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(first) => {
            println!(
                "verification FAILED: {bad_pages} of {pages} pages differ, the first is page {first}"
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal (and with `--verbose`, whose
/// log lines would tear it).
fn progress_bar(total: u64, phase: &'static str, verbose: bool) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() && !verbose {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    let style = ProgressStyle::with_template(
        "{msg:>6} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .map(|style| style.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(phase);
    bar
}

/// `256.0 MiB in 0.61 s (419.7 MiB/s)`.
fn throughput(bytes: usize, time: Duration) -> String {
    let secs = time.as_secs_f64();
    #[allow(clippy::cast_precision_loss, reason = "a rate for display")]
    let mib_per_sec = if secs > 0.0 {
        bytes as f64 / secs / f64::from(1u32 << 20)
    } else {
        0.0
    };
    format!(
        "{} in {secs:.2} s ({mib_per_sec:.1} MiB/s)",
        format_bytes(to_u64(bytes))
    )
}
