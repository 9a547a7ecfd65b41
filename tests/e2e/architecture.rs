//! The dependency rules of docs/ARCHITECTURE.md, checked rather than hoped for.

use std::collections::BTreeSet;
use std::path::Path;

/// The names listed in a manifest's `[dependencies]` and `[target.*.dependencies]` sections
/// (not dev-dependencies: tests may use anything).
fn normal_dependencies(crate_dir: &str) -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(crate_dir)
        .join("Cargo.toml");
    let manifest =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut in_deps = false;
    let mut deps = BTreeSet::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]"
                || (line.starts_with("[target.") && line.ends_with(".dependencies]"));
            continue;
        }
        if in_deps {
            if let Some(name) = line
                .split(['=', '.', ' '])
                .next()
                .filter(|n| !n.is_empty() && !n.starts_with('#'))
            {
                deps.insert(name.to_string());
            }
        }
    }
    deps
}

fn assert_lacks(crate_dir: &str, forbidden: &[&str], why: &str) {
    let deps = normal_dependencies(crate_dir);
    for f in forbidden {
        assert!(!deps.contains(*f), "{crate_dir} depends on {f}, but {why}");
    }
}

#[test]
fn the_domain_crate_depends_on_nothing_that_does_io() {
    assert!(
        normal_dependencies("domain").contains("cqrs-es"),
        "the check reads the manifest"
    );
    assert_lacks(
        "domain",
        &[
            "tokio",
            "sqlx",
            "axum",
            "odbc-api",
            "async-nats",
            "postgres-es",
            "adapters",
            "projections",
            "api",
            "bridge",
            "reqwest",
        ],
        "domain performs no I/O and depends on no other crate of ours",
    );
}

#[test]
fn only_adapters_speaks_odbc_and_only_adapters_and_projections_speak_sql() {
    for krate in ["projections", "api", "bridge"] {
        assert_lacks(
            krate,
            &["odbc-api", "rusqlite", "jetdb"],
            "only adapters reaches the ACDB",
        );
    }
    for krate in ["api", "bridge"] {
        assert_lacks(
            krate,
            &["sqlx", "postgres-es"],
            "only adapters and projections speak SQL",
        );
    }
}

#[test]
fn projections_never_depend_on_adapters_or_http() {
    assert_lacks(
        "projections",
        &["adapters", "axum", "api", "bridge"],
        "projections only read the log and write read models",
    );
}

#[test]
fn only_api_knows_http() {
    for krate in ["domain", "adapters", "projections"] {
        assert_lacks(
            krate,
            &["axum", "tower-http"],
            "api is the only crate that knows HTTP",
        );
    }
}
