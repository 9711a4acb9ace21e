//! Inline SVG bar charts drawn with plotters: one group of bars per category, one bar per
//! run in each group.

use plotters::prelude::*;

use crate::ResultsError;

/// Colours of successive runs (colour-blind friendly).
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
];

/// One run's values, one per category.
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

/// What to draw.
pub struct BarChart<'a> {
    pub title: &'a str,
    pub y_label: &'a str,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
    /// The top of the y axis; `None` fits the data.
    pub y_max: Option<f64>,
}

pub fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Renders the chart as an SVG document string.
pub fn render(chart: &BarChart) -> Result<String, ResultsError> {
    let mut svg = String::new();
    let width = (160 + 90 * chart.categories.len().max(1) as u32).clamp(480, 1100);
    draw(chart, &mut svg, (width, 340)).map_err(|source| ResultsError::Chart {
        chart: chart.title.to_string(),
        source,
    })?;
    Ok(svg)
}

fn draw(
    chart: &BarChart,
    svg: &mut String,
    size: (u32, u32),
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    root.fill(&WHITE)?;
    let n = chart.categories.len().max(1);
    let data_max = chart
        .series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    let y_max = chart.y_max.unwrap_or((data_max * 1.15).max(1.0));
    let mut ctx = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..n as f64, 0f64..y_max)?;
    ctx.configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .x_labels(0)
        .y_desc(chart.y_label)
        .draw()?;
    draw_bars(&mut ctx, chart)?;
    draw_category_labels(&ctx, chart, &root)?;
    // The legend is HTML under the figure (see `legend_html`): inside the plot it hides bars.
    root.present()
}

type Ctx<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn draw_bars(ctx: &mut Ctx, chart: &BarChart) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let groups = chart.series.len().max(1) as f64;
    let width = 0.8 / groups;
    for (k, series) in chart.series.iter().enumerate() {
        let colour = colour(k);
        let bars = series.values.iter().enumerate().map(|(i, &v)| {
            let x0 = i as f64 + 0.1 + k as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width * 0.92, v)], colour.filled())
        });
        ctx.draw_series(bars)?;
    }
    Ok(())
}

/// Category names under each group (plotters' own labels sit at round numbers, not groups).
fn draw_category_labels(
    ctx: &Ctx,
    chart: &BarChart,
    root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let style = TextStyle::from(("sans-serif", 13).into_font()).pos(
        plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ),
    );
    for (i, name) in chart.categories.iter().enumerate() {
        let (x, y) = ctx.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(name.clone(), (x, y + 8), style.clone()))?;
    }
    Ok(())
}

/// A caption naming each series next to a swatch of its colour; empty for a single series.
pub fn legend_html(chart: &BarChart) -> String {
    if chart.series.len() < 2 {
        return String::new();
    }
    let items: Vec<String> = chart
        .series
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let RGBColor(r, g, b) = colour(k);
            format!(
                "<span class=\"swatch\" style=\"background: rgb({r},{g},{b})\"></span>{}",
                html_escape::encode_text(&s.name)
            )
        })
        .collect();
    format!("<figcaption>{}</figcaption>", items.join(" "))
}

/// Buckets turn counts into at most `max_bins` equal ranges; returns the bin labels and the
/// count per run in each bin.
pub fn turn_histogram(runs: &[(String, Vec<u64>)], max_bins: u64) -> (Vec<String>, Vec<Series>) {
    let max = runs
        .iter()
        .flat_map(|(_, t)| t.iter().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    let step = max.div_ceil(max_bins.max(1)).max(1);
    let bins = max.div_ceil(step);
    let labels = (0..bins)
        .map(|b| match (b * step + 1, (b + 1) * step) {
            (lo, hi) if lo == hi => lo.to_string(),
            (lo, hi) => format!("{lo}–{hi}"),
        })
        .collect();
    let series = runs
        .iter()
        .map(|(name, turns)| {
            let mut counts = vec![0.0; bins as usize];
            for &t in turns {
                let bin = (t.max(1) - 1) / step;
                if let Some(c) = counts.get_mut(bin as usize) {
                    *c += 1.0;
                }
            }
            Series {
                name: name.clone(),
                values: counts,
            }
        })
        .collect();
    (labels, series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_cover_every_turn_count() {
        let runs = vec![("a".to_string(), vec![1, 2, 5, 6]), ("b".into(), vec![6])];
        let (labels, series) = turn_histogram(&runs, 3);
        assert_eq!(labels, vec!["1–2", "3–4", "5–6"]);
        assert_eq!(series[0].values, vec![2.0, 0.0, 2.0]);
        assert_eq!(series[1].values, vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn renders_svg_with_bars_and_labels() {
        let chart = BarChart {
            title: "resolved",
            y_label: "%",
            categories: vec!["run-a".into(), "run-b".into()],
            series: vec![Series {
                name: "x".into(),
                values: vec![100.0, 0.0],
            }],
            y_max: Some(100.0),
        };
        let svg = render(&chart).expect("svg");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("run-a") && svg.contains("<rect"));
    }
}
