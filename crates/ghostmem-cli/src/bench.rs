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
use crate::plot;
use crate::procfs::PeakRss;
use crate::size::{format_bytes, parse_nonzero_size, to_u64};

/// Arguments of `ghostmem bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// `seq`: fill the region, then scan and verify it; `rand`: fill it, then touch random pages
    /// (read and check a value, write a new one), timing each touch; `hot`: like `rand`, but a
    /// fraction of the touches go to a hot set (`--hot`, `--hot-fraction`).
    #[arg(long, value_enum, default_value_t = Workload::Seq)]
    workload: Workload,
    /// `hot`: size of the hot set (a size, rounded up to pages): that many pages spread evenly
    /// over the region, one every region/hot pages. Required with `--workload hot`.
    #[arg(long, value_parser = parse_nonzero_size, required_if_eq("workload", "hot"))]
    hot: Option<usize>,
    /// `hot`: the fraction of touches that go to the hot set; the rest pick any page uniformly.
    #[arg(long, default_value_t = 0.9, value_parser = parse_fraction)]
    hot_fraction: f64,
    /// Size of the region (bytes, or with a K/KiB, M/MiB, G/GiB suffix); rounded up to pages.
    #[arg(long, default_value = "256MiB", value_parser = parse_nonzero_size)]
    size: usize,
    /// Resident budget (a size, converted to whole pages).
    #[arg(long, default_value = "16MiB", value_parser = parse_nonzero_size)]
    budget: usize,
    /// Worker threads; the region is split into this many contiguous parts, one per thread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Timed touches in the `rand` and `hot` workloads, split across the threads.
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
    /// A name for this run in the JSON (`"label"`) and in plots (default: the memory kind).
    #[arg(long)]
    label: Option<String>,
    /// Also draw the run as an SVG figure: touch latency CDF and throughput bars (see
    /// `ghostmem plot` to put several runs in one figure).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<std::path::PathBuf>,
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
    /// Fill, then timed touches of which a fraction go to a hot set, then a verifying scan.
    Hot,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Self::Seq => "seq",
            Self::Rand => "rand",
            Self::Hot => "hot",
        }
    }

    /// Whether the workload has a timed touch phase.
    fn touches(self) -> bool {
        matches!(self, Self::Rand | Self::Hot)
    }
}

/// The clap value parser of `--hot-fraction`: a number from 0 to 1.
fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err("expected a fraction from 0 to 1, such as 0.9".to_owned()),
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

impl Memory {
    fn name(self) -> &'static str {
        match self {
            Self::Ghost => "ghost",
            Self::Plain => "plain",
        }
    }
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
    /// The hot set of the `hot` workload.
    hot: Option<HotSet>,
}

/// The hot set of the `hot` workload.
struct HotSet {
    /// Pages in the hot set (at most the region's pages).
    pages: usize,
    /// The fraction of touches that go to it.
    fraction: f64,
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
    if args.plot.is_some() && !args.workload.touches() {
        return Err(Failure::Usage(
            "--plot draws touch latencies: use it with --workload rand or hot".to_owned(),
        ));
    }
    let hot = match (args.workload, args.hot) {
        (Workload::Hot, Some(bytes)) => {
            let bytes = round_to_pages(bytes)?;
            if bytes > size {
                return Err(Failure::Usage(format!(
                    "the hot set ({}) is larger than the region ({})",
                    format_bytes(to_u64(bytes)),
                    format_bytes(to_u64(size))
                )));
            }
            Some(HotSet {
                pages: bytes / page,
                fraction: args.hot_fraction,
            })
        }
        (Workload::Hot, None) => unreachable!("clap requires --hot with --workload hot"),
        (_, Some(_)) => {
            return Err(Failure::Usage(
                "--hot is only used by --workload hot".to_owned(),
            ));
        }
        (_, None) => None,
    };
    let spec = Spec {
        workload: args.workload,
        threads: usize::from(args.threads),
        touches: if args.workload.touches() {
            args.touches
        } else {
            0
        },
        seed: args.seed,
        words_per_page: page / 8,
        hot,
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
        label: args.label.clone(),
        size,
        budget_pages,
        page,
        hot: spec
            .hot
            .as_ref()
            .map(|hot| (hot.pages * page, hot.fraction)),
    };
    let report = Value::Object(json_report(&header, &ghost, baseline.as_ref()));
    if args.json {
        println!("{report}");
    } else {
        print_table(&header, &ghost, baseline.as_ref());
    }
    // After the report, so a figure that cannot be written loses no measurement.
    if let Some(path) = &args.plot {
        let runs = plot::runs_of(&report, &path.display().to_string())?;
        plot::write_figure(path, &runs)?;
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
    /// `rand`, `hot`: the current value of each page's target word, the one touches overwrite.
    written: Vec<u64>,
    /// `hot`: the part's hot pages, as page indices within the part. A part that holds none of
    /// the hot set (fewer hot pages than threads) touches its pages uniformly.
    hot_pages: Vec<usize>,
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
    if spec.workload.touches() {
        let total_pages = words_len(&parts) / wpp;
        for part in &mut parts {
            let pages = part.words.len() / wpp;
            part.written = (0..pages)
                .map(|p| {
                    seq_value(to_u64(
                        part.base + p * wpp + target_word(part.base / wpp + p, wpp),
                    ))
                })
                .collect();
            part.latencies_ns = Vec::with_capacity(usize::try_from(part.touches).unwrap_or(0));
            if let Some(hot) = &spec.hot {
                let first = part.base / wpp;
                part.hot_pages = hot_pages(total_pages, hot.pages)
                    .filter_map(|p| p.checked_sub(first).filter(|&q| q < pages))
                    .collect();
            }
        }
        tracing::debug!(touches = spec.touches, "touch");
        let fraction = spec.hot.as_ref().map(|hot| hot.fraction);
        in_parallel(&mut parts, |part| touch_part(part, wpp, fraction));
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

/// The hot set of the `hot` workload: `hot` pages out of `total`, spread evenly over the whole
/// region (one every `total / hot` pages), as page indices in increasing order.
///
/// Spread rather than contiguous on purpose: the workload asks whether the replacement policy
/// keeps the pages in use resident, wherever they are. A contiguous hot set would also reward
/// sequential readahead and run-sized eviction, which a real program's hot data (scattered
/// through its heap) gets no help from; and spread evenly, every thread's part holds its share
/// of the hot set.
fn hot_pages(total: usize, hot: usize) -> impl Iterator<Item = usize> {
    let hot = hot.min(total);
    // j * total / hot without overflow: both below 2^48 on any real address space.
    (0..hot).map(move |j| {
        usize::try_from(to_u64(j) * to_u64(total) / to_u64(hot)).expect("below total")
    })
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
            written: Vec::new(),
            hot_pages: Vec::new(),
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
fn target_word(page: usize, words_per_page: usize) -> usize {
    let hash = mix64(to_u64(page));
    usize::try_from(hash % to_u64(words_per_page)).expect("below the words per page")
}

/// `rand`, `hot`: each touch reads a random word of a page, checks it, and writes a new value
/// to the page's target word. `rand` picks the page uniformly; `hot` picks one of the part's hot
/// pages with probability `hot.fraction`, else any page uniformly.
fn touch_part(part: &mut Part<'_>, wpp: usize, hot: Option<f64>) {
    // Let the words escape, so the compiler cannot move the accesses across the clock reads.
    let words = std::hint::black_box(&mut *part.words);
    let pages = words.len() / wpp;
    let first_page = part.base / wpp;
    for _ in 0..part.touches {
        let page = pick_page(&mut part.rng, pages, &part.hot_pages, hot);
        let word = part.rng.index(wpp);
        let new_value = part.rng.next_u64();
        let target = target_word(first_page + page, wpp);
        let expected = if word == target {
            part.written[page]
        } else {
            seq_value(to_u64(part.base + page * wpp + word))
        };
        let start = Instant::now();
        let found = words[page * wpp + word];
        words[page * wpp + target] = new_value;
        let elapsed = start.elapsed();
        part.written[page] = new_value;
        part.mismatches += u64::from(found != expected);
        part.latencies_ns
            .push(u32::try_from(elapsed.as_nanos()).unwrap_or(u32::MAX));
    }
}

/// The page of the next touch: one of `hot_pages` with probability `hot` (when given and there
/// are any), else any of `pages` uniformly.
fn pick_page(rng: &mut SplitMix64, pages: usize, hot_pages: &[usize], hot: Option<f64>) -> usize {
    match hot {
        Some(fraction) if !hot_pages.is_empty() && rng.chance(fraction) => {
            hot_pages[rng.index(hot_pages.len())]
        }
        _ => rng.index(pages),
    }
}

/// Read every word back and count those that differ from what was written.
fn scan_part(part: &mut Part<'_>, wpp: usize) {
    let first_page = part.base / wpp;
    let mut mismatches = 0;
    for (p, page) in part.words.chunks(wpp).enumerate() {
        let target = part
            .written
            .get(p)
            .map(|&value| (target_word(first_page + p, wpp), value));
        let base = to_u64(part.base + p * wpp);
        for ((w, &found), index) in page.iter().enumerate().zip(base..) {
            let expected = match target {
                Some((target_w, value)) if target_w == w => value,
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
    label: Option<String>,
    size: usize,
    budget_pages: usize,
    page: usize,
    /// `hot`: the hot set's bytes and the fraction of touches that go to it.
    hot: Option<(usize, f64)>,
}

/// The quantiles at which the latency distribution is reported: every percent, then the tail.
const QUANTILES_TAIL: [f64; 4] = [0.995, 0.999, 0.9995, 0.9999];

/// The touch latency distribution: `[quantile, µs]` pairs at 0, 0.01, …, 0.99, the tail
/// quantiles and 1 (the maximum), by nearest rank like [`latency_us`]; empty without touches.
fn latency_quantiles(sorted_ns: &[u32]) -> Vec<(f64, f64)> {
    if sorted_ns.is_empty() {
        return Vec::new();
    }
    let n = sorted_ns.len();
    let percents = (0..100u32).map(|p| f64::from(p) / 100.0);
    percents
        .chain(QUANTILES_TAIL)
        .chain([1.0])
        .map(|q| {
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a rank from a quantile in 0..=1, clamped below n"
            )]
            let rank = ((n as f64 * q) as usize).min(n - 1);
            (q, f64::from(sorted_ns[rank]) / 1000.0)
        })
        .collect()
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
    map.insert(
        "latency_percentiles_us".into(),
        Value::Array(
            latency_quantiles(&outcome.latencies_ns)
                .into_iter()
                .map(|(q, us)| json!([q, us]))
                .collect(),
        ),
    );
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
    map.insert("memory".into(), json!(header.memory.name()));
    if let Some(label) = &header.label {
        map.insert("label".into(), json!(label));
    }
    if let Some((bytes, fraction)) = header.hot {
        map.insert("hot_bytes".into(), json!(bytes));
        map.insert("hot_fraction".into(), json!(fraction));
    }
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
    if let Some((bytes, fraction)) = header.hot {
        println!(
            "hot set: {} spread over the region, {:.0} % of the touches",
            format_bytes(to_u64(bytes)),
            fraction * 100.0
        );
    }
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
    if header.workload.touches() {
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
            hot: (workload == Workload::Hot).then_some(HotSet {
                pages: 5,
                fraction: 0.9,
            }),
        }
    }

    #[test]
    fn workloads_verify_on_plain_memory() {
        for workload in [Workload::Seq, Workload::Rand, Workload::Hot] {
            for threads in [1, 3, 64] {
                let mut words = vec![0u64; 512 * 10];
                let outcome = run_workload(&mut words, &spec(workload, threads));
                assert_eq!(outcome.mismatches, 0);
                assert_eq!(outcome.threads, threads.min(10));
                let expected = if workload.touches() { 1000 } else { 0 };
                assert_eq!(outcome.latencies_ns.len(), expected);
            }
        }
    }

    #[test]
    fn hot_set_is_spread_evenly() {
        assert_eq!(hot_pages(10, 5).collect::<Vec<_>>(), [0, 2, 4, 6, 8]);
        assert_eq!(hot_pages(10, 3).collect::<Vec<_>>(), [0, 3, 6]);
        assert_eq!(hot_pages(4, 9).collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(hot_pages(7, 1).collect::<Vec<_>>(), [0]);
    }

    /// Pages whose target word no longer holds its filled value: the pages touches wrote.
    fn written_pages(words: &[u64]) -> Vec<usize> {
        (0..words.len() / 512)
            .filter(|&p| {
                let w = p * 512 + target_word(p, 512);
                words[w] != seq_value(to_u64(w))
            })
            .collect()
    }

    #[test]
    fn hot_touches_go_to_the_hot_set() {
        for threads in [1, 3] {
            let mut only_hot = spec(Workload::Hot, threads);
            only_hot.hot = Some(HotSet {
                pages: 5,
                fraction: 1.0,
            });
            let mut words = vec![0u64; 512 * 10];
            let outcome = run_workload(&mut words, &only_hot);
            assert_eq!(outcome.mismatches, 0);
            assert_eq!(written_pages(&words), [0, 2, 4, 6, 8], "{threads} threads");
        }
    }

    #[test]
    fn hot_fraction_of_touches() {
        // 90 % to 5 of 100 pages, plus the uniform touches that land there by chance (0.5 %).
        let hot: Vec<usize> = hot_pages(100, 5).collect();
        let mut rng = SplitMix64::new(7);
        let mut counts = [0u32; 100];
        for _ in 0..10_000 {
            counts[pick_page(&mut rng, 100, &hot, Some(0.9))] += 1;
        }
        let to_hot: u32 = hot.iter().map(|&p| counts[p]).sum();
        assert!(
            (8950..=9150).contains(&to_hot),
            "{to_hot} of 10000 touches hot"
        );
        assert!(
            counts.iter().all(|&c| c > 0),
            "every page is touched: {counts:?}"
        );
        // Without a hot set (a part that holds none of it), or without `hot`, touches are uniform.
        for (hot_pages, fraction) in [(&[][..], Some(0.9)), (&hot[..], None)] {
            let mut counts = [0u32; 100];
            for _ in 0..10_000 {
                counts[pick_page(&mut rng, 100, hot_pages, fraction)] += 1;
            }
            assert!(
                counts.iter().all(|&c| (50..=160).contains(&c)),
                "{counts:?}"
            );
        }
    }

    #[test]
    fn quantiles_cover_the_distribution() {
        let ns: Vec<u32> = (1..=10_000).collect();
        let q = latency_quantiles(&ns);
        assert_eq!(q.len(), 100 + QUANTILES_TAIL.len() + 1);
        assert_eq!(q[0], (0.0, 0.001));
        assert_eq!(q[50], (0.5, 5.001));
        assert_eq!(*q.last().unwrap(), (1.0, 10.0));
        assert!(q.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        assert!(latency_quantiles(&[]).is_empty());
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
