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
