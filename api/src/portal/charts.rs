//! Charts drawn on the server: a [`Chart`] (title, axis labels, categories along x, named
//! series of `Decimal` values drawn as bars, lines or areas, on a left or a right axis) is laid
//! out once into [`Shape`]s, which [`svg`] writes as an SVG image for the pages and
//! `super::pdf` draws as PDF vector graphics, so the page and the PDF show the same figure.
//! [`numbers`] writes the chart's data as a table, the accessible twin of the image.
//!
//! ```ignore
//! let chart = Chart::new("usage-7d", "Last 7 days", "Day", "kWh", days)
//!     .with(Series::bars("kWh", kwh_per_day, 2));
//! html! { (charts::figure(&chart)) }
//! ```
//!
//! Values stay `Decimal`; they become `f64` only as positions on the drawing, never as figures
//! shown to anyone (tick labels and the table are written from `Decimal`s).

use maud::{html, Markup};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::pages::decimal;

/// The width of the drawing, in its own units (SVG user units, PDF points after scaling).
pub(crate) const WIDTH: f64 = 720.0;
/// The height of a vertical chart's drawing.
const HEIGHT: f64 = 380.0;
/// The height of one category of a horizontal bar chart.
const ROW_HEIGHT: f64 = 28.0;
/// Font sizes, large for the drawing's width, so that a chart shrunk to a phone stays legible.
const LABEL_SIZE: f64 = 13.0;
const AXIS_TITLE_SIZE: f64 = 14.0;
const TITLE_SIZE: f64 = 17.0;

/// Series colours: distinguishable for the common colour-vision deficiencies (Okabe–Ito, with
/// a darker yellow for contrast on white).
const PALETTE: &[&str] = &[
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#8a7a00", "#000000",
    "#7f7f7f", "#332288",
];

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    Bar,
    Line,
    /// A line with the area under it filled, see-through.
    Area,
}

/// Which value axis a series is read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    Left,
    Right,
}

/// How the bar series of a chart share a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bars {
    /// Side by side.
    Grouped,
    /// One on top of the other (values should not be negative).
    Stacked,
    /// Side by side, the bars running left to right, one category per row (bars only).
    Horizontal,
}

/// One named run of values, one per category of its chart.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) values: Vec<Decimal>,
    pub(crate) mark: Mark,
    pub(crate) axis: Axis,
    /// Decimals shown in the table and the tick labels of its axis.
    pub(crate) dp: u32,
}

impl Series {
    fn new(name: &str, values: Vec<Decimal>, mark: Mark, dp: u32) -> Series {
        Series {
            name: name.to_string(),
            values,
            mark,
            axis: Axis::Left,
            dp,
        }
    }

    pub(crate) fn bars(name: &str, values: Vec<Decimal>, dp: u32) -> Series {
        Series::new(name, values, Mark::Bar, dp)
    }

    pub(crate) fn line(name: &str, values: Vec<Decimal>, dp: u32) -> Series {
        Series::new(name, values, Mark::Line, dp)
    }

    pub(crate) fn area(name: &str, values: Vec<Decimal>, dp: u32) -> Series {
        Series::new(name, values, Mark::Area, dp)
    }

    /// The series read on the right axis (a second unit on one chart).
    pub(crate) fn on_right(mut self) -> Series {
        self.axis = Axis::Right;
        self
    }
}

/// A chart: what it shows and how; [`Chart::shapes`] lays it out.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    /// Unique on its page; the ids of the image's title and table start with it.
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) x_label: String,
    pub(crate) y_label: String,
    /// The right axis' label, shown when a series is on it.
    pub(crate) y2_label: String,
    pub(crate) categories: Vec<String>,
    pub(crate) series: Vec<Series>,
    pub(crate) bars: Bars,
}

impl Chart {
    pub(crate) fn new(
        id: &str,
        title: &str,
        x_label: &str,
        y_label: &str,
        categories: Vec<String>,
    ) -> Chart {
        Chart {
            id: id.to_string(),
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: y_label.to_string(),
            y2_label: String::new(),
            categories,
            series: Vec::new(),
            bars: Bars::Grouped,
        }
    }

    pub(crate) fn with(mut self, series: Series) -> Chart {
        self.series.push(series);
        self
    }

    pub(crate) fn stacked(mut self) -> Chart {
        self.bars = Bars::Stacked;
        self
    }

    pub(crate) fn horizontal(mut self) -> Chart {
        self.bars = Bars::Horizontal;
        self
    }

    pub(crate) fn right_label(mut self, label: &str) -> Chart {
        self.y2_label = label.to_string();
        self
    }

    /// Whether there is anything to draw.
    pub(crate) fn is_empty(&self) -> bool {
        self.categories.is_empty() || self.series.is_empty()
    }

    /// The drawing's height, in the units of [`WIDTH`].
    pub(crate) fn height(&self) -> f64 {
        match self.bars {
            Bars::Horizontal => {
                120.0 + ROW_HEIGHT * self.categories.len().max(1) as f64 + self.legend_height()
            }
            _ => HEIGHT + self.legend_height(),
        }
    }

    fn legend_height(&self) -> f64 {
        if self.series.len() < 2 {
            0.0
        } else {
            20.0 * legend_rows(&self.series) as f64
        }
    }

    fn value(&self, series: usize, category: usize) -> Decimal {
        self.series[series]
            .values
            .get(category)
            .copied()
            .unwrap_or(Decimal::ZERO)
    }
}

/// A text's anchor: where its `x` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

/// One thing drawn, in a frame of [`WIDTH`] × [`Chart::height`] with y growing downwards.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    Rect {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: &'static str,
    },
    /// A straight stroke.
    Line {
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        stroke: &'static str,
        width: f64,
    },
    Polyline {
        points: Vec<(f64, f64)>,
        stroke: &'static str,
        width: f64,
    },
    /// A filled see-through polygon (the area under a line).
    Polygon {
        points: Vec<(f64, f64)>,
        fill: &'static str,
        opacity: f64,
    },
    Text {
        x: f64,
        y: f64,
        text: String,
        size: f64,
        anchor: Anchor,
        /// Degrees, counter-clockwise as read.
        rotate: f64,
        bold: bool,
    },
}

fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

fn f(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(0.0)
}

/// About how wide `text` is at `size` in Helvetica or a system sans-serif (Helvetica's widths,
/// by kind of character).
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    let ems: f64 = text
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 0.25,
            ' ' | 'f' | 't' | 'r' | 'I' | '(' | ')' | '[' | ']' | '/' | '-' => 0.32,
            'm' | 'w' | 'M' | 'W' | '%' | '@' => 0.85,
            'A'..='Z' | '&' => 0.68,
            _ => 0.54,
        })
        .sum();
    ems * size
}

fn legend_rows(series: &[Series]) -> usize {
    let mut rows = 1;
    let mut x = 0.0;
    for s in series {
        let w = 22.0 + text_width(&s.name, LABEL_SIZE) + 14.0;
        if x + w > WIDTH - 40.0 && x > 0.0 {
            rows += 1;
            x = 0.0;
        }
        x += w;
    }
    rows
}

/// A value axis: from `min` to `max` in steps of `step` (all "nice": 1, 2 or 5 × 10^k).
#[derive(Debug, Clone, Copy)]
struct Scale {
    min: Decimal,
    max: Decimal,
    step: Decimal,
}

impl Scale {
    fn over(low: Decimal, high: Decimal) -> Scale {
        let low = low.min(Decimal::ZERO);
        let mut high = high.max(Decimal::ZERO);
        if high == low {
            high = low + Decimal::ONE;
        }
        let rough = (high - low) / Decimal::from(5);
        let mut magnitude = Decimal::ONE;
        while magnitude * Decimal::TEN <= rough {
            magnitude *= Decimal::TEN;
        }
        while magnitude > rough && magnitude > Decimal::new(1, 6) {
            magnitude /= Decimal::TEN;
        }
        let step = [1, 2, 5, 10]
            .iter()
            .map(|m| magnitude * Decimal::from(*m))
            .find(|s| *s >= rough)
            .unwrap_or(magnitude * Decimal::TEN);
        let min = (low / step).floor() * step;
        let max = (high / step).ceil() * step;
        Scale { min, max, step }
    }

    /// The share of the axis below zero.
    fn below_zero(&self) -> Decimal {
        (-self.min) / (self.max - self.min)
    }

    /// This scale reaching as far below zero as `share` of it, so that two axes' zeros align.
    fn with_below_zero(self, share: Decimal) -> Scale {
        if share <= self.below_zero() || share >= Decimal::ONE {
            return self;
        }
        Scale {
            // Rounded, so that a share of a third does not lose a tick to 99.999….
            min: (-(share * self.max) / (Decimal::ONE - share)).round_dp(12),
            ..self
        }
    }

    fn ticks(&self) -> Vec<Decimal> {
        let mut ticks = Vec::new();
        let mut t = (self.min / self.step).ceil() * self.step;
        while t <= self.max && ticks.len() < 20 {
            ticks.push(t);
            t += self.step;
        }
        ticks
    }

    /// Where `value` falls between `from` (at `min`) and `to` (at `max`).
    fn at(&self, value: Decimal, from: f64, to: f64) -> f64 {
        let span = f(self.max - self.min);
        if span == 0.0 {
            return from;
        }
        from + (to - from) * f(value - self.min) / span
    }
}

/// A tick label: short (k, M) and with no more decimals than the step needs.
fn tick_label(value: Decimal, step: Decimal) -> String {
    let thousand = Decimal::from(1000);
    let million = Decimal::from(1_000_000);
    let (scaled, suffix, step) = if value.abs() >= million && step >= Decimal::from(100_000) {
        (value / million, "M", step / million)
    } else if value.abs() >= thousand && step >= Decimal::from(100) {
        (value / thousand, "k", step / thousand)
    } else {
        (value, "", step)
    };
    let dp = step.normalize().scale();
    format!("{}{suffix}", decimal(scaled, dp))
}

fn value_range<'a>(chart: &'a Chart, axis: Axis) -> Option<(Decimal, Decimal)> {
    let on_axis: Vec<(usize, &'a Series)> = chart
        .series
        .iter()
        .enumerate()
        .filter(|(_, s)| s.axis == axis)
        .collect();
    if on_axis.is_empty() {
        return None;
    }
    let (mut low, mut high) = (Decimal::ZERO, Decimal::ZERO);
    for c in 0..chart.categories.len() {
        let (mut up, mut down) = (Decimal::ZERO, Decimal::ZERO);
        for (i, s) in &on_axis {
            let v = chart.value(*i, c);
            if chart.bars == Bars::Stacked && s.mark == Mark::Bar {
                if v < Decimal::ZERO {
                    down += v;
                } else {
                    up += v;
                }
                high = high.max(up);
                low = low.min(down);
            } else {
                high = high.max(v);
                low = low.min(v);
            }
        }
    }
    Some((low, high))
}

fn text(x: f64, y: f64, text: &str, size: f64, anchor: Anchor) -> Shape {
    Shape::Text {
        x,
        y,
        text: text.to_string(),
        size,
        anchor,
        rotate: 0.0,
        bold: false,
    }
}

impl Chart {
    /// The chart laid out: what to draw, back to front.
    pub(crate) fn shapes(&self) -> Vec<Shape> {
        let mut shapes = Vec::new();
        let height = self.height();
        let legend = self.legend_height();
        shapes.push(Shape::Text {
            x: WIDTH / 2.0,
            y: 20.0,
            text: self.title.clone(),
            size: TITLE_SIZE,
            anchor: Anchor::Middle,
            rotate: 0.0,
            bold: true,
        });
        self.legend(&mut shapes, 46.0);
        if self.is_empty() {
            shapes.push(text(
                WIDTH / 2.0,
                height / 2.0,
                "No data for this figure",
                13.0,
                Anchor::Middle,
            ));
            return shapes;
        }
        if self.bars == Bars::Horizontal {
            self.horizontal_shapes(&mut shapes, 52.0 + legend);
        } else {
            self.vertical_shapes(&mut shapes, 52.0 + legend);
        }
        shapes
    }

    fn legend(&self, shapes: &mut Vec<Shape>, top: f64) {
        if self.series.len() < 2 {
            return;
        }
        let mut x = 20.0;
        let mut y = top;
        for (i, s) in self.series.iter().enumerate() {
            let w = 22.0 + text_width(&s.name, LABEL_SIZE) + 14.0;
            if x + w > WIDTH - 20.0 && x > 20.0 {
                x = 20.0;
                y += 20.0;
            }
            match s.mark {
                Mark::Bar => shapes.push(Shape::Rect {
                    x,
                    y: y - 9.0,
                    w: 16.0,
                    h: 10.0,
                    fill: colour(i),
                }),
                Mark::Line | Mark::Area => shapes.push(Shape::Line {
                    x1: x,
                    y1: y - 4.0,
                    x2: x + 16.0,
                    y2: y - 4.0,
                    stroke: colour(i),
                    width: 3.0,
                }),
            }
            shapes.push(text(x + 21.0, y, &s.name, LABEL_SIZE, Anchor::Start));
            x += w;
        }
    }

    fn vertical_shapes(&self, shapes: &mut Vec<Shape>, top: f64) {
        let height = self.height();
        let left_range = value_range(self, Axis::Left);
        let right_range = value_range(self, Axis::Right);
        let mut left = left_range.map(|(l, h)| Scale::over(l, h));
        let mut right = right_range.map(|(l, h)| Scale::over(l, h));
        // Both axes put zero at the same height, so that the bars and lines share a baseline.
        if let (Some(l), Some(r)) = (left, right) {
            let share = l.below_zero().max(r.below_zero());
            left = Some(l.with_below_zero(share));
            right = Some(r.with_below_zero(share));
        }
        let n = self.categories.len();
        let (plot_left, plot_right) = (
            78.0,
            if right.is_some() {
                WIDTH - 78.0
            } else {
                WIDTH - 20.0
            },
        );
        let band = (plot_right - plot_left) / n as f64;
        let longest = self
            .categories
            .iter()
            .map(|c| text_width(c, LABEL_SIZE))
            .fold(0.0, f64::max);
        let slanted = longest + 6.0 > band;
        let label_room = if slanted {
            (longest * 0.72 + 14.0).min(110.0)
        } else {
            20.0
        };
        let plot_top = top + 10.0;
        let plot_bottom = height - 28.0 - label_room;
        let y_of = |scale: &Scale, v: Decimal| scale.at(v, plot_bottom, plot_top);

        // Grid and ticks.
        for (scale, axis) in [(left, Axis::Left), (right, Axis::Right)] {
            let Some(scale) = scale else { continue };
            for t in scale.ticks() {
                let y = y_of(&scale, t);
                if axis == Axis::Left || left.is_none() {
                    shapes.push(Shape::Line {
                        x1: plot_left,
                        y1: y,
                        x2: plot_right,
                        y2: y,
                        stroke: "#dddddd",
                        width: 1.0,
                    });
                }
                let (x, anchor) = match axis {
                    Axis::Left => (plot_left - 6.0, Anchor::End),
                    Axis::Right => (plot_right + 6.0, Anchor::Start),
                };
                shapes.push(text(
                    x,
                    y + 4.0,
                    &tick_label(t, scale.step),
                    LABEL_SIZE,
                    anchor,
                ));
            }
        }
        // Axis titles.
        let middle = (plot_top + plot_bottom) / 2.0;
        if left.is_some() {
            shapes.push(Shape::Text {
                x: 16.0,
                y: middle,
                text: self.y_label.clone(),
                size: AXIS_TITLE_SIZE,
                anchor: Anchor::Middle,
                rotate: 90.0,
                bold: false,
            });
        }
        if right.is_some() {
            shapes.push(Shape::Text {
                x: WIDTH - 10.0,
                y: middle,
                text: self.y2_label.clone(),
                size: AXIS_TITLE_SIZE,
                anchor: Anchor::Middle,
                rotate: 90.0,
                bold: false,
            });
        }
        shapes.push(text(
            (plot_left + plot_right) / 2.0,
            height - 8.0,
            &self.x_label,
            AXIS_TITLE_SIZE,
            Anchor::Middle,
        ));

        // Bars.
        let bar_series: Vec<usize> = (0..self.series.len())
            .filter(|i| self.series[*i].mark == Mark::Bar)
            .collect();
        let scale_of = |s: &Series| match s.axis {
            Axis::Left => left,
            Axis::Right => right,
        };
        for c in 0..n {
            let band_left = plot_left + band * c as f64;
            let inner = band * 0.8;
            match self.bars {
                Bars::Stacked => {
                    // Positive values stack up from zero and negative ones down, so that no bar
                    // hides another.
                    let (mut up, mut down) = ([Decimal::ZERO; 2], [Decimal::ZERO; 2]);
                    for i in &bar_series {
                        let s = &self.series[*i];
                        let Some(scale) = scale_of(s) else { continue };
                        let slot = usize::from(s.axis == Axis::Right);
                        let v = self.value(*i, c);
                        let base = if v < Decimal::ZERO {
                            &mut down[slot]
                        } else {
                            &mut up[slot]
                        };
                        let (y0, y1) = (y_of(&scale, *base), y_of(&scale, *base + v));
                        *base += v;
                        shapes.push(Shape::Rect {
                            x: band_left + band * 0.1,
                            y: y0.min(y1),
                            w: inner,
                            h: (y0 - y1).abs(),
                            fill: colour(*i),
                        });
                    }
                }
                _ => {
                    let w = inner / bar_series.len().max(1) as f64;
                    for (k, i) in bar_series.iter().enumerate() {
                        let s = &self.series[*i];
                        let Some(scale) = scale_of(s) else { continue };
                        let (y0, y1) =
                            (y_of(&scale, Decimal::ZERO), y_of(&scale, self.value(*i, c)));
                        shapes.push(Shape::Rect {
                            x: band_left + band * 0.1 + w * k as f64,
                            y: y0.min(y1),
                            w: (w - 1.0).max(0.5),
                            h: (y0 - y1).abs(),
                            fill: colour(*i),
                        });
                    }
                }
            }
        }
        // Lines and areas, over the bars.
        for (i, s) in self.series.iter().enumerate() {
            if s.mark == Mark::Bar {
                continue;
            }
            let Some(scale) = scale_of(s) else { continue };
            let points: Vec<(f64, f64)> = (0..n)
                .map(|c| {
                    (
                        plot_left + band * (c as f64 + 0.5),
                        y_of(&scale, self.value(i, c)),
                    )
                })
                .collect();
            if s.mark == Mark::Area {
                let base = y_of(&scale, Decimal::ZERO);
                let mut polygon = points.clone();
                polygon.push((points[n - 1].0, base));
                polygon.push((points[0].0, base));
                shapes.push(Shape::Polygon {
                    points: polygon,
                    fill: colour(i),
                    opacity: 0.25,
                });
            }
            if n == 1 {
                let (x, y) = points[0];
                shapes.push(Shape::Rect {
                    x: x - 3.0,
                    y: y - 3.0,
                    w: 6.0,
                    h: 6.0,
                    fill: colour(i),
                });
            } else {
                shapes.push(Shape::Polyline {
                    points,
                    stroke: colour(i),
                    width: 2.5,
                });
            }
        }
        // The x axis and its labels, last so that nothing hides them.
        let zero = left
            .or(right)
            .map_or(plot_bottom, |s| y_of(&s, Decimal::ZERO));
        shapes.push(Shape::Line {
            x1: plot_left,
            y1: zero,
            x2: plot_right,
            y2: zero,
            stroke: "#333333",
            width: 1.0,
        });
        // Show every k-th label so slanted labels do not overlap.
        let every = if slanted {
            ((14.0 / band).ceil() as usize).max(1)
        } else {
            1
        };
        for (c, category) in self.categories.iter().enumerate() {
            if c % every != 0 {
                continue;
            }
            let x = plot_left + band * (c as f64 + 0.5);
            if slanted {
                shapes.push(Shape::Text {
                    x: x + 4.0,
                    y: plot_bottom + 12.0,
                    text: category.clone(),
                    size: LABEL_SIZE,
                    anchor: Anchor::End,
                    rotate: 45.0,
                    bold: false,
                });
            } else {
                shapes.push(text(
                    x,
                    plot_bottom + 18.0,
                    category,
                    LABEL_SIZE,
                    Anchor::Middle,
                ));
            }
        }
    }

    fn horizontal_shapes(&self, shapes: &mut Vec<Shape>, top: f64) {
        let (low, high) = value_range(self, Axis::Left)
            .into_iter()
            .chain(value_range(self, Axis::Right))
            .fold((Decimal::ZERO, Decimal::ZERO), |(l, h), (a, b)| {
                (l.min(a), h.max(b))
            });
        let scale = Scale::over(low, high);
        let longest = self
            .categories
            .iter()
            .map(|c| text_width(c, LABEL_SIZE))
            .fold(0.0, f64::max);
        let plot_left = (longest + 16.0).clamp(60.0, 260.0);
        let plot_right = WIDTH - 24.0;
        let plot_top = top + 10.0;
        let plot_bottom = plot_top + ROW_HEIGHT * self.categories.len() as f64;
        let x_of = |v: Decimal| scale.at(v, plot_left, plot_right);
        for t in scale.ticks() {
            let x = x_of(t);
            shapes.push(Shape::Line {
                x1: x,
                y1: plot_top,
                x2: x,
                y2: plot_bottom,
                stroke: "#dddddd",
                width: 1.0,
            });
            shapes.push(text(
                x,
                plot_bottom + 16.0,
                &tick_label(t, scale.step),
                LABEL_SIZE,
                Anchor::Middle,
            ));
        }
        shapes.push(text(
            (plot_left + plot_right) / 2.0,
            plot_bottom + 36.0,
            &self.y_label,
            AXIS_TITLE_SIZE,
            Anchor::Middle,
        ));
        let bar_series: Vec<usize> = (0..self.series.len()).collect();
        let h = ROW_HEIGHT * 0.75 / bar_series.len().max(1) as f64;
        for (c, category) in self.categories.iter().enumerate() {
            let row_top = plot_top + ROW_HEIGHT * c as f64;
            shapes.push(text(
                plot_left - 6.0,
                row_top + ROW_HEIGHT / 2.0 + 4.0,
                category,
                LABEL_SIZE,
                Anchor::End,
            ));
            for (k, i) in bar_series.iter().enumerate() {
                let (x0, x1) = (x_of(Decimal::ZERO), x_of(self.value(*i, c)));
                shapes.push(Shape::Rect {
                    x: x0.min(x1),
                    y: row_top + ROW_HEIGHT * 0.125 + h * k as f64,
                    w: (x1 - x0).abs(),
                    h: (h - 1.0).max(0.5),
                    fill: colour(*i),
                });
            }
        }
        shapes.push(Shape::Line {
            x1: x_of(Decimal::ZERO),
            y1: plot_top,
            x2: x_of(Decimal::ZERO),
            y2: plot_bottom,
            stroke: "#333333",
            width: 1.0,
        });
    }
}

fn points_attribute(points: &[(f64, f64)]) -> String {
    points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The chart as an SVG image, named by its title (for screen readers: `role="img"`, with the
/// numbers in [`numbers`]).
pub(crate) fn svg(chart: &Chart) -> Markup {
    let height = chart.height();
    let title_id = format!("{}-title", chart.id);
    let view_box = format!("0 0 {WIDTH} {height:.0}");
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox=(view_box)
            aria-labelledby=(title_id) font-family="Helvetica, Arial, sans-serif" {
            title id=(title_id) { (chart.title) }
            @for shape in chart.shapes() {
                @match shape {
                    Shape::Rect { x, y, w, h, fill } => {
                        rect x=(format!("{x:.1}")) y=(format!("{y:.1}")) width=(format!("{w:.1}"))
                            height=(format!("{h:.1}")) fill=(fill) {}
                    }
                    Shape::Line { x1, y1, x2, y2, stroke, width } => {
                        line x1=(format!("{x1:.1}")) y1=(format!("{y1:.1}")) x2=(format!("{x2:.1}"))
                            y2=(format!("{y2:.1}")) stroke=(stroke) stroke-width=(width) {}
                    }
                    Shape::Polyline { points, stroke, width } => {
                        polyline points=(points_attribute(&points)) fill="none" stroke=(stroke)
                            stroke-width=(width) stroke-linejoin="round" {}
                    }
                    Shape::Polygon { points, fill, opacity } => {
                        polygon points=(points_attribute(&points)) fill=(fill) fill-opacity=(opacity) {}
                    }
                    Shape::Text { x, y, text, size, anchor, rotate, bold } => {
                        @let anchor = match anchor { Anchor::Start => "start", Anchor::Middle => "middle", Anchor::End => "end" };
                        @let transform = (rotate != 0.0).then(|| format!("rotate({:.0} {x:.1} {y:.1})", -rotate));
                        text x=(format!("{x:.1}")) y=(format!("{y:.1}")) font-size=(size)
                            text-anchor=(anchor) transform=[transform]
                            font-weight=[bold.then_some("bold")] fill="#1a1a1a" { (text) }
                    }
                }
            }
        }
    }
}

/// The chart's numbers as a table: a row per category, a column per series.
pub(crate) fn numbers(chart: &Chart) -> Markup {
    html! {
        div class="table-wrap" {
            table id=(format!("{}-numbers", chart.id)) {
                caption { (chart.title) }
                thead {
                    tr {
                        th scope="col" { (chart.x_label) }
                        @for s in &chart.series { th scope="col" class="n" { (s.name) } }
                    }
                }
                tbody {
                    @for (c, category) in chart.categories.iter().enumerate() {
                        tr {
                            th scope="row" { (category) }
                            @for (i, s) in chart.series.iter().enumerate() {
                                td class="n" { (decimal(chart.value(i, c), s.dp)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The chart and, folded under it, its numbers: what a page shows of a figure.
pub(crate) fn figure(chart: &Chart) -> Markup {
    html! {
        div class="chart-wrap" { (svg(chart)) }
        @if chart.is_empty() {
            p class="muted" { "No data for this figure." }
        } @else {
            details class="numbers" {
                summary { "The numbers of " (chart.title) }
                (numbers(chart))
            }
        }
    }
}

/// The chart's data as CSV: the x label and the series names, then a row per category, the
/// values with the series' decimals and no grouping.
pub(crate) fn csv(chart: &Chart) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec![chart.x_label.clone()];
    header.extend(chart.series.iter().map(|s| s.name.clone()));
    let _ = writer.write_record(&header);
    for (c, category) in chart.categories.iter().enumerate() {
        let mut row = vec![category.clone()];
        for (i, s) in chart.series.iter().enumerate() {
            row.push(format!(
                "{:.prec$}",
                chart.value(i, c).round_dp(s.dp),
                prec = s.dp as usize
            ));
        }
        let _ = writer.write_record(&row);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn scales_use_nice_steps_that_cover_the_values() {
        let s = Scale::over(Decimal::ZERO, d("1234"));
        assert_eq!(s.step, d("500"));
        assert_eq!(s.max, d("1500"));
        let s = Scale::over(d("-3"), d("0.8"));
        assert_eq!(s.step, d("1"));
        assert_eq!(s.min, d("-3"));
    }

    #[test]
    fn two_value_axes_put_zero_at_the_same_height() {
        let left = Scale::over(d("-50"), d("100"));
        let right = Scale::over(Decimal::ZERO, d("200")).with_below_zero(left.below_zero());
        assert!((right.below_zero() - left.below_zero()).abs() < d("0.000001"));
        assert_eq!(right.ticks().first(), Some(&d("-100")));
    }

    #[test]
    fn stacked_bars_stack_negative_values_below_zero() {
        let chart = Chart::new("s", "Revenue", "Quarter", "LSL", vec!["Q".into()])
            .stacked()
            .with(Series::bars("A", vec![d("40")], 2))
            .with(Series::bars("B", vec![d("-10")], 2));
        assert_eq!(value_range(&chart, Axis::Left), Some((d("-10"), d("40"))));
        let bars: Vec<(f64, f64)> = chart
            .shapes()
            .into_iter()
            .filter_map(|s| match s {
                Shape::Rect { y, h, w, .. } if w > 20.0 => Some((y, y + h)),
                _ => None,
            })
            .collect();
        assert_eq!(bars.len(), 2);
        // B hangs from where A stands on zero.
        assert!((bars[0].1 - bars[1].0).abs() < 0.01, "{bars:?}");
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(d("1500"), d("500")), "1.5k");
        assert_eq!(tick_label(d("2000000"), d("500000")), "2.0M");
        assert_eq!(tick_label(d("0.25"), d("0.05")), "0.25");
    }

    #[test]
    fn a_chart_is_an_image_named_by_its_title_with_its_numbers() {
        let chart = Chart::new("t", "Sales", "Quarter", "LSL", vec!["2025 Q1".into()])
            .with(Series::bars("LSL", vec![d("12.5")], 2));
        let page = figure(&chart).into_string();
        assert!(page.contains(r#"role="img""#));
        assert!(page.contains(r#"<title id="t-title">Sales</title>"#));
        assert!(page.contains("12.50"));
        assert_eq!(csv(&chart), "Quarter,LSL\n2025 Q1,12.50\n");
    }
}
