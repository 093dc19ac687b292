//! The latency CDF plot: one panel per distribution (per-event latency, turn start), one line per
//! target, log-scaled latency axis. Drawn with plotters into an RGB buffer and encoded with `png`.

use std::io::BufWriter;
use std::path::Path;

use plotters::coord::combinators::BindKeyPoints;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// One line: a target and its histogram as (bucket bound µs, samples).
pub(crate) struct Line {
    /// Target name (legend).
    pub(crate) name: String,
    /// Non-empty buckets, ascending.
    pub(crate) buckets: Vec<(f64, u64)>,
}

/// One panel of the figure.
pub(crate) struct Panel {
    /// Caption.
    pub(crate) title: String,
    /// One line per target.
    pub(crate) lines: Vec<Line>,
}

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 560;
const COLORS: [RGBColor; 5] = [
    RGBColor(0, 0, 0),
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// The cumulative fraction at each bucket bound.
pub(crate) fn cdf(buckets: &[(f64, u64)]) -> Vec<(f64, f64)> {
    let total: u64 = buckets.iter().map(|&(_, c)| c).sum();
    let mut seen = 0;
    buckets
        .iter()
        .map(|&(x, c)| {
            seen += c;
            (x, seen as f64 / total.max(1) as f64)
        })
        .collect()
}

/// Axis ticks at 1, 2, 5 × powers of ten within `[lo, hi]`.
pub(crate) fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade = 10f64.powi(lo.max(1e-3).log10().floor() as i32);
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let t = decade * m;
            if t >= lo && t <= hi {
                out.push(t);
            }
        }
        decade *= 10.0;
    }
    out
}

/// A tick label: 500, 1k, 20k (short, so neighbouring ticks of a log axis do not collide).
pub(crate) fn axis_label(x: f64) -> String {
    if x >= 1000.0 {
        format!("{}k", num_trim(x / 1000.0))
    } else {
        num_trim(x)
    }
}

fn num_trim(x: f64) -> String {
    let s = format!("{x:.1}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn err(e: impl std::fmt::Display) -> String {
    format!("plot: {e}")
}

/// Draws the panels side by side into `path`, with text in the TrueType font at `font`.
pub(crate) fn draw(path: &Path, font: &Path, panels: &[Panel]) -> Result<(), String> {
    let bytes = std::fs::read(font).map_err(|e| format!("font {}: {e}", font.display()))?;
    // plotters keeps registered fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| "font: not a TrueType font")?;
    let mut buffer = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            draw_panel(area, panel)?;
        }
        root.present().map_err(err)?;
    }
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    let mut writer = encoder.write_header().map_err(err)?;
    writer.write_image_data(&buffer).map_err(err)?;
    writer.finish().map_err(err)
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    panel: &Panel,
) -> Result<(), String> {
    let curves: Vec<(&str, Vec<(f64, f64)>)> = panel
        .lines
        .iter()
        .filter(|l| !l.buckets.is_empty())
        .map(|l| (l.name.as_str(), cdf(&l.buckets)))
        .collect();
    let xs = curves
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|&(x, _)| x));
    let lo = xs.clone().fold(f64::INFINITY, f64::min).max(1.0);
    let hi = xs.fold(0.0, f64::max).max(lo * 10.0);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(56)
        .build_cartesian_2d(
            (lo * 0.9..hi * 1.1)
                .log_scale()
                .with_key_points(ticks(lo * 0.9, hi * 1.1)),
            0.0..1.0,
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("latency, µs (log scale)")
        .y_desc("fraction of samples ≤ x")
        .x_label_formatter(&|x| axis_label(*x))
        .light_line_style(WHITE)
        .y_label_formatter(&|y| format!("{y:.1}"))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(err)?;
    for (i, (name, points)) in curves.into_iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 17))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_accumulates_to_one() {
        let c = cdf(&[(10.0, 1), (20.0, 2), (40.0, 1)]);
        assert_eq!(c, vec![(10.0, 0.25), (20.0, 0.75), (40.0, 1.0)]);
        assert!(cdf(&[]).is_empty());
        assert_eq!(ticks(30.0, 1200.0), vec![50.0, 100.0, 200.0, 500.0, 1000.0]);
        assert_eq!(axis_label(500.0), "500");
        assert_eq!(axis_label(0.5), "0.5");
        assert_eq!(axis_label(20_000.0), "20k");
    }
}
