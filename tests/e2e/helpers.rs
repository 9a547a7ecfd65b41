use std::path::Path;
use std::process::{Command, Output};

/// Runs `ccare ARGS` with only the given ccare-related variables set (the test's own environment
/// is cleared of every variable ccare reads, so a developer's settings cannot leak in).
pub(crate) fn ccare(args: &[&str], vars: &[(&str, &str)], data_dir: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccare"));
    for (k, _) in std::env::vars() {
        if k == "DATABASE_URL"
            || k.starts_with("ACDB_")
            || k.starts_with("CCARE_")
            || k.starts_with("WHATSAPP_")
            || k == "NATS_URL"
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("CCARE_DATA_DIR", data_dir)
        .env("CCARE_LOG", "warn")
        .args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("the ccare binary runs")
}

/// Stderr's non-empty lines that are not log lines.
pub(crate) fn error_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("ccare: "))
        .map(str::to_string)
        .collect()
}

/// Asserts the command failed with exactly one `ccare:` error line containing every `needle`.
pub(crate) fn assert_one_error_line(out: &Output, needles: &[&str]) {
    assert!(
        !out.status.success(),
        "expected failure, got {:?}",
        out.status
    );
    let lines = error_lines(out);
    assert_eq!(
        lines.len(),
        1,
        "expected one error line, stderr was:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "{:?} not in {:?}",
            needle,
            lines[0]
        );
    }
}
