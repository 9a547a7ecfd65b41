//! PDF downloads of the reports: A4 pages drawn with `pdf-writer` in the standard Helvetica
//! fonts (which every PDF reader has, so no font file is embedded), each figure drawn from the
//! very [`Shape`]s of its SVG, as vector graphics, with its numbers under it.
//!
//! Streams are left uncompressed: the reports are small, and the text stays searchable by
//! anything that reads the file's bytes.

use pdf_writer::types::LineJoinStyle;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

use super::charts::{self, Anchor, Chart, Shape};

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 48.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");
const SEE_THROUGH: Name<'static> = Name(b"G1");

/// A table of text, the header first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
}

/// One page of a report after its title page: a heading, a chart, a table (any of them).
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub(crate) heading: String,
    pub(crate) chart: Option<Chart>,
    pub(crate) table: Option<Table>,
    /// A line under the heading (what the figure counts, which quarter).
    pub(crate) note: String,
}

/// The title page: lines of text, large to small.
#[derive(Debug, Clone)]
pub(crate) struct TitlePage {
    pub(crate) title: String,
    pub(crate) lines: Vec<String>,
}

/// `text` in the fonts' WinAnsi encoding (characters it lacks become `?`).
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '–' => 0x96,
            '—' => 0x97,
            '·' => 0xb7,
            '’' => 0x92,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

fn rgb(hex: &str) -> (f32, f32, f32) {
    let channel = |i: usize| {
        u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0) as f32 / 255.0
    };
    (channel(1), channel(3), channel(5))
}

/// Writes text at (x, y) (PDF coordinates), anchored, turned `rotate` degrees.
#[allow(clippy::too_many_arguments)]
fn write_text(
    content: &mut Content,
    x: f32,
    y: f32,
    text: &str,
    size: f32,
    anchor: Anchor,
    rotate: f32,
    bold: bool,
) {
    let width = charts::text_width(text, f64::from(size)) as f32;
    let shift = match anchor {
        Anchor::Start => 0.0,
        Anchor::Middle => width / 2.0,
        Anchor::End => width,
    };
    let (sin, cos) = rotate.to_radians().sin_cos();
    content
        .begin_text()
        .set_font(if bold { BOLD } else { REGULAR }, size)
        .set_text_matrix([cos, sin, -sin, cos, x - shift * cos, y - shift * sin])
        .show(Str(&win_ansi(text)))
        .end_text();
}

/// Draws `chart` with its top-left corner at (left, top) (PDF coordinates), `scale` points to
/// one unit of the chart.
fn draw_chart(content: &mut Content, chart: &Chart, left: f32, top: f32, scale: f32) {
    let at = |x: f64, y: f64| (left + x as f32 * scale, top - y as f32 * scale);
    for shape in chart.shapes() {
        match shape {
            Shape::Rect { x, y, w, h, fill } => {
                let (r, g, b) = rgb(fill);
                let (px, py) = at(x, y + h);
                content
                    .set_fill_rgb(r, g, b)
                    .rect(px, py, w as f32 * scale, h as f32 * scale)
                    .fill_nonzero();
            }
            Shape::Line {
                x1,
                y1,
                x2,
                y2,
                stroke,
                width,
            } => {
                let (r, g, b) = rgb(stroke);
                let (a, b2) = (at(x1, y1), at(x2, y2));
                content
                    .set_stroke_rgb(r, g, b)
                    .set_line_width(width as f32 * scale)
                    .move_to(a.0, a.1)
                    .line_to(b2.0, b2.1)
                    .stroke();
            }
            Shape::Polyline {
                points,
                stroke,
                width,
            } => {
                let (r, g, b) = rgb(stroke);
                content
                    .set_stroke_rgb(r, g, b)
                    .set_line_width(width as f32 * scale)
                    .set_line_join(LineJoinStyle::RoundJoin);
                for (i, (x, y)) in points.iter().enumerate() {
                    let (px, py) = at(*x, *y);
                    if i == 0 {
                        content.move_to(px, py);
                    } else {
                        content.line_to(px, py);
                    }
                }
                content.stroke();
            }
            Shape::Polygon { points, fill, .. } => {
                let (r, g, b) = rgb(fill);
                content.save_state();
                content.set_parameters(SEE_THROUGH).set_fill_rgb(r, g, b);
                for (i, (x, y)) in points.iter().enumerate() {
                    let (px, py) = at(*x, *y);
                    if i == 0 {
                        content.move_to(px, py);
                    } else {
                        content.line_to(px, py);
                    }
                }
                content.close_path().fill_nonzero();
                content.restore_state();
            }
            Shape::Text {
                x,
                y,
                text,
                size,
                anchor,
                rotate,
                bold,
            } => {
                let (px, py) = at(x, y);
                content.set_fill_rgb(0.1, 0.1, 0.1);
                write_text(
                    content,
                    px,
                    py,
                    &text,
                    size as f32 * scale,
                    anchor,
                    rotate as f32,
                    bold,
                );
            }
        }
    }
}

/// Draws as much of `table` as fits between `top` and the bottom margin; says how many rows
/// did not fit.
fn draw_table(content: &mut Content, table: &Table, top: f32) {
    const SIZE: f32 = 8.5;
    const ROW: f32 = 12.0;
    let columns = table.header.len().max(1);
    let usable = PAGE_WIDTH - 2.0 * MARGIN;
    // The first column holds the labels; the others are numbers, right-aligned.
    let first = (usable * 0.28).min(usable / columns as f32 * 1.6);
    let rest = (usable - first) / (columns.saturating_sub(1)).max(1) as f32;
    let x_of = |i: usize| {
        if i == 0 {
            MARGIN
        } else {
            MARGIN + first + rest * i as f32
        }
    };
    let fit = |text: &str, room: f32| -> String {
        let mut text = text.to_string();
        while text.chars().count() > 1 && charts::text_width(&text, f64::from(SIZE)) as f32 > room {
            text.pop();
        }
        text
    };
    let mut y = top;
    let write_row = |content: &mut Content, cells: &[String], y: f32, bold: bool| {
        for (i, cell) in cells.iter().enumerate() {
            let room = if i == 0 { first - 4.0 } else { rest - 4.0 };
            let anchor = if i == 0 { Anchor::Start } else { Anchor::End };
            write_text(
                content,
                x_of(i),
                y,
                &fit(cell, room),
                SIZE,
                anchor,
                0.0,
                bold,
            );
        }
    };
    content.set_fill_rgb(0.1, 0.1, 0.1);
    write_row(content, &table.header, y, true);
    content
        .set_stroke_rgb(0.2, 0.2, 0.2)
        .set_line_width(0.6)
        .move_to(MARGIN, y - 3.5)
        .line_to(PAGE_WIDTH - MARGIN, y - 3.5)
        .stroke();
    let room = ((y - MARGIN - ROW) / ROW).floor().max(0.0) as usize;
    let shown = if table.rows.len() > room {
        room.saturating_sub(1)
    } else {
        table.rows.len()
    };
    content.set_fill_rgb(0.1, 0.1, 0.1);
    for row in table.rows.iter().take(shown) {
        y -= ROW;
        write_row(content, row, y, false);
    }
    if shown < table.rows.len() {
        y -= ROW;
        write_text(
            content,
            MARGIN,
            y,
            &format!(
                "... and {} more rows: download the figure's CSV for all of them.",
                table.rows.len() - shown
            ),
            SIZE,
            Anchor::Start,
            0.0,
            false,
        );
    }
}

fn title_content(title: &TitlePage) -> Content {
    let mut content = Content::new();
    content
        .set_fill_rgb(0.043, 0.227, 0.388)
        .rect(0.0, PAGE_HEIGHT - 230.0, PAGE_WIDTH, 230.0)
        .fill_nonzero();
    content.set_fill_rgb(1.0, 1.0, 1.0);
    write_text(
        &mut content,
        PAGE_WIDTH / 2.0,
        PAGE_HEIGHT - 130.0,
        &title.title,
        22.0,
        Anchor::Middle,
        0.0,
        true,
    );
    content.set_fill_rgb(0.1, 0.1, 0.1);
    let mut y = PAGE_HEIGHT - 300.0;
    for (i, line) in title.lines.iter().enumerate() {
        let size = if i == 0 { 16.0 } else { 12.0 };
        write_text(
            &mut content,
            PAGE_WIDTH / 2.0,
            y,
            line,
            size,
            Anchor::Middle,
            0.0,
            i == 0,
        );
        y -= size * 2.0;
    }
    content
}

fn page_content(page: &Page, number: usize) -> Content {
    let mut content = Content::new();
    let mut top = PAGE_HEIGHT - MARGIN;
    content.set_fill_rgb(0.1, 0.1, 0.1);
    write_text(
        &mut content,
        MARGIN,
        top - 14.0,
        &page.heading,
        14.0,
        Anchor::Start,
        0.0,
        true,
    );
    top -= 22.0;
    if !page.note.is_empty() {
        write_text(
            &mut content,
            MARGIN,
            top - 10.0,
            &page.note,
            9.5,
            Anchor::Start,
            0.0,
            false,
        );
        top -= 16.0;
    }
    if let Some(chart) = &page.chart {
        let usable = PAGE_WIDTH - 2.0 * MARGIN;
        let height = chart.height() as f32;
        let scale = (usable / charts::WIDTH as f32).min(480.0 / height);
        draw_chart(&mut content, chart, MARGIN, top - 6.0, scale);
        top -= height * scale + 24.0;
    }
    if let Some(table) = &page.table {
        draw_table(&mut content, table, top - 10.0);
    }
    write_text(
        &mut content,
        PAGE_WIDTH / 2.0,
        MARGIN / 2.0,
        &format!("{number}"),
        9.0,
        Anchor::Middle,
        0.0,
        false,
    );
    content
}

/// A4 pages: the title page if given, then one page per entry of `pages`.
pub(crate) fn document(title: Option<&TitlePage>, pages: &[Page]) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let see_through = Ref::new(5);
    let info = Ref::new(6);
    let first_page = 7;
    // Each page takes two objects: the page and its content stream.
    let page_count = pages.len() + usize::from(title.is_some());
    let page_refs: Vec<Ref> = (0..page_count)
        .map(|i| Ref::new(first_page + 2 * i as i32))
        .collect();

    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_refs.iter().copied())
        .count(page_refs.len() as i32);
    let name = title.map_or_else(
        || pages.first().map_or("", |p| p.heading.as_str()),
        |t| t.title.as_str(),
    );
    pdf.document_info(info)
        .title(pdf_writer::TextStr(name))
        .creator(pdf_writer::TextStr("ccare Customer Care"));
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.ext_graphics(see_through).non_stroking_alpha(0.25);

    let first_number = page_count - pages.len() + 1;
    let contents = title.map(title_content).into_iter().chain(
        pages
            .iter()
            .enumerate()
            .map(|(i, p)| page_content(p, i + first_number)),
    );
    for (page_ref, content) in page_refs.iter().zip(contents) {
        let content_ref = Ref::new(page_ref.get() + 1);
        let mut page = pdf.page(*page_ref);
        page.parent(tree)
            .media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .contents(content_ref);
        let mut resources = page.resources();
        resources.fonts().pair(REGULAR, regular).pair(BOLD, bold);
        resources.ext_g_states().pair(SEE_THROUGH, see_through);
        resources.finish();
        page.finish();
        pdf.stream(content_ref, &content.finish());
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portal::charts::Series;

    /// The page objects of `pdf` (not the page tree, `/Type /Pages`).
    fn pages_of(pdf: &str) -> usize {
        pdf.match_indices("/Type /Page")
            .filter(|(i, m)| !pdf[i + m.len()..].starts_with('s'))
            .count()
    }

    #[test]
    fn a_report_has_a_title_page_and_a_page_per_figure_in_helvetica() {
        let chart = Chart::new(
            "a",
            "Quarterly Sales",
            "Quarter",
            "LSL",
            vec!["2025 Q1".into()],
        )
        .with(Series::bars("LSL", vec![rust_decimal::Decimal::TEN], 2));
        let page = Page {
            heading: "Figure 8: Quarterly Sales".into(),
            chart: Some(chart),
            table: Some(Table {
                header: vec!["Quarter".into(), "LSL".into()],
                rows: vec![vec!["2025 Q1".into(), "10.00".into()]],
            }),
            note: "Dated rows – all accounts".into(),
        };
        let title = TitlePage {
            title: "Report".into(),
            lines: vec!["OnePower Lesotho".into()],
        };

        let whole = String::from_utf8_lossy(&document(Some(&title), std::slice::from_ref(&page)))
            .to_string();
        let one = String::from_utf8_lossy(&document(None, &[page])).to_string();

        assert!(whole.starts_with("%PDF"));
        assert_eq!(pages_of(&whole), 2, "{whole}");
        assert_eq!(pages_of(&one), 1);
        assert!(whole.contains("(Figure 8: Quarterly Sales)"));
        assert!(whole.contains("/BaseFont /Helvetica"));
    }
}
