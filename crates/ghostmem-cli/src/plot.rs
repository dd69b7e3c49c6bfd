//! `ghostmem plot` and `ghostmem bench --plot`: runs saved by `bench --json`, drawn as one SVG
//! figure (plotters' SVG backend).
//!
//! ```text
//! +------------------------------------------------------------------+
//! | title: region, budget, threads (when all runs share them)        |
//! +--------------------------------+---------------------------------+
//! | rand: touch latency CDF        | hot: touch latency CDF          |  one panel per workload,
//! | x: µs (log), y: fraction ≤ x   |                                 |  one line per run
//! +--------------------------------+---------------------------------+
//! | fill GB/s (log), a bar per run | verifying scan GB/s, a bar/run  |
//! +--------------------------------+---------------------------------+
//! ```
//!
//! A run's colour is that of its label, the same in every panel, so `ghost` under `rand` and
//! `ghost` under `hot` read as one series.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use serde_json::Value;

use crate::engine::Failure;
use crate::size::format_bytes;

/// Arguments of `ghostmem plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// The SVG file to write.
    #[arg(long, value_name = "FILE.svg")]
    out: PathBuf,
    /// A title above the figure (default: the region, budget and threads, when all runs share
    /// them).
    #[arg(long)]
    title: Option<String>,
    /// Files written by `ghostmem bench --workload rand|hot --json` (one or more JSON objects
    /// each). A run is named by its `label` (`bench --label`), else by its memory kind; a run
    /// with a `--baseline plain` adds a `plain` run.
    #[arg(required = true, value_name = "RUN.json")]
    runs: Vec<PathBuf>,
}

/// One run as the figure needs it.
#[derive(Debug, Clone)]
pub struct Run {
    label: String,
    workload: String,
    fill_gbps: f64,
    scan_gbps: f64,
    /// `[quantile, µs]` points, quantiles increasing.
    quantiles: Vec<(f64, f64)>,
    /// Region and threads, as text.
    setting: String,
    /// Ghost memory's resident budget, as text (`None` for plain memory).
    budget: Option<String>,
    /// For the `hot` workload: the hot set, as text.
    hot: Option<String>,
}

/// Run `ghostmem plot`.
pub fn run(args: &PlotArgs) -> Result<ExitCode, Failure> {
    let mut runs = Vec::new();
    for path in &args.runs {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|err| Failure::Usage(format!("cannot read {source}: {err}")))?;
        let mut found = 0;
        for report in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
            let report = report
                .map_err(|err| Failure::Usage(format!("{source} is not bench JSON: {err}")))?;
            runs.extend(runs_of(&report, &source)?);
            found += 1;
        }
        if found == 0 {
            return Err(Failure::Usage(format!("{source} holds no run")));
        }
    }
    write_figure_titled(&args.out, &runs, args.title.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// The runs in one report of `bench --json`: the run, and its baseline if it has one.
pub fn runs_of(report: &Value, source: &str) -> Result<Vec<Run>, Failure> {
    let bad = |what: &str| Failure::Usage(format!("{source}: {what}"));
    if !report.is_object() {
        return Err(bad("not a JSON object from `ghostmem bench --json`"));
    }
    let text = |key: &str| report[key].as_str().map(str::to_owned);
    let workload = text("workload").ok_or_else(|| bad("no \"workload\": not bench JSON"))?;
    let label = text("label")
        .or_else(|| text("memory"))
        .ok_or_else(|| bad("neither \"label\" nor \"memory\": not bench JSON"))?;
    let setting = setting_of(report);
    let budget = match report["memory"].as_str() {
        Some("ghost") => report["budget_bytes"].as_u64().map(format_bytes),
        _ => None,
    };
    let hot = match (
        report["hot_bytes"].as_u64(),
        report["hot_fraction"].as_f64(),
    ) {
        (Some(bytes), Some(fraction)) => Some(format!(
            "{} hot set, {:.0} % of touches",
            format_bytes(bytes),
            fraction * 100.0
        )),
        _ => None,
    };
    let one = |run: &Value, label: String| -> Result<Run, Failure> {
        let number = |key: &str| {
            run[key]
                .as_f64()
                .ok_or_else(|| bad(&format!("{label}: no number \"{key}\"")))
        };
        let quantiles = quantiles_of(&run["latency_percentiles_us"]).ok_or_else(|| {
            bad(&format!(
                "{label}: no touch latencies (\"latency_percentiles_us\"); plot needs \
                 `bench --workload rand|hot --json` from this version"
            ))
        })?;
        Ok(Run {
            fill_gbps: number("fill_gbps")?,
            scan_gbps: number("scan_gbps")?,
            quantiles,
            label,
            workload: workload.clone(),
            setting: setting.clone(),
            budget: budget.clone(),
            hot: hot.clone(),
        })
    };
    let mut runs = vec![one(report, label)?];
    if report["baseline"].is_object() {
        let mut plain = one(&report["baseline"], "plain".to_owned())?;
        plain.budget = None;
        runs.push(plain);
    }
    Ok(runs)
}

/// The `[quantile, µs]` pairs of a run; `None` if missing, empty or malformed.
fn quantiles_of(value: &Value) -> Option<Vec<(f64, f64)>> {
    let points = value
        .as_array()?
        .iter()
        .map(|pair| Some((pair.get(0)?.as_f64()?, pair.get(1)?.as_f64()?)))
        .collect::<Option<Vec<_>>>()?;
    let ordered = points
        .windows(2)
        .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1);
    (!points.is_empty() && ordered).then_some(points)
}

fn setting_of(report: &Value) -> String {
    let bytes = |key: &str| report[key].as_u64().map(format_bytes);
    let mut parts = Vec::new();
    if let Some(size) = bytes("size_bytes") {
        parts.push(format!("{size} region"));
    }
    if let Some(threads) = report["threads"].as_u64() {
        parts.push(format!(
            "{threads} thread{}",
            if threads == 1 { "" } else { "s" }
        ));
    }
    parts.join(", ")
}

/// Draw `runs` into an SVG file at `path`, titled by their common setting.
pub fn write_figure(path: &Path, runs: &[Run]) -> Result<(), Failure> {
    write_figure_titled(path, runs, None)
}

fn write_figure_titled(path: &Path, runs: &[Run], title: Option<&str>) -> Result<(), Failure> {
    let mut svg = String::new();
    draw(&mut svg, runs, title)
        .map_err(|err| Failure::Runtime(format!("drawing the figure failed: {err}")))?;
    std::fs::write(path, svg)
        .map_err(|err| Failure::Runtime(format!("cannot write {}: {err}", path.display())))
}

/// Colours for labels, in order of first appearance (the first is ghost memory's, usually).
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Distinct values in order of first appearance.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = Vec::new();
    for value in values {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

const FONT: &str = "sans-serif";

fn draw(svg: &mut String, runs: &[Run], title: Option<&str>) -> DrawResult {
    let labels = distinct(runs.iter().map(|r| r.label.as_str()));
    let colour = |label: &str| {
        let k = labels.iter().position(|&l| l == label).unwrap_or(0);
        PALETTE[k % PALETTE.len()]
    };
    let workloads = distinct(runs.iter().map(|r| r.workload.as_str()));
    let settings = distinct(runs.iter().map(|r| r.setting.as_str()));
    let budgets = distinct(runs.iter().filter_map(|r| r.budget.as_deref()));
    let title = match title {
        Some(title) => title.to_owned(),
        None => {
            let mut title = "ghostmem bench".to_owned();
            if let [setting] = settings.as_slice()
                && !setting.is_empty()
            {
                title += &format!(": {setting}");
            }
            if let [budget] = budgets.as_slice() {
                title += &format!(", ghost memory's budget {budget}");
            }
            title
        }
    };

    let root = SVGBackend::with_string(svg, (1200, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(&title, (FONT, 24))?;
    let (top, bottom) = root.split_vertically(500);
    let cdf_areas = top.split_evenly((1, workloads.len().max(1)));
    for (area, &workload) in cdf_areas.iter().zip(&workloads) {
        let these: Vec<&Run> = runs.iter().filter(|r| r.workload == workload).collect();
        let caption = match these.iter().find_map(|r| r.hot.as_deref()) {
            Some(hot) => format!("{workload} ({hot}): touch latency"),
            None => format!("{workload}: touch latency"),
        };
        draw_cdf(area, &caption, &these, &colour)?;
    }
    let bar_areas = bottom.split_evenly((1, 2));
    draw_bars(&bar_areas[0], "fill", runs, |r| r.fill_gbps, &colour)?;
    draw_bars(
        &bar_areas[1],
        "verifying scan",
        runs,
        |r| r.scan_gbps,
        &colour,
    )?;
    root.present()?;
    Ok(())
}

/// The lowest latency a log axis shows: a touch faster than the clock's resolution reads 0.
const FLOOR_US: f64 = 0.01;

/// A value for an axis label: 0.01, 0.5, 3, 40, 1200.
fn short_number(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}").trim_end_matches(".0").to_owned()
    } else {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A rate with three significant digits: 0.0352, 0.370, 1.86, 20.4.
fn significant(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        // Digits after the point: three plus the zeros after it (0.0352 → 4).
        let zeros = (-v.log10()).floor().clamp(0.0, 6.0);
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "clamped to 0..=6"
        )]
        let digits = zeros as usize + 3;
        format!("{v:.digits$}")
    }
}

fn draw_cdf<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    runs: &[&Run],
    colour: &dyn Fn(&str) -> RGBColor,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let all = runs
        .iter()
        .flat_map(|r| r.quantiles.iter().map(|&(_, us)| us));
    let (lo, hi) = all.fold((f64::INFINITY, 0.0f64), |(lo, hi), us| {
        (lo.min(us.max(FLOOR_US)), hi.max(us))
    });
    let (lo, hi) = (lo / 1.5, (hi * 1.5).max(lo * 10.0));
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 18))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)?;
    chart
        .configure_mesh()
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .x_desc("touch latency, µs (log scale)")
        .y_desc("fraction of touches ≤ x")
        .x_label_formatter(&|v| short_number(*v))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .draw()?;
    for run in runs {
        let style = colour(&run.label).stroke_width(2);
        let points = run.quantiles.iter().map(|&(q, us)| (us.max(FLOOR_US), q));
        let at = |q: f64| {
            run.quantiles
                .iter()
                .find(|&&(rq, _)| rq >= q)
                .map_or(0.0, |&(_, us)| us)
        };
        chart
            .draw_series(LineSeries::new(points, style))?
            .label(format!(
                "{}: p50 {} µs, p99 {} µs",
                run.label,
                short_number(at(0.5)),
                short_number(at(0.99))
            ))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 14))
        .draw()?;
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    what: &str,
    runs: &[Run],
    value: fn(&Run) -> f64,
    colour: &dyn Fn(&str) -> RGBColor,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let rates: Vec<f64> = runs.iter().map(|r| value(r).max(1e-4)).collect();
    let lo = rates.iter().copied().fold(f64::INFINITY, f64::min) / 3.0;
    let hi = rates.iter().copied().fold(0.0, f64::max) * 3.0;
    let names: Vec<String> = runs
        .iter()
        .map(|r| format!("{} {}", r.label, r.workload))
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{what}: GB/s"), (FONT, 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(55)
        // An integer range's segments include its end: 0..=n-1 gives n bars.
        .build_cartesian_2d(
            (0..runs.len().saturating_sub(1)).into_segmented(),
            (lo..hi).log_scale(),
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(runs.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .y_desc("GB/s (log scale)")
        .y_label_formatter(&|v| short_number(*v))
        .draw()?;
    chart.draw_series(
        runs.iter()
            .zip(&rates)
            .enumerate()
            .map(|(i, (run, &rate))| {
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), lo),
                        (SegmentValue::Exact(i + 1), rate),
                    ],
                    colour(&run.label).filled(),
                );
                bar.set_margin(0, 0, 10, 10);
                bar
            }),
    )?;
    chart.draw_series(rates.iter().enumerate().map(|(i, &rate)| {
        Text::new(
            significant(rate),
            (SegmentValue::CenterOf(i), rate * 1.08),
            TextStyle::from((FONT, 13)).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Bottom,
            )),
        )
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(label: Option<&str>, workload: &str) -> Value {
        let mut r = json!({
            "workload": workload,
            "memory": "ghost",
            "size_bytes": 1 << 20,
            "budget_bytes": 1 << 18,
            "threads": 1,
            "fill_gbps": 0.5,
            "scan_gbps": 0.4,
            "latency_percentiles_us": [[0.0, 0.0], [0.5, 2.0], [1.0, 30.0]],
        });
        if let Some(label) = label {
            r["label"] = json!(label);
        }
        r
    }

    #[test]
    fn runs_are_labelled_by_label_or_memory() {
        let runs = runs_of(&report(None, "rand"), "a.json").unwrap();
        assert_eq!(runs[0].label, "ghost");
        assert_eq!(runs[0].setting, "1.00 MiB region, 1 thread");
        assert_eq!(runs[0].budget.as_deref(), Some("256.0 KiB"));
        let runs = runs_of(&report(Some("zram"), "hot"), "a.json").unwrap();
        assert_eq!(runs[0].label, "zram");
        let mut with_baseline = report(None, "rand");
        with_baseline["baseline"] = report(None, "rand");
        let runs = runs_of(&with_baseline, "a.json").unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1].label, "plain");
    }

    #[test]
    fn missing_or_unordered_latencies_are_refused() {
        let mut r = report(None, "seq");
        r["latency_percentiles_us"] = json!([]);
        let Err(Failure::Usage(message)) = runs_of(&r, "seq.json") else {
            panic!("accepted")
        };
        assert!(
            message.starts_with("seq.json: ghost: no touch latencies"),
            "{message}"
        );
        r["latency_percentiles_us"] = json!([[0.0, 5.0], [1.0, 1.0]]);
        assert!(runs_of(&r, "x").is_err());
        assert!(runs_of(&json!([1, 2]), "x").is_err());
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(0.01), "0.01");
        assert_eq!(short_number(0.5), "0.5");
        assert_eq!(short_number(3.0), "3");
        assert_eq!(short_number(2.5), "2.5");
        assert_eq!(short_number(1200.0), "1200");
        assert_eq!(significant(0.0352), "0.0352");
        assert_eq!(significant(0.37), "0.370");
        assert_eq!(significant(1.864), "1.86");
        assert_eq!(significant(20.43), "20.4");
    }

    #[test]
    fn figure_draws_without_touching_disk() {
        let mut runs = runs_of(&report(None, "rand"), "a").unwrap();
        runs.extend(runs_of(&report(Some("plain"), "hot"), "b").unwrap());
        let mut svg = String::new();
        draw(&mut svg, &runs, None).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("ghost: p50 2 µs, p99 30 µs"));
    }
}
