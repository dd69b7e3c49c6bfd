//! `ghostmem stress`: threads write, read back and re-check private pages and bump shared
//! atomic counters while a tiny budget keeps the engine evicting; every value is checked.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use crate::data::{SplitMix64, derive_seed};
use crate::engine::{Failure, GhostRegion, StoreArgs, new_engine};

/// Private pages per thread.
const PRIVATE_PAGES: usize = 16;
/// Pages of shared counters.
const SHARED_PAGES: usize = 16;
/// Counter increments per iteration.
const INCREMENTS_PER_ITERATION: usize = 4;

/// Arguments of `ghostmem stress`.
#[derive(Debug, Args)]
pub struct StressArgs {
    /// Worker threads (each owns 16 private pages; all share 16 pages of counters).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
    /// Resident budget in pages; keep it small so eviction never stops.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    budget: u64,
    /// How long to run, in seconds (fractions allowed).
    #[arg(long, default_value_t = 5.0, value_parser = parse_seconds)]
    seconds: f64,
    /// Seed of the threads' random choices.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 1e9 => Ok(secs),
        _ => Err("expected a positive number of seconds".to_owned()),
    }
}

/// What one thread saw.
#[derive(Debug, Default)]
struct Tally {
    iterations: u64,
    checked: u64,
    mismatches: u64,
    increments: u64,
}

/// Run `ghostmem stress`.
pub fn run(args: &StressArgs, verbose: bool) -> Result<ExitCode, Failure> {
    let page = ghostmem::page_size();
    let wpp = page / 8;
    let threads = usize::from(args.threads);
    let budget_pages = usize::try_from(args.budget)
        .map_err(|_| Failure::Usage(format!("a budget of {} pages is too large", args.budget)))?;
    let total_pages = SHARED_PAGES + PRIVATE_PAGES * threads;
    let engine = new_engine(budget_pages, total_pages * page, verbose, &args.store)?;
    let mut region = GhostRegion::new(&engine, total_pages * page)?;
    let (shared, private) = region.split_shared(SHARED_PAGES * wpp);

    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let workers: Vec<_> = private
            .chunks_mut(PRIVATE_PAGES * wpp)
            .zip(0u64..)
            .map(|(mine, tid)| {
                let seed = derive_seed(args.seed, tid);
                scope.spawn(move || worker(tid, seed, mine, shared, wpp, deadline))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a stress worker panicked"))
            .collect()
    });

    let expected_total: u64 = tallies.iter().map(|t| t.increments).sum();
    let actual_total: u64 = shared.iter().map(|c| c.load(Ordering::Relaxed)).sum();
    let mismatches: u64 = tallies.iter().map(|t| t.mismatches).sum();
    let lost = mismatches + expected_total.abs_diff(actual_total);
    let checked = tallies.iter().map(|t| t.checked).sum::<u64>() + 1;
    let iterations: u64 = tallies.iter().map(|t| t.iterations).sum();
    let stats = engine.stats();

    if args.json {
        println!(
            "{}",
            json!({
                "lost": lost,
                "checked": checked,
                "threads": threads,
                "budget_pages": budget_pages,
                "seconds": args.seconds,
                "iterations": iterations,
                "mismatches": mismatches,
                "increments_expected": expected_total,
                "increments_found": actual_total,
                "private_pages": PRIVATE_PAGES * threads,
                "shared_pages": SHARED_PAGES,
                "faults": stats.faults,
                "evictions": stats.evictions,
                "restores": stats.restores,
                "backend": engine.fault_backend().name(),
            })
        );
    } else {
        println!(
            "stress: {threads} threads, budget {budget_pages} pages, {} s over {} private + {SHARED_PAGES} shared pages, {} backend",
            args.seconds,
            PRIVATE_PAGES * threads,
            engine.fault_backend(),
        );
        println!("  checked    {checked} values in {iterations} iterations");
        println!("  counters   {actual_total} found, {expected_total} expected");
        println!("  lost       {lost}");
        println!(
            "  pager      faults {}, evictions {}, restores {}",
            stats.faults, stats.evictions, stats.restores
        );
        println!(
            "{}",
            if lost == 0 {
                "stress: OK"
            } else {
                "stress: FAILED: values were lost"
            }
        );
    }
    Ok(if lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The value thread `tid` writes to word `word` of a private page in iteration `iteration`:
/// distinct per word, with repeated high bytes, so the pages compress.
fn pattern(tid: u64, iteration: u64, word: u64) -> u64 {
    (tid << 56) | ((iteration & 0xF_FFFF_FFFF) << 20) | (word & 0xF_FFFF)
}

/// One thread: until the deadline, rewrite a random private page and read it back, re-check
/// another private page against what it last got, and bump and read shared counters.
fn worker(
    tid: u64,
    seed: u64,
    mine: &mut [u64],
    shared: &[AtomicU64],
    wpp: usize,
    deadline: Instant,
) -> Tally {
    let pages = mine.len() / wpp;
    let mut rng = SplitMix64::new(seed);
    // The iteration that last wrote each private page, and the least value each counter can
    // hold now as far as this thread knows (counters only grow).
    let mut written: Vec<Option<u64>> = vec![None; pages];
    let mut floor = vec![0u64; shared.len()];
    let mut tally = Tally::default();
    let check = |tally: &mut Tally, ok: bool| {
        tally.checked += 1;
        tally.mismatches += u64::from(!ok);
    };

    while Instant::now() < deadline {
        let iteration = tally.iterations;
        let p = rng.index(pages);
        let page = &mut mine[p * wpp..(p + 1) * wpp];
        for (slot, w) in page.iter_mut().zip(0u64..) {
            *slot = pattern(tid, iteration, w);
        }
        // Make the compiler forget what it stored, so the read-back really reads memory.
        let page = std::hint::black_box(page);
        for (&value, w) in page.iter().zip(0u64..) {
            check(&mut tally, value == pattern(tid, iteration, w));
        }
        written[p] = Some(iteration);

        let q = rng.index(pages);
        if let Some(then) = written[q] {
            let page = std::hint::black_box(&mine[q * wpp..(q + 1) * wpp]);
            for (&value, w) in page.iter().zip(0u64..) {
                check(&mut tally, value == pattern(tid, then, w));
            }
        }

        for _ in 0..INCREMENTS_PER_ITERATION {
            let c = rng.index(shared.len());
            let before = shared[c].fetch_add(1, Ordering::Relaxed);
            tally.increments += 1;
            check(&mut tally, before >= floor[c]);
            floor[c] = floor[c].max(before + 1);
        }
        let c = rng.index(shared.len());
        let now = shared[c].load(Ordering::Relaxed);
        check(&mut tally, now >= floor[c]);
        floor[c] = floor[c].max(now);

        tally.iterations += 1;
    }
    tracing::debug!(tid, iterations = tally.iterations, "stress worker done");
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_differ() {
        assert_ne!(pattern(0, 0, 0), pattern(1, 0, 0));
        assert_ne!(pattern(0, 0, 0), pattern(0, 1, 0));
        assert_ne!(pattern(0, 0, 0), pattern(0, 0, 1));
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("2"), Ok(2.0));
        assert_eq!(parse_seconds("0.5"), Ok(0.5));
        for bad in ["0", "-1", "nan", "inf", "x", ""] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn worker_checks_plain_memory() {
        let wpp = 512;
        let mut mine = vec![0u64; PRIVATE_PAGES * wpp];
        let shared: Vec<AtomicU64> = (0..wpp).map(|_| AtomicU64::new(0)).collect();
        let deadline = Instant::now() + Duration::from_millis(50);
        let tally = worker(3, 9, &mut mine, &shared, wpp, deadline);
        assert!(tally.iterations > 0);
        assert_eq!(tally.mismatches, 0);
        let total: u64 = shared.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(total, tally.increments);
    }
}
