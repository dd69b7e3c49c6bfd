//! `ghostmem bench`: one workload over one big ghost allocation, optionally repeated on plain
//! memory in the same process for comparison.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use ghostmem::Stats;
use serde_json::{Map, Value, json};

use crate::data::{SplitMix64, derive_seed, mix64, seq_value};
use crate::engine::{
    Failure, GhostRegion, StoreArgs, describe_pages, new_engine, round_to_pages, stats_json,
    stats_lines,
};
use crate::procfs::PeakRss;
use crate::size::{format_bytes, parse_nonzero_size, to_u64};

/// Arguments of `ghostmem bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// `seq`: fill the region, then scan and verify it; `rand`: fill it, then touch random pages
    /// (read and check a value, write a new one), timing each touch.
    #[arg(long, value_enum, default_value_t = Workload::Seq)]
    workload: Workload,
    /// Size of the region (bytes, or with a K/KiB, M/MiB, G/GiB suffix); rounded up to pages.
    #[arg(long, default_value = "256MiB", value_parser = parse_nonzero_size)]
    size: usize,
    /// Resident budget (a size, converted to whole pages).
    #[arg(long, default_value = "16MiB", value_parser = parse_nonzero_size)]
    budget: usize,
    /// Worker threads; the region is split into this many contiguous parts, one per thread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Random touches in the `rand` workload, split across the threads.
    #[arg(long, default_value_t = 200_000)]
    touches: u64,
    /// Also run the identical workload on plain memory and report the ratios.
    #[arg(long, value_enum, conflicts_with = "memory")]
    baseline: Option<Baseline>,
    /// Which memory the main run uses: `plain` runs the workload on ordinary memory alone (to
    /// compare with the kernel's compressed swap under a memory cgroup limit).
    #[arg(long, value_enum, default_value_t = Memory::Ghost)]
    memory: Memory,
    /// Seed of the random choices in `rand`.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// The benchmark workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Sequential fill, then a verifying scan.
    Seq,
    /// Fill, then timed random touches, then a verifying scan.
    Rand,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Self::Seq => "seq",
            Self::Rand => "rand",
        }
    }
}

/// The memory a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Memory {
    /// Ghost memory under the budget.
    Ghost,
    /// Ordinary memory from the global allocator (the budget is not used).
    Plain,
}

/// What a baseline run uses instead of ghost memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Baseline {
    /// Ordinary memory from the global allocator.
    Plain,
}

/// The parameters of one run, shared by the ghost run and the baseline.
struct Spec {
    workload: Workload,
    threads: usize,
    touches: u64,
    seed: u64,
    words_per_page: usize,
}

/// What one run measured.
struct Outcome {
    bytes: u64,
    threads: usize,
    fill: Duration,
    scan: Duration,
    /// Per-touch latencies in nanoseconds, sorted.
    latencies_ns: Vec<u32>,
    mismatches: u64,
    rss_peak_kib: u64,
    /// Engine statistics at the end of the run (all zero for plain memory).
    stats: Stats,
    /// The engine's fault backend (`None` for plain memory).
    backend: Option<ghostmem::FaultBackend>,
}

/// Run `ghostmem bench`.
pub fn run(args: &BenchArgs, verbose: bool) -> Result<ExitCode, Failure> {
    let page = ghostmem::page_size();
    let size = round_to_pages(args.size)?;
    let budget_pages = args.budget / page;
    let spec = Spec {
        workload: args.workload,
        threads: usize::from(args.threads),
        touches: if args.workload == Workload::Rand {
            args.touches
        } else {
            0
        },
        seed: args.seed,
        words_per_page: page / 8,
    };

    // The ghost run goes first, and its instance is gone before the baseline starts, so each
    // peak RSS is its own.
    let ghost = match args.memory {
        Memory::Ghost => {
            let peak = PeakRss::start();
            let engine = new_engine(budget_pages, size, verbose, &args.store)?;
            let mut region = GhostRegion::new(&engine, size)?;
            let mut outcome = run_workload(region.words(), &spec);
            outcome.stats = engine.stats();
            outcome.backend = Some(engine.fault_backend());
            outcome.rss_peak_kib = peak.finish();
            outcome
        }
        Memory::Plain => run_plain(size, &spec),
    };
    let baseline = args.baseline.map(|Baseline::Plain| run_plain(size, &spec));

    let verified = ghost.mismatches == 0 && baseline.as_ref().is_none_or(|b| b.mismatches == 0);
    let header = Header {
        memory: args.memory,
        workload: args.workload,
        size,
        budget_pages,
        page,
    };
    if args.json {
        println!(
            "{}",
            Value::Object(json_report(&header, &ghost, baseline.as_ref()))
        );
    } else {
        print_table(&header, &ghost, baseline.as_ref());
    }
    Ok(if verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The workload on ordinary memory, with its own peak RSS.
fn run_plain(size: usize, spec: &Spec) -> Outcome {
    let peak = PeakRss::start();
    let mut plain = vec![0u64; size / 8];
    let mut outcome = run_workload(&mut plain, spec);
    outcome.rss_peak_kib = peak.finish();
    outcome
}

/// One contiguous part of the region and the state of the thread that works on it.
struct Part<'a> {
    /// Index of the part's first word in the whole region.
    base: usize,
    words: &'a mut [u64],
    rng: SplitMix64,
    touches: u64,
    /// `rand`: the current value of each page's hot word, the one the touches overwrite.
    hot: Vec<u64>,
    latencies_ns: Vec<u32>,
    mismatches: u64,
}

/// The workload itself, identical for ghost and plain memory: fill, touch (for `rand`), scan.
fn run_workload(words: &mut [u64], spec: &Spec) -> Outcome {
    let wpp = spec.words_per_page;
    let mut parts = split(words, spec);
    let threads = parts.len();
    tracing::debug!(workload = spec.workload.name(), threads, "fill");
    let fill = in_parallel(&mut parts, fill_part);
    if spec.workload == Workload::Rand {
        for part in &mut parts {
            let pages = part.words.len() / wpp;
            part.hot = (0..pages)
                .map(|p| {
                    seq_value(to_u64(
                        part.base + p * wpp + hot_word(part.base / wpp + p, wpp),
                    ))
                })
                .collect();
            part.latencies_ns = Vec::with_capacity(usize::try_from(part.touches).unwrap_or(0));
        }
        tracing::debug!(touches = spec.touches, "touch");
        in_parallel(&mut parts, |part| touch_part(part, wpp));
    }
    tracing::debug!("scan");
    let scan = in_parallel(&mut parts, |part| scan_part(part, wpp));
    let mut latencies_ns: Vec<u32> = parts
        .iter_mut()
        .flat_map(|p| p.latencies_ns.drain(..))
        .collect();
    latencies_ns.sort_unstable();
    Outcome {
        bytes: to_u64(words_len(&parts) * 8),
        threads,
        fill,
        scan,
        latencies_ns,
        mismatches: parts.iter().map(|p| p.mismatches).sum(),
        rss_peak_kib: 0,
        stats: Stats::default(),
        backend: None,
    }
}

fn words_len(parts: &[Part<'_>]) -> usize {
    parts.iter().map(|p| p.words.len()).sum()
}

/// Split the region into at most `spec.threads` parts of whole pages, as even as possible.
fn split<'a>(mut words: &'a mut [u64], spec: &Spec) -> Vec<Part<'a>> {
    let wpp = spec.words_per_page;
    let pages = words.len() / wpp;
    let count = spec.threads.clamp(1, pages.max(1));
    let count64 = to_u64(count);
    let mut parts = Vec::with_capacity(count);
    let mut base = 0;
    for k in 0..count {
        let part_pages = pages / count + usize::from(k < pages % count);
        let (head, tail) = std::mem::take(&mut words).split_at_mut(part_pages * wpp);
        words = tail;
        let k64 = to_u64(k);
        parts.push(Part {
            base,
            rng: SplitMix64::new(derive_seed(spec.seed, k64)),
            touches: spec.touches / count64 + u64::from(k64 < spec.touches % count64),
            words: head,
            hot: Vec::new(),
            latencies_ns: Vec::new(),
            mismatches: 0,
        });
        base += part_pages * wpp;
    }
    parts
}

/// Run `work` on every part, one thread each, and give the wall-clock time of the whole.
fn in_parallel(parts: &mut [Part<'_>], work: impl Fn(&mut Part<'_>) + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for part in parts.iter_mut() {
            let work = &work;
            scope.spawn(move || work(part));
        }
    });
    start.elapsed()
}

fn fill_part(part: &mut Part<'_>) {
    let base = to_u64(part.base);
    for (word, index) in part.words.iter_mut().zip(base..) {
        *word = seq_value(index);
    }
}

/// The word of page `page` (numbered across the whole region) that `rand` overwrites.
fn hot_word(page: usize, words_per_page: usize) -> usize {
    let hash = mix64(to_u64(page));
    usize::try_from(hash % to_u64(words_per_page)).expect("below the words per page")
}

/// `rand`: each touch reads a random word of a random page, checks it, and writes a new value
/// to the page's hot word.
fn touch_part(part: &mut Part<'_>, wpp: usize) {
    // Let the words escape, so the compiler cannot move the accesses across the clock reads.
    let words = std::hint::black_box(&mut *part.words);
    let pages = words.len() / wpp;
    let first_page = part.base / wpp;
    for _ in 0..part.touches {
        let page = part.rng.index(pages);
        let word = part.rng.index(wpp);
        let new_value = part.rng.next_u64();
        let hot = hot_word(first_page + page, wpp);
        let expected = if word == hot {
            part.hot[page]
        } else {
            seq_value(to_u64(part.base + page * wpp + word))
        };
        let start = Instant::now();
        let found = words[page * wpp + word];
        words[page * wpp + hot] = new_value;
        let elapsed = start.elapsed();
        part.hot[page] = new_value;
        part.mismatches += u64::from(found != expected);
        part.latencies_ns
            .push(u32::try_from(elapsed.as_nanos()).unwrap_or(u32::MAX));
    }
}

/// Read every word back and count those that differ from what was written.
fn scan_part(part: &mut Part<'_>, wpp: usize) {
    let first_page = part.base / wpp;
    let mut mismatches = 0;
    for (p, page) in part.words.chunks(wpp).enumerate() {
        let hot = part
            .hot
            .get(p)
            .map(|&value| (hot_word(first_page + p, wpp), value));
        let base = to_u64(part.base + p * wpp);
        for ((w, &found), index) in page.iter().enumerate().zip(base..) {
            let expected = match hot {
                Some((hot_w, value)) if hot_w == w => value,
                _ => seq_value(index),
            };
            mismatches += u64::from(found != expected);
        }
    }
    part.mismatches += std::hint::black_box(mismatches);
}

/// Bytes per nanosecond is GB/s.
fn gbps(bytes: u64, time: Duration) -> f64 {
    let nanos = time.as_nanos();
    if nanos == 0 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss, reason = "a rate for display")]
    let rate = bytes as f64 / nanos as f64;
    rate
}

/// Latency summary in microseconds: (mean, p50, p99, max); zeros without touches.
fn latency_us(sorted_ns: &[u32]) -> (f64, f64, f64, f64) {
    if sorted_ns.is_empty() {
        return (0.0, 0.0, 0.0, 0.0);
    }
    let n = sorted_ns.len();
    let at = |q: usize| f64::from(sorted_ns[(n * q / 100).min(n - 1)]) / 1000.0;
    let sum: u64 = sorted_ns.iter().map(|&ns| u64::from(ns)).sum();
    #[allow(clippy::cast_precision_loss, reason = "a mean for display")]
    let mean = sum as f64 / n as f64 / 1000.0;
    (mean, at(50), at(99), f64::from(sorted_ns[n - 1]) / 1000.0)
}

struct Header {
    memory: Memory,
    workload: Workload,
    size: usize,
    budget_pages: usize,
    page: usize,
}

/// The fields of one run: the same set for the ghost run and the baseline.
fn outcome_json(outcome: &Outcome) -> Map<String, Value> {
    let (mean, p50, p99, max) = latency_us(&outcome.latencies_ns);
    let mut map = Map::new();
    map.insert("fill_gbps".into(), json!(gbps(outcome.bytes, outcome.fill)));
    map.insert("scan_gbps".into(), json!(gbps(outcome.bytes, outcome.scan)));
    map.insert("fill_seconds".into(), json!(outcome.fill.as_secs_f64()));
    map.insert("scan_seconds".into(), json!(outcome.scan.as_secs_f64()));
    map.insert("touches".into(), json!(outcome.latencies_ns.len()));
    map.insert("touch_mean_us".into(), json!(mean));
    map.insert("touch_p50_us".into(), json!(p50));
    map.insert("touch_p99_us".into(), json!(p99));
    map.insert("touch_max_us".into(), json!(max));
    map.insert("rss_peak_kib".into(), json!(outcome.rss_peak_kib));
    map.insert("mismatches".into(), json!(outcome.mismatches));
    map.insert("verified".into(), json!(outcome.mismatches == 0));
    map.extend(stats_json(&outcome.stats));
    map
}

fn ratio(ghost: f64, plain: f64) -> f64 {
    if plain > 0.0 { ghost / plain } else { 0.0 }
}

fn json_report(header: &Header, ghost: &Outcome, baseline: Option<&Outcome>) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("workload".into(), json!(header.workload.name()));
    map.insert(
        "memory".into(),
        json!(match header.memory {
            Memory::Ghost => "ghost",
            Memory::Plain => "plain",
        }),
    );
    map.insert("size_bytes".into(), json!(header.size));
    map.insert(
        "budget_bytes".into(),
        json!(header.budget_pages * header.page),
    );
    map.insert("budget_pages".into(), json!(header.budget_pages));
    map.insert("threads".into(), json!(ghost.threads));
    map.insert(
        "backend".into(),
        json!(ghost.backend.map(ghostmem::FaultBackend::name)),
    );
    map.insert("page_size".into(), json!(header.page));
    map.extend(outcome_json(ghost));
    if let Some(plain) = baseline {
        let (g_mean, ..) = latency_us(&ghost.latencies_ns);
        let (p_mean, ..) = latency_us(&plain.latencies_ns);
        #[allow(clippy::cast_precision_loss, reason = "a ratio for display")]
        let rss = ratio(ghost.rss_peak_kib as f64, plain.rss_peak_kib as f64);
        map.insert("baseline".into(), json!({ "kind": "plain" }));
        if let Some(Value::Object(object)) = map.get_mut("baseline") {
            object.extend(outcome_json(plain));
        }
        map.insert(
            "vs_baseline".into(),
            json!({
                "fill_speed": ratio(gbps(ghost.bytes, ghost.fill), gbps(plain.bytes, plain.fill)),
                "scan_speed": ratio(gbps(ghost.bytes, ghost.scan), gbps(plain.bytes, plain.scan)),
                "touch_mean_latency": ratio(g_mean, p_mean),
                "rss_peak": rss,
            }),
        );
    }
    map
}

fn print_table(header: &Header, ghost: &Outcome, baseline: Option<&Outcome>) {
    println!(
        "bench {}{}: {} region, budget {}, {} thread{}, {}-byte pages",
        header.workload.name(),
        if header.memory == Memory::Plain {
            " on plain memory"
        } else {
            ""
        },
        format_bytes(to_u64(header.size)),
        describe_pages(header.budget_pages),
        ghost.threads,
        if ghost.threads == 1 { "" } else { "s" },
        header.page,
    );
    println!();
    // Each row: label, a value per run (as number and text); the number gives the ratio column
    // (`-` where it is 0 for the baseline, as for counts and yes/no).
    let row = |label: &str, value: &dyn Fn(&Outcome) -> (f64, String)| {
        let (g, g_text) = value(ghost);
        match baseline {
            None => println!("  {label:<14} {g_text:>14}"),
            Some(plain) => {
                let (p, p_text) = value(plain);
                let r = if p > 0.0 {
                    format!("{:.2}x", g / p)
                } else {
                    "-".to_owned()
                };
                println!("  {label:<14} {g_text:>14} {p_text:>14} {r:>12}");
            }
        }
    };
    if baseline.is_some() {
        println!(
            "  {:<14} {:>14} {:>14} {:>12}",
            "", "ghostmem", "plain", "ghost/plain"
        );
    }
    let rate = |d: fn(&Outcome) -> Duration| {
        move |o: &Outcome| {
            let r = gbps(o.bytes, d(o));
            (r, format!("{r:.3} GB/s"))
        }
    };
    row("fill", &rate(|o| o.fill));
    row("scan+verify", &rate(|o| o.scan));
    if header.workload == Workload::Rand {
        let lat = |pick: fn((f64, f64, f64, f64)) -> f64| {
            move |o: &Outcome| {
                let v = pick(latency_us(&o.latencies_ns));
                (v, format!("{v:.2} µs"))
            }
        };
        row("touches", &|o: &Outcome| {
            (0.0, o.latencies_ns.len().to_string())
        });
        row("touch mean", &lat(|l| l.0));
        row("touch p50", &lat(|l| l.1));
        row("touch p99", &lat(|l| l.2));
        row("touch max", &lat(|l| l.3));
    }
    row("peak RSS", &|o: &Outcome| {
        #[allow(clippy::cast_precision_loss, reason = "a size for display")]
        let kib = o.rss_peak_kib as f64;
        (kib, format_bytes(o.rss_peak_kib.saturating_mul(1024)))
    });
    row("verified", &|o: &Outcome| {
        let text = if o.mismatches == 0 {
            "yes".to_owned()
        } else {
            format!("NO ({} bad)", o.mismatches)
        };
        (0.0, text)
    });
    println!();
    if let Some(backend) = ghost.backend {
        for (label, text) in stats_lines(backend, &ghost.stats) {
            println!("  {label:<14} {text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(workload: Workload, threads: usize) -> Spec {
        Spec {
            workload,
            threads,
            touches: 1000,
            seed: 1,
            words_per_page: 512,
        }
    }

    #[test]
    fn workloads_verify_on_plain_memory() {
        for workload in [Workload::Seq, Workload::Rand] {
            for threads in [1, 3, 64] {
                let mut words = vec![0u64; 512 * 10];
                let outcome = run_workload(&mut words, &spec(workload, threads));
                assert_eq!(outcome.mismatches, 0);
                assert_eq!(outcome.threads, threads.min(10));
                let expected = if workload == Workload::Rand { 1000 } else { 0 };
                assert_eq!(outcome.latencies_ns.len(), expected);
            }
        }
    }

    #[test]
    fn parts_cover_the_region() {
        let mut words = vec![0u64; 512 * 10];
        let parts = split(&mut words, &spec(Workload::Rand, 3));
        let pages: Vec<usize> = parts.iter().map(|p| p.words.len() / 512).collect();
        assert_eq!(pages, [4, 3, 3]);
        assert_eq!(parts[1].base, 4 * 512);
        assert_eq!(parts.iter().map(|p| p.touches).sum::<u64>(), 1000);
    }

    #[test]
    fn latency_percentiles() {
        let ns: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        let (mean, p50, p99, max) = latency_us(&ns);
        assert!((mean - 50.5).abs() < 1e-9);
        assert!((p50 - 51.0).abs() < 1e-9);
        assert!((p99 - 100.0).abs() < 1e-9);
        assert!((max - 100.0).abs() < 1e-9);
        assert_eq!(latency_us(&[]), (0.0, 0.0, 0.0, 0.0));
    }
}
