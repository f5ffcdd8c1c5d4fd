//! `simulate --report FILE.html`: the report as one self-contained page. Inline SVG and CSS
//! only: no script, and no font, style sheet or image from elsewhere, so the file opens
//! anywhere, offline, and can be attached to a ticket.
//!
//! The charts: each strategy's bad-session rate over simulated time (incidents, drifts and
//! ingest incidents marked, the warm-up shaded); per viewer region, each provider's share of
//! new sessions over time for the engine and for the oracle; cost per 1,000 sessions; and the
//! summary table.

use std::fmt::Write;

use super::{Outcome, Report, SUMMARY_COLUMNS, summary_cells};
use crate::sim::{Scenario, Strategy};

const STRATEGY_COLOURS: [(&str, &str); 5] = [
    ("engine", "#1f77b4"),
    ("static", "#7f7f7f"),
    ("random", "#bcbd22"),
    ("best_historical", "#ff7f0e"),
    ("oracle", "#2ca02c"),
];

const PROVIDER_COLOURS: [&str; 8] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f",
];

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;

/// Escapes text for HTML and SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn colour(strategy: Strategy) -> &'static str {
    STRATEGY_COLOURS
        .iter()
        .find(|(s, _)| *s == strategy.as_str())
        .map_or("#000", |(_, c)| c)
}

/// Maps simulated seconds and a value to the plot area.
struct Axes {
    seconds: f64,
    y_max: f64,
}

impl Axes {
    fn x(&self, t: f64) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * (t / self.seconds).clamp(0.0, 1.0)
    }

    fn y(&self, v: f64) -> f64 {
        TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - (v / self.y_max).clamp(0.0, 1.0))
    }

    /// The frame, the time axis in minutes, the value axis with `unit`, and the warm-up.
    fn frame(&self, out: &mut String, unit: &str, warmup: f64) {
        if warmup > 0.0 {
            let _ = write!(
                out,
                r##"<rect class="warmup" x="{:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="#eee"><title>warm-up (not counted)</title></rect>"##,
                self.x(0.0),
                self.x(warmup) - self.x(0.0),
                HEIGHT - TOP - BOTTOM
            );
        }
        let _ = write!(
            out,
            r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#999"/>"##,
            WIDTH - LEFT - RIGHT,
            HEIGHT - TOP - BOTTOM
        );
        let minutes = self.seconds / 60.0;
        let step = [
            1.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 240.0, 720.0, 1440.0,
        ]
        .into_iter()
        .find(|s| minutes / s <= 12.0)
        .unwrap_or(2880.0);
        let mut m = 0.0;
        while m <= minutes + 1e-9 {
            let x = self.x(m * 60.0);
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{m:.0}</text>"##,
                HEIGHT - BOTTOM,
                HEIGHT - BOTTOM + 4.0,
                HEIGHT - BOTTOM + 16.0
            );
            m += step;
        }
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">simulated minutes</text>"##,
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
            HEIGHT - 4.0
        );
        for k in 0..=4 {
            let v = self.y_max * f64::from(k) / 4.0;
            let y = self.y(v);
            let _ = write!(
                out,
                r##"<line x1="{:.1}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="#999"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}{unit}</text>"##,
                LEFT - 4.0,
                LEFT - 6.0,
                y + 4.0,
                short(v)
            );
        }
    }
}

fn short(v: f64) -> String {
    if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Bands for what the world does to providers: incidents (a drift as a ramp), their
/// recoveries, and ingest incidents; only those of `region` when one is given.
fn events(out: &mut String, axes: &Axes, scenario: &Scenario, region: Option<&str>) {
    let (top, bottom) = (TOP, HEIGHT - BOTTOM);
    let shown = |r: &str| region.is_none_or(|x| x == r);
    for o in scenario.occurrences.iter().filter(|o| shown(&o.region)) {
        let (x0, x1, x2) = (
            axes.x(o.start_seconds),
            axes.x(o.ramped_seconds),
            axes.x(o.end_seconds),
        );
        let x3 = axes.x(o.end_seconds + o.recovery_seconds);
        let what = if o.ramped_seconds > o.start_seconds {
            "drift"
        } else {
            "incident"
        };
        let _ = write!(
            out,
            r##"<polygon class="incident" points="{x0:.1},{bottom:.1} {x1:.1},{top:.1} {x2:.1},{top:.1} {x3:.1},{bottom:.1}" fill="#d62728" fill-opacity="0.12" stroke="#d62728" stroke-opacity="0.5"><title>{what}: {} in {}, {:.0}-{:.0} s</title></polygon><text x="{:.1}" y="{:.1}" font-size="10" fill="#d62728">{what} {} {}</text>"##,
            esc(&o.provider),
            esc(&o.region),
            o.start_seconds,
            o.end_seconds,
            x0 + 2.0,
            top + 11.0,
            esc(&o.provider),
            esc(&o.region)
        );
    }
    for i in scenario
        .ingest_incidents
        .iter()
        .map(|i| &i.value)
        .filter(|i| shown(&i.region))
    {
        let (x0, x1) = (axes.x(i.start_seconds), axes.x(i.end_seconds));
        let _ = write!(
            out,
            r##"<rect class="incident" x="{x0:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="#9467bd" fill-opacity="0.15" stroke="#9467bd" stroke-opacity="0.5"><title>ingest incident: {}'s anchors on {}, {:.0}-{:.0} s</title></rect><text x="{:.1}" y="{:.1}" font-size="10" fill="#9467bd">ingest {} {}</text>"##,
            (x1 - x0).max(1.0),
            bottom - top,
            esc(&i.region),
            esc(&i.provider),
            i.start_seconds,
            i.end_seconds,
            x0 + 2.0,
            top + 23.0,
            esc(&i.provider),
            esc(&i.region)
        );
    }
}

/// Each strategy's bad-session rate per bucket of start time.
fn bad_rate_chart(report: &Report, scenario: &Scenario) -> String {
    let seconds = report.simulated_seconds as f64;
    let rate = |o: &Outcome, b: usize| {
        let (n, bad) = o.timeline.sessions[b];
        (n > 0).then(|| bad as f64 * 100.0 / n as f64)
    };
    let y_max = report
        .outcomes
        .iter()
        .flat_map(|o| (0..o.timeline.sessions.len()).filter_map(move |b| rate(o, b)))
        .fold(1.0f64, f64::max)
        .min(100.0)
        * 1.05;
    let axes = Axes { seconds, y_max };
    let mut out = format!(
        r#"<svg class="chart" id="bad-rate" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="bad-session rate over time">"#
    );
    axes.frame(&mut out, "%", report.warmup_seconds);
    events(&mut out, &axes, scenario, None);
    for o in &report.outcomes {
        let w = o.timeline.bucket_seconds;
        let points: Vec<String> = (0..o.timeline.sessions.len())
            .filter_map(|b| {
                let t = (b as f64 + 0.5) * w;
                (t <= seconds)
                    .then(|| rate(o, b))
                    .flatten()
                    .map(|v| format!("{:.1},{:.1}", axes.x(t), axes.y(v)))
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="series" data-strategy="{0}" points="{1}" fill="none" stroke="{2}" stroke-width="1.5"><title>{0}</title></polyline>"#,
            o.strategy.as_str(),
            points.join(" "),
            colour(o.strategy)
        );
    }
    out.push_str("</svg>");
    out
}

/// Stacked shares of new sessions per provider in `region` (an index) over time.
fn share_chart(
    report: &Report,
    scenario: &Scenario,
    o: &Outcome,
    region: usize,
    providers: &[String],
) -> String {
    let seconds = report.simulated_seconds as f64;
    let axes = Axes {
        seconds,
        y_max: 100.0,
    };
    let region_name = scenario
        .regions
        .keys()
        .nth(region)
        .cloned()
        .unwrap_or_default();
    let mut out = format!(
        r#"<svg class="chart share" data-strategy="{0}" data-region="{1}" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{0}: provider shares of new sessions in {1}">"#,
        o.strategy.as_str(),
        esc(&region_name)
    );
    axes.frame(&mut out, "%", report.warmup_seconds);
    let w = o.timeline.bucket_seconds;
    let buckets: Vec<usize> = (0..o.timeline.firsts.len())
        .filter(|&b| b as f64 * w < seconds)
        .collect();
    // Per bucket, the running total below each provider's band.
    let mut below = vec![0.0; buckets.len()];
    for (p, name) in providers.iter().enumerate() {
        let mut upper = Vec::with_capacity(buckets.len());
        let mut lower = Vec::with_capacity(buckets.len());
        for (k, &b) in buckets.iter().enumerate() {
            let row = &o.timeline.firsts[b][region];
            let total: u64 = row.iter().sum();
            let share = if total > 0 {
                row[p] as f64 * 100.0 / total as f64
            } else {
                0.0
            };
            let (x0, x1) = (
                axes.x(b as f64 * w),
                axes.x(((b + 1) as f64 * w).min(seconds)),
            );
            lower.push((x0, x1, axes.y(below[k])));
            below[k] += share;
            upper.push((x0, x1, axes.y(below[k])));
        }
        if upper
            .iter()
            .zip(&lower)
            .all(|(u, l)| (u.2 - l.2).abs() < 1e-9)
        {
            continue;
        }
        let mut points: Vec<String> = Vec::new();
        for (x0, x1, y) in &upper {
            points.push(format!("{x0:.1},{y:.1} {x1:.1},{y:.1}"));
        }
        for (x0, x1, y) in lower.iter().rev() {
            points.push(format!("{x1:.1},{y:.1} {x0:.1},{y:.1}"));
        }
        let _ = write!(
            out,
            r#"<polygon class="band" data-provider="{0}" points="{1}" fill="{2}" fill-opacity="0.85"><title>{0}</title></polygon>"#,
            esc(name),
            points.join(" "),
            PROVIDER_COLOURS[p % PROVIDER_COLOURS.len()]
        );
    }
    events(&mut out, &axes, scenario, Some(&region_name));
    out.push_str("</svg>");
    out
}

/// Cost per 1,000 sessions, one bar per strategy.
fn cost_chart(report: &Report) -> String {
    let max = report
        .outcomes
        .iter()
        .map(|o| o.cost_per_1000_sessions)
        .fold(0.0f64, f64::max);
    let (w, row) = (WIDTH, 26.0);
    let h = TOP + row * report.outcomes.len() as f64 + 8.0;
    let mut out = format!(
        r#"<svg class="chart" id="cost" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="cost per 1000 sessions">"#
    );
    let span = w - 160.0 - 120.0;
    for (k, o) in report.outcomes.iter().enumerate() {
        let y = TOP + row * k as f64;
        let len = if max > 0.0 {
            (o.cost_per_1000_sessions / max * span).max(1.0)
        } else {
            1.0
        };
        let _ = write!(
            out,
            r#"<text x="150" y="{ty:.1}" font-size="12" text-anchor="end">{name}</text><rect class="bar" data-strategy="{name}" x="160" y="{y:.1}" width="{len:.1}" height="18" fill="{fill}"/><text x="{tx:.1}" y="{ty:.1}" font-size="12">{cost:.2}</text>"#,
            name = o.strategy.as_str(),
            fill = colour(o.strategy),
            cost = o.cost_per_1000_sessions,
            ty = y + 13.0,
            tx = 166.0 + len,
        );
    }
    out.push_str("</svg>");
    out
}

fn legend(items: &[(String, &str)]) -> String {
    let mut out = String::from(r#"<p class="legend">"#);
    for (name, c) in items {
        let _ = write!(
            out,
            r#"<span><svg width="12" height="12" xmlns="http://www.w3.org/2000/svg"><rect width="12" height="12" fill="{c}"/></svg> {}</span> "#,
            esc(name)
        );
    }
    out.push_str("</p>");
    out
}

fn summary_table(report: &Report) -> String {
    let mut out = String::from("<table id=\"summary\"><tr>");
    for c in SUMMARY_COLUMNS {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("</tr>");
    for o in &report.outcomes {
        out.push_str("<tr>");
        for c in summary_cells(o) {
            let _ = write!(out, "<td>{}</td>", esc(&c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    let ratios: Vec<String> = report
        .ratios()
        .iter()
        .map(|(k, v)| format!("{v:.2}× {k}"))
        .collect();
    // Without the engine, or with nothing to compare it to, there is no ratio to show.
    if !ratios.is_empty() {
        let _ = write!(
            out,
            "<p>engine bad-session rate: {}</p>",
            esc(&ratios.join(", "))
        );
    }
    out
}

/// The page.
pub fn html(report: &Report, scenario: &Scenario) -> String {
    let providers: Vec<String> = scenario.providers.keys().cloned().collect();
    let worlds = match report.seeds.as_slice() {
        [one] => format!("seed {one}"),
        seeds => format!(
            "seeds {} to {} ({} worlds pooled)",
            seeds.first().copied().unwrap_or(0),
            seeds.last().copied().unwrap_or(0),
            seeds.len()
        ),
    };
    let mut out = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>livesteer simulation: {name}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; max-width: 960px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
.legend span {{ margin-right: 1em; white-space: nowrap; }}
svg.chart {{ display: block; margin: 0.5em 0 1.5em; }}
</style></head><body>
<h1>Simulation: {name}</h1>
<p>{desc}</p>
<p>{worlds}, {secs} s simulated, the first {warm} s a warm-up (shaded, not counted in the table).</p>
<h2>Summary</h2>
"#,
        name = esc(&report.scenario),
        desc = esc(&scenario.description),
        secs = report.simulated_seconds,
        warm = report.warmup_seconds,
    );
    out.push_str(&summary_table(report));
    out.push_str("<h2>Bad-session rate over time</h2><p>Sessions by the minute they started; incidents and drifts in red (a drift as a ramp), ingest incidents in purple.</p>");
    let strategies: Vec<(String, &str)> = report
        .outcomes
        .iter()
        .map(|o| (o.strategy.as_str().to_string(), colour(o.strategy)))
        .collect();
    out.push_str(&legend(&strategies));
    out.push_str(&bad_rate_chart(report, scenario));
    out.push_str("<h2>Where new sessions start</h2><p>Each provider's share of new sessions per viewer region over time, for the engine and for the oracle.</p>");
    let provider_legend: Vec<(String, &str)> = providers
        .iter()
        .enumerate()
        .map(|(p, n)| (n.clone(), PROVIDER_COLOURS[p % PROVIDER_COLOURS.len()]))
        .collect();
    out.push_str(&legend(&provider_legend));
    for (r, region) in scenario.regions.keys().enumerate() {
        for s in [Strategy::Engine, Strategy::Oracle] {
            if let Some(o) = report.outcomes.iter().find(|o| o.strategy == s) {
                let _ = write!(out, "<h3>{}: {}</h3>", esc(region), s.as_str());
                out.push_str(&share_chart(report, scenario, o, r, &providers));
            }
        }
    }
    out.push_str("<h2>Cost per 1,000 sessions</h2><p>Playing time at the policy's bitrate, at each provider's price per GB.</p>");
    out.push_str(&cost_chart(report));
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<a href="x">&</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
