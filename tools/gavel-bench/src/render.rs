//! `gavel-bench render`: reports → a Markdown table and an SVG chart of glass-to-glass
//! percentiles against watcher count (log–log), with no external tools.

use crate::cli::RenderArgs;
use crate::report::{Report, StepReport};
use anyhow::Context;
use std::fmt::Write as _;

pub fn render(args: &RenderArgs) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for p in &args.reports {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let r: Report =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
        reports.push(r);
    }
    std::fs::write(&args.table, table(&reports))?;
    let ladder: Vec<&StepReport> = reports
        .iter()
        .filter(|r| r.scenario == "ladder")
        .flat_map(|r| r.steps.iter())
        .filter(|s| s.g2g_us.count > 0)
        .collect();
    std::fs::write(&args.svg, svg(&ladder))?;
    Ok(())
}

fn ms(us: u64) -> String {
    if us == 0 {
        "–".into()
    } else if us < 10_000 {
        format!("{:.2}", us as f64 / 1000.0)
    } else {
        format!("{:.1}", us as f64 / 1000.0)
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

pub fn table(reports: &[Report]) -> String {
    let mut s = String::new();
    s.push_str("| scenario | step | watchers | offered bids/s | decisions/s | accepted/s | updates/s | g2g p50 | p90 | p99 | p99.9 | max | rtt p50 | rtt p99 | server CPU µs/update | server CPU µs/bid | tool CPU µs/update | KiB/idle conn | archive tx/accepted | checks |\n");
    s.push_str(
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n",
    );
    for r in reports {
        let verdict = if r.ok { "ok" } else { "**VIOLATIONS**" };
        for st in &r.steps {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.scenario,
                st.name,
                st.watchers,
                st.offered_rate,
                st.decisions_per_s,
                st.accepted_per_s,
                st.updates_per_s,
                ms(st.g2g_us.p50),
                ms(st.g2g_us.p90),
                ms(st.g2g_us.p99),
                ms(st.g2g_us.p999),
                ms(st.g2g_us.max),
                ms(st.rtt_us.p50),
                ms(st.rtt_us.p99),
                opt(st.server.cpu_us_per_update, 2),
                opt(st.server.cpu_us_per_answer, 1),
                opt(st.tool_cpu_us_per_update, 2),
                opt(st.server.idle_kib_per_conn, 1),
                st.server
                    .batches_per_accepted
                    .map_or("–".into(), |r| format!("{:.2}%", r * 100.0)),
                verdict,
            );
        }
    }
    s.push_str("\nMachine load per step (cores busy on average; `other` = used by neither the server nor gavel-bench, i.e. other work on this shared machine):\n\n");
    for r in reports {
        for st in &r.steps {
            if let (Some(m), Some(o)) = (st.machine_busy_cores, st.other_busy_cores) {
                let _ = writeln!(
                    s,
                    "- {} / {}: {m:.2} busy, other {o:.2}",
                    r.scenario, st.name
                );
            }
        }
    }
    s.push_str("\nLatencies in ms. g2g: scheduled bid time → a watcher receives the matching update, over every watcher's delivery. rtt: scheduled bid time → `bid_result`.\n");
    s
}

const SERIES: [(&str, &str); 5] = [
    ("p50", "#1b9e77"),
    ("p90", "#7570b3"),
    ("p99", "#d95f02"),
    ("p99.9", "#e7298a"),
    ("max", "#666666"),
];

fn value(st: &StepReport, series: &str) -> u64 {
    match series {
        "p50" => st.g2g_us.p50,
        "p90" => st.g2g_us.p90,
        "p99" => st.g2g_us.p99,
        "p99.9" => st.g2g_us.p999,
        _ => st.g2g_us.max,
    }
}

/// A log–log line chart: x watchers, y glass-to-glass latency in ms.
pub fn svg(steps: &[&StepReport]) -> String {
    let (w, h) = (720.0, 420.0);
    let (left, right, top, bottom) = (70.0, 110.0, 30.0, 50.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="18" text-anchor="middle" font-size="14">Glass-to-glass latency vs watchers on one auction (ladder)</text>"#,
        w / 2.0
    );
    if steps.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">no ladder data</text></svg>"#,
            w / 2.0,
            h / 2.0
        );
        return s;
    }
    let xs: Vec<f64> = steps.iter().map(|st| st.watchers.max(1) as f64).collect();
    let ys: Vec<f64> = steps
        .iter()
        .flat_map(|st| {
            SERIES
                .iter()
                .map(|(n, _)| value(st, n).max(1) as f64 / 1000.0)
        })
        .collect();
    let x0 = xs.iter().cloned().fold(f64::MAX, f64::min).log10().floor();
    let x1 = xs
        .iter()
        .cloned()
        .fold(0.0, f64::max)
        .log10()
        .ceil()
        .max(x0 + 1.0);
    let y0 = ys.iter().cloned().fold(f64::MAX, f64::min).log10().floor();
    let y1 = ys
        .iter()
        .cloned()
        .fold(0.0, f64::max)
        .log10()
        .ceil()
        .max(y0 + 1.0);
    let px = |x: f64| left + (x.log10() - x0) / (x1 - x0) * (w - left - right);
    let py = |y: f64| h - bottom - (y.log10() - y0) / (y1 - y0) * (h - top - bottom);
    // Grid and axes.
    let mut d = x0;
    while d <= x1 {
        let x = px(10f64.powf(d));
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            h - bottom,
            h - bottom + 16.0,
            fmt_count(10f64.powf(d))
        );
        d += 1.0;
    }
    let mut d = y0;
    while d <= y1 {
        let y = py(10f64.powf(d));
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            w - right,
            left - 6.0,
            y + 4.0,
            fmt_ms(10f64.powf(d))
        );
        d += 1.0;
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">watchers (log scale)</text>"#,
        (left + w - right) / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">latency, ms (log scale)</text>"#,
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0
    );
    for (i, (name, color)) in SERIES.iter().enumerate() {
        let pts: Vec<String> = steps
            .iter()
            .map(|st| {
                format!(
                    "{:.1},{:.1}",
                    px(st.watchers.max(1) as f64),
                    py(value(st, name).max(1) as f64 / 1000.0)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(s, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
        }
        let ly = top + 10.0 + i as f64 * 18.0;
        let lx = w - right + 15.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{name}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0
        );
    }
    // The targets for p99 (issue 6): 25 ms at 10,000 watchers, 250 ms at 100,000.
    for (watchers, ms) in [(10_000.0, 25.0), (100_000.0, 250.0)] {
        if watchers <= 10f64.powf(x1) && ms >= 10f64.powf(y0) && ms <= 10f64.powf(y1) {
            let (x, y) = (px(watchers), py(ms));
            let _ = writeln!(
                s,
                r##"<path d="M{:.1},{:.1} l8,8 m0,-8 l-8,8" stroke="#c00" stroke-width="2"/><text x="{:.1}" y="{:.1}" fill="#c00">p99 target</text>"##,
                x - 4.0,
                y - 4.0,
                x + 8.0,
                y + 4.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_count(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}k", (v / 1000.0).round())
    } else {
        format!("{}", v.round())
    }
}

fn fmt_ms(v: f64) -> String {
    if v >= 1.0 {
        format!("{}", v.round())
    } else {
        format!("{v}")
    }
}
