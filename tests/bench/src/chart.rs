//! The chart of chapter 7, as SVG written by hand (std only): the time of
//! one message between two new clients against the number of idle
//! connections the server holds, one line per server, both axes on a
//! logarithmic scale (the figures span three orders of magnitude).

use std::fmt::Write;
use std::time::Duration;

/// One server's measurements: (connections held, time of a message).
pub struct Line {
    pub name: String,
    pub points: Vec<(usize, Duration)>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 430.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 64.0;
/// Colours that stay apart for most kinds of colour blindness (Okabe-Ito).
const COLOURS: [&str; 6] = [
    "#d55e00", "#0072b2", "#009e73", "#cc79a7", "#e69f00", "#56b4e9",
];

/// The SVG document.
pub fn draw(lines: &[Line]) -> String {
    let points = lines.iter().flat_map(|line| line.points.iter());
    let counts: Vec<f64> = points.clone().map(|(count, _)| *count as f64).collect();
    let times: Vec<f64> = points.map(|(_, time)| micros(*time)).collect();
    // From the fewest connections measured to the most; whole decades of
    // time around the times.
    let x_low = counts.iter().copied().fold(f64::MAX, f64::min).log10();
    let x_high = counts.iter().copied().fold(f64::MIN, f64::max).log10();
    let padding = (x_high - x_low).max(1.0) * 0.04;
    let (x_low, x_high) = (x_low - padding, x_high + padding);
    let (y_low, y_high) = decades(&times);
    let x = |count: f64| LEFT + (count.log10() - x_low) / (x_high - x_low) * (WIDTH - LEFT - RIGHT);
    let y = |micros: f64| {
        HEIGHT - BOTTOM - (micros.log10() - y_low) / (y_high - y_low) * (HEIGHT - TOP - BOTTOM)
    };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="system-ui, sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="22" font-size="15" font-weight="bold" fill="#222">One message between two new clients</text>"##
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="41" fill="#444">while the server holds idle connections (both scales logarithmic)</text>"##
    );
    // The grid: a line at every decade of time, and at every count measured.
    for decade in y_low as i32..=y_high as i32 {
        let at = y(10f64.powi(decade));
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{at:.1}" x2="{:.1}" y2="{at:.1}" stroke="#ddd"/>"##,
            WIDTH - RIGHT
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444">{}</text>"##,
            LEFT - 8.0,
            at + 4.5,
            time_label(10f64.powi(decade))
        );
    }
    let mut measured: Vec<usize> = lines
        .iter()
        .flat_map(|line| line.points.iter().map(|(count, _)| *count))
        .collect();
    measured.sort();
    measured.dedup();
    for count in measured {
        let at = x(count as f64);
        let _ = writeln!(
            svg,
            r##"<line x1="{at:.1}" y1="{TOP}" x2="{at:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            HEIGHT - BOTTOM
        );
        let _ = writeln!(
            svg,
            r##"<text x="{at:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
            HEIGHT - BOTTOM + 20.0,
            thousands(count)
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444">idle connections held</text>"##,
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 16.0
    );
    // The lines, each named at its right end; names pushed apart so that
    // they never overlap.
    let mut names = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let path: Vec<String> = line
            .points
            .iter()
            .map(|(count, time)| format!("{:.1},{:.1}", x(*count as f64), y(micros(*time))))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2.5"/>"#,
            path.join(" ")
        );
        for (count, time) in &line.points {
            let (px, py) = (x(*count as f64), y(micros(*time)));
            let _ = writeln!(
                svg,
                r#"<circle cx="{px:.1}" cy="{py:.1}" r="4" fill="{colour}"/>"#
            );
        }
        if let Some((count, time)) = line.points.last() {
            let label = format!("{} ({})", line.name, time_label(micros(*time)));
            names.push((y(micros(*time)), x(*count as f64), label, colour));
        }
    }
    names.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut lowest = f64::MIN;
    for (at, from, label, colour) in names {
        let at = at.max(lowest + 17.0);
        lowest = at;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" fill="{colour}" font-weight="bold">{label}</text>"#,
            from + 10.0,
            at + 4.5
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn micros(time: Duration) -> f64 {
    time.as_secs_f64() * 1e6
}

/// The whole decades (as powers of ten) that hold every figure.
fn decades(figures: &[f64]) -> (f64, f64) {
    let low = figures.iter().copied().fold(f64::MAX, f64::min);
    let high = figures.iter().copied().fold(f64::MIN, f64::max);
    let (low, high) = (low.log10().floor(), high.log10().ceil());
    (low, high.max(low + 1.0))
}

/// 10 µs, 1 ms, 120 µs, 6.6 ms, ...
fn time_label(micros: f64) -> String {
    if micros >= 1000.0 && (micros / 1000.0).fract() == 0.0 {
        format!("{:.0} ms", micros / 1000.0)
    } else if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else if micros < 10_000.0 {
        format!("{:.1} ms", micros / 1000.0)
    } else {
        format!("{:.0} ms", micros / 1000.0)
    }
}

fn thousands(number: usize) -> String {
    super::thousands(number)
}
