//! XLSX exports, laid out as the legacy's (legacy-system.md §6.4): the sheet named after the
//! table or read model (31 characters at most), a bold header row, every cell as the
//! legacy wrote it (integers and booleans typed, everything else as text: decimals stay exact),
//! column widths from the header and the first 100 rows (plus 2, at most 50).
//!
//! An XLSX file is a zip that can only be finished once every row is in, so the workbook is
//! built on a blocking thread in constant-memory mode (rows spill to a temporary file) while the
//! async side feeds it pages; the finished file is then streamed from disk. Memory stays a
//! page of rows whatever the table's size.

use axum::body::Body;
use futures::StreamExt;
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::export::Pages;
/// Rows that set the column widths.
const WIDTH_SAMPLE: usize = 100;
/// Excel's last row (1-based 1,048,576), the header included.
const MAX_ROWS: u32 = 1_048_576;

/// Why a workbook could not be written.
#[derive(Debug, thiserror::Error)]
enum WorkbookError {
    #[error("the export has more than {} rows, the most a worksheet holds: export csv instead", MAX_ROWS - 1)]
    TooManyRows,
    #[error(transparent)]
    Xlsx(#[from] XlsxError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The text of a cell as the legacy wrote non-primitive values.
fn cell_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// Builds the workbook from the pages arriving on `pages`, into a temporary file.
fn write_workbook(
    sheet_name: &str,
    columns: &[String],
    mut pages: mpsc::Receiver<Vec<Value>>,
) -> Result<tempfile::NamedTempFile, WorkbookError> {
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet_with_constant_memory()?;
    sheet.set_name(sheet_name)?;
    let bold = Format::new().set_bold();

    // Constant-memory rows are written in order and column widths must come first: hold back
    // the sample rows until the widths are known.
    let mut held: Vec<Value> = Vec::new();
    let mut written: u32 = 0;
    let mut widths_set = false;
    let mut write_row = |sheet: &mut rust_xlsxwriter::Worksheet, row: &Value| {
        written += 1;
        if written >= MAX_ROWS {
            return Err(WorkbookError::TooManyRows);
        }
        for (index, column) in columns.iter().enumerate() {
            let col = u16::try_from(index).map_err(|_| WorkbookError::TooManyRows)?;
            match &row[column.as_str()] {
                Value::Null => {}
                Value::Bool(b) => {
                    sheet.write_boolean(written, col, *b)?;
                }
                Value::Number(n) if n.is_i64() => {
                    // Integers up to 2^53 are exact in Excel's doubles; larger ones stay text.
                    match n.as_i64().filter(|i| i.unsigned_abs() < (1 << 53)) {
                        Some(i) => sheet.write_number(written, col, i as f64)?,
                        None => sheet.write_string(written, col, n.to_string())?,
                    };
                }
                other => {
                    if let Some(text) = cell_text(other) {
                        sheet.write_string(written, col, text)?;
                    }
                }
            }
        }
        Ok(())
    };
    let set_widths = |sheet: &mut rust_xlsxwriter::Worksheet, sample: &[Value]| {
        for (index, column) in columns.iter().enumerate() {
            let longest = sample
                .iter()
                .filter_map(|row| cell_text(&row[column.as_str()]))
                .map(|t| width(&t))
                .chain(std::iter::once(width(column)))
                .max()
                .unwrap_or(0);
            let col = u16::try_from(index).map_err(|_| WorkbookError::TooManyRows)?;
            sheet.set_column_width(col, (longest + 2).min(50) as f64)?;
            sheet.write_string_with_format(0, col, column, &bold)?;
        }
        Ok::<(), WorkbookError>(())
    };
    while let Some(page) = pages.blocking_recv() {
        if widths_set {
            for row in &page {
                write_row(sheet, row)?;
            }
            continue;
        }
        held.extend(page);
        if held.len() >= WIDTH_SAMPLE {
            set_widths(sheet, &held[..WIDTH_SAMPLE])?;
            widths_set = true;
            for row in std::mem::take(&mut held) {
                write_row(sheet, &row)?;
            }
        }
    }
    if !widths_set {
        set_widths(sheet, &held)?;
        for row in &held {
            write_row(sheet, row)?;
        }
    }
    let file = tempfile::Builder::new()
        .prefix("ccare-export-")
        .suffix(".xlsx")
        .tempfile()?;
    workbook.save(file.path())?;
    Ok(file)
}

/// The XLSX workbook of `pages` with `columns`, in a sheet named after `name`, as a response
/// body streamed from disk.
pub(crate) async fn export_body(
    name: &str,
    columns: Vec<String>,
    mut pages: Pages,
) -> ApiResult<Body> {
    let sheet_name: String = sanitized_sheet_name(name);
    let (sender, receiver) = mpsc::channel::<Vec<Value>>(2);
    let writer =
        tokio::task::spawn_blocking(move || write_workbook(&sheet_name, &columns, receiver));
    while let Some(page) = pages.next().await {
        // A send fails only when the writer stopped early; its error is reported below.
        if sender.send(page?).await.is_err() {
            break;
        }
    }
    drop(sender);
    let file = match writer.await {
        Ok(Ok(file)) => file,
        Ok(Err(WorkbookError::TooManyRows)) => {
            return Err(ApiError::invalid(
                "format",
                WorkbookError::TooManyRows.to_string(),
            ))
        }
        Ok(Err(e)) => return Err(ApiError::internal(format!("writing the workbook: {e}"))),
        Err(e) => {
            return Err(ApiError::internal(format!(
                "the workbook writer failed: {e}"
            )))
        }
    };
    // The open handle keeps the data readable after the name is removed.
    let (handle, path) = file.into_parts();
    drop(path);
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(handle));
    Ok(Body::from_stream(stream))
}

/// The first 31 characters of the table name, without the characters Excel refuses in a sheet
/// name.
fn sanitized_sheet_name(table: &str) -> String {
    table
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .take(31)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names_are_cut_to_31_characters_without_forbidden_ones() {
        assert_eq!(sanitized_sheet_name("Copy Of tblmeter"), "Copy Of tblmeter");
        assert_eq!(
            sanitized_sheet_name("a/b:c*d?e[f]g\\hijklmnopqrstuvwxyz0123456789"),
            "a_b_c_d_e_f_g_hijklmnopqrstuvwx"
        );
    }
}
