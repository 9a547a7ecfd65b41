//! Progress of long work: a bar on a terminal, plain log lines otherwise (CI, services, pipes).

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use adapters::cdc::{Phase, ProgressSink, TableReport};
use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};

/// Every progress bar the process draws. Log lines go through [`LogWriter`], which hides the
/// bars while a line is written, so logs and bars never overwrite each other.
pub fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// The log output: stderr, written between redraws of the progress bars.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        bars().suspend(|| std::io::stderr().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        bars().suspend(|| std::io::stderr().write_all(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Renders change-capture progress.
pub struct CdcProgress {
    terminal: bool,
    tables: Mutex<HashMap<String, TableProgress>>,
}

struct TableProgress {
    bar: Option<ProgressBar>,
    started: Instant,
    done: u64,
    total: Option<u64>,
    last_line: Instant,
}

/// How often a non-terminal run logs a progress line per table.
const LOG_EVERY: Duration = Duration::from_secs(5);

impl CdcProgress {
    pub fn new() -> Self {
        CdcProgress {
            terminal: std::io::stderr().is_terminal(),
            tables: Mutex::new(HashMap::new()),
        }
    }
}

/// The style of a table's import bar.
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:>26} [{bar:30}] {human_pos}/{human_len} rows  {rate}  eta {eta}",
    )
    .expect("the template is valid")
    .with_key(
        "rate",
        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0} rows/s", state.per_sec());
        },
    )
    .progress_chars("=> ")
}

impl ProgressSink for CdcProgress {
    fn table_started(&self, table: &str, phase: Phase, total_rows: Option<u64>) {
        let bar = (self.terminal && phase == Phase::Snapshot).then(|| {
            let bar = bars().add(
                ProgressBar::new(total_rows.unwrap_or(0))
                    .with_style(bar_style())
                    .with_prefix(table.to_string()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        // A poisoned lock only means a previous render panicked; progress output is best effort.
        if let Ok(mut tables) = self.tables.lock() {
            tables.insert(
                table.to_string(),
                TableProgress {
                    bar,
                    started: now,
                    done: 0,
                    total: total_rows,
                    last_line: now,
                },
            );
        }
    }

    fn rows_done(&self, table: &str, rows: u64) {
        let Ok(mut tables) = self.tables.lock() else {
            return;
        };
        let Some(p) = tables.get_mut(table) else {
            return;
        };
        p.done += rows;
        if let Some(bar) = &p.bar {
            bar.set_position(p.done);
        } else if p.last_line.elapsed() >= LOG_EVERY {
            p.last_line = Instant::now();
            let rate = p.done as f64 / p.started.elapsed().as_secs_f64().max(1e-3);
            tracing::info!(
                table,
                rows_done = p.done,
                total_rows = p.total,
                rows_per_sec = rate.round(),
                "import progress"
            );
        }
    }

    fn table_finished(&self, table: &str, report: &TableReport) {
        let Ok(mut tables) = self.tables.lock() else {
            return;
        };
        if let Some(p) = tables.remove(table) {
            if let Some(bar) = p.bar {
                bar.finish_and_clear();
                bars().remove(&bar);
            }
            let secs = format!("{:.1}", p.started.elapsed().as_secs_f64());
            // A quiet poll is the normal case every few seconds: only changes are worth a line.
            if report.phase != Phase::Snapshot && report.events_emitted > 0 {
                tracing::info!(
                    table,
                    created = report.created,
                    updated = report.updated,
                    deleted = report.deleted,
                    seconds = secs,
                    "changes captured"
                );
            } else {
                tracing::debug!(
                    table,
                    rows_seen = report.rows_seen,
                    events = report.events_emitted,
                    seconds = secs,
                    "capture cycle done"
                );
            }
        }
    }
}

/// Progress of one long command step: a bar or spinner on a terminal, a log line every few
/// seconds otherwise.
pub struct Activity {
    what: &'static str,
    bar: Option<ProgressBar>,
    last_line: Mutex<Instant>,
}

impl Activity {
    /// A spinner with a message, for work of unknown length.
    pub fn spinner(what: &'static str) -> Self {
        Self::new(what, || {
            let bar = ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {msg}").expect("the template is valid"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        })
    }

    /// A bar counting `total` units.
    pub fn counter(what: &'static str, total: u64, unit: &'static str) -> Self {
        Self::new(what, || {
            let template =
                format!("{what} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit}  {{rate}}");
            ProgressBar::new(total).with_style(
                ProgressStyle::with_template(&template)
                    .expect("the template is valid")
                    .with_key(
                        "rate",
                        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.0}/s", state.per_sec());
                        },
                    )
                    .progress_chars("=> "),
            )
        })
    }

    fn new(what: &'static str, make: impl FnOnce() -> ProgressBar) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| bars().add(make()));
        Activity {
            what,
            bar,
            last_line: Mutex::new(Instant::now()),
        }
    }

    fn log_due(&self) -> bool {
        let Ok(mut last) = self.last_line.lock() else {
            return false;
        };
        if last.elapsed() < LOG_EVERY {
            return false;
        }
        *last = Instant::now();
        true
    }

    pub fn message(&self, message: impl std::fmt::Display) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_string()),
            None if self.log_due() => tracing::info!("{}: {message}", self.what),
            None => {}
        }
    }

    pub fn position(&self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None if self.log_due() => tracing::info!("{}: {done} done", self.what),
            None => {}
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
            bars().remove(&bar);
        }
    }
}
