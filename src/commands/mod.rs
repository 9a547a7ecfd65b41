//! One module per command; `run` dispatches.

use crate::cli::Command;
use crate::config::Settings;

pub async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    let _ = settings;
    anyhow::bail!("{command:?} is not available yet")
}

/// An error and its causes on one line, outermost first, without repeating a cause that the
/// outer message already contains.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
