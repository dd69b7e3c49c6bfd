//! Runs the built `ghostmem` binary with small sizes.

use std::process::{Command, Output};

use serde_json::Value;

fn ghostmem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ghostmem"))
        .args(args)
        .output()
        .expect("the ghostmem binary runs")
}

/// Run a command that must succeed and print exactly one JSON object on stdout.
fn json_of(args: &[&str]) -> Value {
    let out = ghostmem(args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{args:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    assert_eq!(
        stdout.trim().lines().count(),
        1,
        "one line of JSON: {stdout}"
    );
    let value: Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    assert!(value.is_object(), "{value}");
    value
}

fn number(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number in {report}"))
}

const RUN_FIELDS: [&str; 17] = [
    "fill_gbps",
    "scan_gbps",
    "touches",
    "touch_mean_us",
    "touch_p50_us",
    "touch_p99_us",
    "rss_peak_kib",
    "compressed_bytes",
    "original_bytes",
    "faults",
    "evictions",
    "restores",
    "zero_pages",
    "same_filled_pages",
    "compressed_pages",
    "incompressible_pages",
    "compression_ratio",
];

fn assert_run_fields(run: &Value) {
    for key in RUN_FIELDS {
        number(run, key);
    }
    assert_eq!(run["verified"], Value::Bool(true), "{run}");
}

#[test]
fn bench_seq_json_verifies() {
    let report = json_of(&[
        "bench",
        "--workload",
        "seq",
        "--size",
        "8MiB",
        "--budget",
        "1MiB",
        "--json",
    ]);
    assert_run_fields(&report);
    assert_eq!(report["workload"], "seq");
    assert_eq!(number(&report, "size_bytes"), f64::from(8u32 << 20));
    let page = number(&report, "page_size");
    assert_eq!(
        number(&report, "budget_bytes"),
        (f64::from(1u32 << 20) / page).floor() * page
    );
    assert_eq!(number(&report, "threads"), 1.0);
    assert!(number(&report, "fill_gbps") > 0.0);
    assert!(number(&report, "scan_gbps") > 0.0);
    assert_eq!(number(&report, "touches"), 0.0);
    // 8 MiB through a 1 MiB budget must evict and restore.
    assert!(number(&report, "evictions") > 0.0, "{report}");
    assert!(number(&report, "restores") > 0.0, "{report}");
    assert!(report.get("baseline").is_none());
}

#[test]
fn bench_rand_json_with_baseline_and_threads() {
    let report = json_of(&[
        "bench",
        "--workload",
        "rand",
        "--size",
        "4MiB",
        "--budget",
        "512KiB",
        "--touches",
        "5000",
        "--threads",
        "2",
        "--baseline",
        "plain",
        "--json",
    ]);
    assert_run_fields(&report);
    assert_eq!(report["workload"], "rand");
    assert_eq!(number(&report, "threads"), 2.0);
    assert_eq!(number(&report, "touches"), 5000.0);
    assert!(number(&report, "touch_p99_us") >= number(&report, "touch_p50_us"));
    assert!(number(&report, "touch_mean_us") > 0.0);
    let baseline = &report["baseline"];
    assert_run_fields(baseline);
    assert_eq!(number(baseline, "touches"), 5000.0);
    assert_eq!(number(baseline, "faults"), 0.0);
    assert!(report["vs_baseline"]["fill_speed"].is_number());
}

#[test]
fn bench_table_prints() {
    let out = ghostmem(&[
        "bench",
        "--size",
        "2MiB",
        "--budget",
        "256KiB",
        "--baseline",
        "plain",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("ghost/plain") && stdout.contains("peak RSS"),
        "{stdout}"
    );
}

#[test]
fn stress_loses_nothing() {
    let report = json_of(&[
        "stress",
        "--threads",
        "2",
        "--budget",
        "8",
        "--seconds",
        "2",
        "--json",
    ]);
    assert_eq!(report["lost"], 0, "{report}");
    assert!(number(&report, "checked") > 0.0);
    assert_eq!(number(&report, "threads"), 2.0);
    assert_eq!(number(&report, "budget_pages"), 8.0);
    assert!(number(&report, "evictions") > 0.0, "{report}");
    for key in ["seconds", "faults", "restores"] {
        number(&report, key);
    }
}

#[test]
fn bad_size_is_a_one_line_usage_error() {
    for args in [
        &["bench", "--size", "12XB"][..],
        &["demo", "--budget", "lots"],
        &["bench", "--size", "0"],
        &["bench", "--workload", "zigzag"],
        &["stress", "--threads", "0"],
    ] {
        let out = ghostmem(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr:?}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn too_small_a_budget_is_a_usage_error() {
    for args in [
        &["bench", "--size", "1MiB", "--budget", "100"][..],
        &["stress", "--budget", "1", "--seconds", "1"],
    ] {
        let out = ghostmem(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr:?}");
    }
}

#[test]
fn demo_runs() {
    let out = ghostmem(&["demo", "--size", "16MiB", "--budget", "2MiB"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    for needle in [
        "data size",
        "budget",
        "RSS before",
        "RSS after",
        "ratio",
        "lz4",
        "restores",
        "verified",
    ] {
        assert!(stdout.contains(needle), "{needle} in {stdout}");
    }
    // Not a terminal: no progress bar.
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn bench_through_an_encrypted_swap_file() {
    let dir = std::env::temp_dir().join(format!("ghostmem-cli-disk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let swap = dir.join("bench.swap");
    let swap = swap.to_str().unwrap();
    let r = json_of(&[
        "bench",
        "--workload",
        "seq",
        "--size",
        "4MiB",
        "--budget",
        "256KiB",
        "--disk",
        swap,
        "--encrypt",
        "--json",
    ]);
    assert_eq!(r["verified"], Value::Bool(true), "{r}");
    assert!(
        number(&r, "store_file_bytes") > 0.0,
        "pages went to the file: {r}"
    );
    assert_eq!(number(&r, "store_write_errors"), 0.0, "{r}");
    assert!(
        !std::path::Path::new(swap).exists(),
        "the swap file is removed at exit"
    );
    // --encrypt without --disk is a usage error.
    let out = ghostmem(&["bench", "--encrypt"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The `[quantile, µs]` pairs of a run: increasing in both.
fn assert_latency_distribution(run: &Value) {
    let points = run["latency_percentiles_us"]
        .as_array()
        .unwrap_or_else(|| panic!("latency_percentiles_us in {run}"));
    assert!(points.len() >= 100, "{} points", points.len());
    let pairs: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    assert!(
        pairs
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
    );
    assert_eq!(pairs[0].0, 0.0);
    assert_eq!(*pairs.last().unwrap(), (1.0, number(run, "touch_max_us")));
}

#[test]
fn bench_hot_json_on_ghost_and_plain_memory() {
    for memory in ["ghost", "plain"] {
        let report = json_of(&[
            "bench",
            "--workload",
            "hot",
            "--hot",
            "256KiB",
            "--hot-fraction",
            "0.8",
            "--memory",
            memory,
            "--size",
            "4MiB",
            "--budget",
            "512KiB",
            "--touches",
            "4000",
            "--threads",
            "2",
            "--json",
        ]);
        assert_run_fields(&report);
        assert_latency_distribution(&report);
        assert_eq!(report["workload"], "hot");
        assert_eq!(report["memory"], memory);
        assert_eq!(number(&report, "hot_bytes"), f64::from(256u32 << 10));
        assert_eq!(number(&report, "hot_fraction"), 0.8);
        assert_eq!(number(&report, "threads"), 2.0);
        assert_eq!(number(&report, "touches"), 4000.0);
        assert!(number(&report, "touch_p99_us") >= number(&report, "touch_p50_us"));
    }
}

#[test]
fn bench_hot_argument_errors_are_one_line() {
    for args in [
        &["bench", "--workload", "hot"][..],
        &["bench", "--workload", "rand", "--hot", "1MiB"],
        &[
            "bench",
            "--workload",
            "hot",
            "--hot",
            "8MiB",
            "--size",
            "4MiB",
        ],
        &[
            "bench",
            "--workload",
            "hot",
            "--hot",
            "1MiB",
            "--hot-fraction",
            "1.5",
        ],
        &["bench", "--workload", "seq", "--plot", "x.svg"],
    ] {
        let out = ghostmem(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr:?}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr:?}");
    }
}

/// A scratch directory for one test, removed by the caller.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ghostmem-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a figure shows: its text, and the fill colours of its rectangles.
struct Figure {
    texts: Vec<String>,
    /// Polylines drawn 2 pixels wide with more than two points: the CDF lines.
    cdf_lines: usize,
    /// Opaque coloured rectangles: the bars.
    bars: usize,
}

fn read_figure(path: &std::path::Path) -> Figure {
    let svg = std::fs::read_to_string(path).expect("the figure is written");
    let doc = roxmltree::Document::parse(&svg).expect("the figure is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let elements = || root.descendants().filter(roxmltree::Node::is_element);
    Figure {
        texts: elements()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .map(|t| t.trim().to_owned())
            .collect(),
        cdf_lines: elements()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some("2"))
            .filter(|n| {
                n.attribute("points")
                    .unwrap_or("")
                    .split_whitespace()
                    .count()
                    > 2
            })
            .count(),
        bars: elements()
            .filter(|n| n.has_tag_name("rect") && n.attribute("opacity") == Some("1"))
            .filter(|n| !matches!(n.attribute("fill"), Some("#FFFFFF" | "none")))
            .count(),
    }
}

#[test]
fn plot_combines_runs_into_one_svg() {
    let dir = scratch("plot");
    let small = ["--size", "2MiB", "--budget", "256KiB", "--touches", "2000"];
    let runs: [(&str, &[&str]); 3] = [
        (
            "ghost-rand.json",
            &["--workload", "rand", "--baseline", "plain"],
        ),
        ("ghost-hot.json", &["--workload", "hot", "--hot", "128KiB"]),
        (
            "other-hot.json",
            &[
                "--workload",
                "hot",
                "--hot",
                "128KiB",
                "--memory",
                "plain",
                "--label",
                "other",
            ],
        ),
    ];
    let mut files = Vec::new();
    for (name, args) in runs {
        let mut all = vec!["bench", "--json"];
        all.extend(small);
        all.extend(args);
        let report = json_of(&all);
        let path = dir.join(name);
        std::fs::write(&path, report.to_string()).unwrap();
        files.push(path.to_str().unwrap().to_owned());
    }
    let out = dir.join("figure.svg");
    let mut args = vec!["plot", "--out", out.to_str().unwrap()];
    args.extend(files.iter().map(String::as_str));
    let result = ghostmem(&args);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let figure = read_figure(&out);
    // Four runs: ghost rand, its plain baseline, ghost hot, other hot.
    assert_eq!(figure.cdf_lines, 4, "{:?}", figure.texts);
    assert_eq!(figure.bars, 8, "a fill and a scan bar per run");
    let legend = |label: &str| {
        figure
            .texts
            .iter()
            .filter(|t| t.starts_with(&format!("{label}: p50 ")))
            .count()
    };
    assert_eq!(
        (legend("ghost"), legend("plain"), legend("other")),
        (2, 1, 1)
    );
    for caption in ["rand: touch latency", "fill: GB/s", "verifying scan: GB/s"] {
        assert!(
            figure.texts.iter().any(|t| t == caption),
            "{caption}: {:?}",
            figure.texts
        );
    }
    assert!(
        figure
            .texts
            .iter()
            .any(|t| t.starts_with("hot (128.0 KiB hot set, 90 % of touches)"))
    );
    for name in ["ghost rand", "plain rand", "ghost hot", "other hot"] {
        assert!(
            figure.texts.iter().any(|t| t == name),
            "{name}: {:?}",
            figure.texts
        );
    }

    // bench --plot draws the same figure for one run.
    let single = dir.join("single.svg");
    let mut args = vec![
        "bench",
        "--workload",
        "rand",
        "--plot",
        single.to_str().unwrap(),
    ];
    args.extend(small);
    let result = ghostmem(&args);
    assert!(result.status.success());
    assert_eq!(read_figure(&single).cdf_lines, 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn plot_refuses_bad_input_in_one_line() {
    let dir = scratch("plot-bad");
    let seq = dir.join("seq.json");
    let report = json_of(&["bench", "--size", "1MiB", "--budget", "256KiB", "--json"]);
    std::fs::write(&seq, report.to_string()).unwrap();
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "fill_gbps: fast").unwrap();
    let empty = dir.join("empty.json");
    std::fs::write(&empty, "").unwrap();
    let missing = dir.join("missing.json");
    let out = dir.join("out.svg");
    for (input, expected) in [
        (&missing, "cannot read"),
        (&seq, "no touch latencies"),
        (&garbage, "is not bench JSON"),
        (&empty, "holds no run"),
    ] {
        let result = ghostmem(&[
            "plot",
            "--out",
            out.to_str().unwrap(),
            input.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{input:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr:?}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{stderr:?}"
        );
        assert!(!out.exists(), "no figure from bad input");
    }
    // No input at all is clap's usage error.
    assert_eq!(ghostmem(&["plot", "--out", "x.svg"]).status.code(), Some(2));
    std::fs::remove_dir_all(dir).unwrap();
}
