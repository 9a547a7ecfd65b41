//! The ACDB readers against the real SQLite ODBC driver and real Access files, and the synthetic
//! ACDB generator.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use adapters::acdb::file::FileReader;
use adapters::acdb::generate::GenerateOptions;
use adapters::acdb::odbc::OdbcReader;
use adapters::acdb::{open, AcdbLocation, AcdbReader, Dialect, Scan, ScanFilter};
use adapters::Error;
use chrono::NaiveDateTime;
use domain::acdb::{AcdbRow, AcdbValue};
use domain::catalog::{
    table_spec, ColumnKind, KeyPart, RowKey, TableKind, TableSpec, CAPTURED_TABLES,
};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use testkit::acdb::{generated, generated_small, generated_with, Param};

fn spec(table: &str) -> &'static TableSpec {
    table_spec(table).unwrap_or_else(|| panic!("{table} is catalogued"))
}

/// Every row of `table` matching `filter`, in the order the reader hands them over.
fn read_all(
    reader: &mut dyn AcdbReader,
    spec: &TableSpec,
    filter: ScanFilter,
    batch_size: usize,
) -> Vec<AcdbRow> {
    let mut rows = Vec::new();
    let scan = Scan { filter, batch_size };
    reader
        .scan(spec, &scan, &mut |batch| {
            assert!(
                !batch.is_empty() && batch.len() <= batch_size,
                "batch of {}",
                batch.len()
            );
            rows.extend(batch);
            true
        })
        .unwrap();
    rows
}

fn keys(spec: &TableSpec, rows: &[AcdbRow]) -> Vec<RowKey> {
    rows.iter()
        .map(|r| spec.row_key(r).expect("a generated row has a key"))
        .collect()
}

fn dec(s: &str) -> AcdbValue {
    AcdbValue::Decimal {
        decimal: Decimal::from_str(s).unwrap(),
    }
}

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::from_str(s).unwrap()
}

fn datetime(s: &str) -> AcdbValue {
    AcdbValue::DateTime { datetime: at(s) }
}

fn text(s: &str) -> AcdbValue {
    AcdbValue::Text(s.to_string())
}

fn by_int_key<'a>(rows: &'a [AcdbRow], column: &str, id: i64) -> &'a AcdbRow {
    rows.iter()
        .find(|r| r.get(column) == &AcdbValue::Int(id))
        .unwrap_or_else(|| panic!("no row {column} = {id}"))
}

/// A digest of every captured table as read over ODBC, in key order.
fn content_digest(reader: &mut OdbcReader) -> String {
    let mut hasher = Sha256::new();
    for spec in CAPTURED_TABLES {
        hasher.update(spec.table.as_bytes());
        for row in read_all(reader, spec, ScanFilter::All, 5_000) {
            hasher.update(row.content_hash().0);
        }
    }
    hex::encode(hasher.finalize())
}

#[test]
fn the_generator_gives_identical_contents_for_a_seed_and_different_ones_for_another() {
    let first = generated(60, 7);
    let again = generated(60, 7);
    let other = generated(60, 8);

    let first_digest = content_digest(&mut first.reader());
    let again_digest = content_digest(&mut again.reader());
    let other_digest = content_digest(&mut other.reader());

    assert_eq!(first_digest, again_digest);
    assert_eq!(first.summary(), again.summary());
    assert_ne!(first_digest, other_digest);
}

#[test]
fn the_generated_tables_and_columns_are_named_exactly_as_the_catalogue() {
    let acdb = generated_small();
    let mut reader = acdb.reader();

    let tables = reader.tables().unwrap();
    let columns: Vec<(String, Vec<String>)> = CAPTURED_TABLES
        .iter()
        .map(|s| {
            (
                s.table.to_string(),
                reader
                    .columns(s.table)
                    .unwrap()
                    .into_iter()
                    .map(|c| c.name)
                    .collect(),
            )
        })
        .collect();

    let mut expected_tables: Vec<&str> = CAPTURED_TABLES.iter().map(|s| s.table).collect();
    let mut found_tables: Vec<&str> = tables.iter().map(String::as_str).collect();
    expected_tables.sort_unstable();
    found_tables.sort_unstable();
    assert_eq!(found_tables, expected_tables);
    for (spec, (table, names)) in CAPTURED_TABLES.iter().zip(&columns) {
        let expected: Vec<&str> = spec.columns.iter().map(|c| c.name).collect();
        assert_eq!(names, &expected, "{table}");
    }
}

#[test]
fn the_driver_reports_the_declared_column_types() {
    let acdb = generated_small();
    let mut reader = acdb.reader();

    let history = reader.columns("tblaccounthistory1").unwrap();
    let kind = |name: &str| history.iter().find(|c| c.name == name).unwrap().kind;

    assert_eq!(reader.dialect(), Dialect::Sqlite);
    assert_eq!(kind("ID"), Some(ColumnKind::Int));
    assert_eq!(kind("accountnumber"), Some(ColumnKind::Text));
    assert_eq!(kind("transaction date"), Some(ColumnKind::DateTime));
    assert_eq!(kind("payment"), Some(ColumnKind::Bool));
}

#[test]
fn customer_rows_read_over_odbc_are_typed_and_odd_values_are_kept_as_text() {
    let acdb = generated_small();
    let mut reader = acdb.reader();

    let customers = read_all(&mut reader, spec("tblcustomer"), ScanFilter::All, 7);

    assert_eq!(customers.len(), 20);
    assert_eq!(
        keys(spec("tblcustomer"), &customers),
        (1..=20)
            .map(|i| RowKey(vec![KeyPart::Int(i)]))
            .collect::<Vec<_>>()
    );
    assert!(customers
        .iter()
        .all(|r| r.len() == spec("tblcustomer").columns.len()));
    let named = by_int_key(&customers, "CUSTOMER ID", 3);
    assert_eq!(named.get("FIRST NAME"), &text("Mokhotlong"));
    assert_eq!(named.get("LAST NAME"), &text("Ntšekhe"));
    assert!(matches!(
        named.get("DATE SERVICE CONNECTED"),
        AcdbValue::DateTime { .. }
    ));
    assert!(matches!(named.get("GPS X"), AcdbValue::Decimal { .. }));
    assert_eq!(
        by_int_key(&customers, "CUSTOMER ID", 5).get("DATE SERVICE CONNECTED"),
        &text("2024-02-30")
    );
    let slashed = by_int_key(&customers, "CUSTOMER ID", 7).get("DATE SERVICE CONNECTED");
    assert!(
        matches!(slashed, AcdbValue::Text(s) if s.len() == 10 && s.as_bytes()[2] == b'/'),
        "{slashed:?}"
    );
    let date_only = by_int_key(&customers, "CUSTOMER ID", 8).get("DATE SERVICE CONNECTED");
    assert!(
        matches!(date_only, AcdbValue::DateTime { datetime } if datetime.time() == chrono::NaiveTime::MIN),
        "{date_only:?}"
    );
    let empty = by_int_key(&customers, "CUSTOMER ID", 9);
    assert_eq!(empty.get("FIRST NAME"), &AcdbValue::Null);
    assert_eq!(empty.get("DATE SERVICE CONNECTED"), &AcdbValue::Null);
    assert_eq!(
        by_int_key(&customers, "CUSTOMER ID", 10).get("GPS X"),
        &text("n/a")
    );
    assert_eq!(
        by_int_key(&customers, "CUSTOMER ID", 11).get("DATE SERVICE TERMINATED"),
        &text("")
    );
    assert_eq!(
        by_int_key(&customers, "CUSTOMER ID", 12).get("FIRST NAME"),
        &text("Thabo ")
    );
    assert!(matches!(
        by_int_key(&customers, "CUSTOMER ID", 4).get("DATE SERVICE TERMINATED"),
        AcdbValue::DateTime { .. }
    ));
}

#[test]
fn money_dates_flags_and_nulls_written_through_odbc_read_back_exactly() {
    let acdb = generated_small();
    let last_id = acdb.summary().rows("tblaccounthistory1") as i64;
    let insert = "INSERT INTO [tblaccounthistory1] ([ID], [accountnumber], [meterid], [transaction date], \
                  [transaction amount], [kwh value], [rate used], [payment], [current balance]) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    acdb.execute(
        insert,
        &[
            (last_id + 1).into(),
            "0001MAK".into(),
            Param::Null,
            "2025-06-01 10:15:00".into(),
            "12.3456".into(),
            "2.4691".into(),
            "5.0000".into(),
            (-1).into(),
            Param::Null,
        ],
    );
    acdb.execute(
        insert,
        &[
            (last_id + 2).into(),
            "0002MAK".into(),
            "SMRSD-26-00000002".into(),
            Param::Null,
            "-99999.9999".into(),
            "0".into(),
            "4.5".into(),
            0.into(),
            "1234567.89".into(),
        ],
    );
    let mut reader = acdb.reader();

    let rows = read_all(
        &mut reader,
        spec("tblaccounthistory1"),
        ScanFilter::KeyAfter(RowKey(vec![KeyPart::Int(last_id)])),
        10,
    );

    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get("ID"), &AcdbValue::Int(last_id + 1));
    assert_eq!(rows[0].get("transaction amount"), &dec("12.3456"));
    assert_eq!(rows[0].get("kwh value"), &dec("2.4691"));
    assert_eq!(
        rows[0].get("rate used").as_decimal(),
        Some(Decimal::from(5))
    );
    assert_eq!(rows[0].get("payment"), &AcdbValue::Bool(true));
    assert_eq!(
        rows[0].get("transaction date"),
        &datetime("2025-06-01T10:15:00")
    );
    assert_eq!(rows[0].get("meterid"), &AcdbValue::Null);
    assert_eq!(rows[0].get("current balance"), &AcdbValue::Null);
    assert_eq!(rows[1].get("transaction amount"), &dec("-99999.9999"));
    assert_eq!(rows[1].get("kwh value").as_decimal(), Some(Decimal::ZERO));
    assert_eq!(rows[1].get("rate used"), &dec("4.5"));
    assert_eq!(rows[1].get("payment"), &AcdbValue::Bool(false));
    assert_eq!(rows[1].get("transaction date"), &AcdbValue::Null);
    assert_eq!(rows[1].get("current balance"), &dec("1234567.89"));
}

#[test]
fn the_generated_history_holds_the_awkward_cases_the_legacy_code_meets() {
    let acdb = generated(120, 3);
    let mut reader = acdb.reader();

    let history = read_all(
        &mut reader,
        spec("tblaccounthistory1"),
        ScanFilter::All,
        1_000,
    );
    let accounts = read_all(
        &mut reader,
        spec("tblaccountnumbers"),
        ScanFilter::All,
        1_000,
    );
    let config = read_all(&mut reader, spec("tblconfig"), ScanFilter::All, 10);
    let meters = read_all(
        &mut reader,
        spec("Copy Of tblmeter"),
        ScanFilter::All,
        1_000,
    );

    let account_of = |r: &AcdbRow| match r.get("accountnumber") {
        AcdbValue::Text(s) => Some(s.clone()),
        _ => None,
    };
    let count = |pred: &dyn Fn(&AcdbRow) -> bool| history.iter().filter(|r| pred(r)).count();
    assert!(count(&|r| account_of(r).is_some_and(|a| a.len() == 2)) >= 1);
    assert!(count(&|r| account_of(r).is_some_and(|a| a.len() == 1)) >= 1);
    assert!(count(&|r| account_of(r).is_some_and(|a| a.contains(' '))) >= 2);
    assert!(
        count(&|r| account_of(r).is_some_and(|a| a.chars().any(|c| c.is_ascii_lowercase()))) >= 1
    );
    assert!(count(&|r| r.get("accountnumber").is_null()) >= 1);
    assert!(count(&|r| r.get("transaction date").is_null()) >= 1);
    assert!(
        count(&|r| matches!(r.get("transaction date"), AcdbValue::Text(s) if s.contains('/'))) >= 1
    );
    assert!(
        count(&|r| r
            .get("transaction amount")
            .as_decimal()
            .is_some_and(|a| a.is_sign_negative()))
            >= 1
    );
    assert!(
        count(&|r| r
            .get("transaction amount")
            .as_decimal()
            .is_some_and(|a| a.is_zero()))
            >= 1
            || history.len() < 2_000
    );
    assert!(accounts
        .iter()
        .any(|r| r.get("accountnumber") == &text("XX/??")));
    assert!(accounts
        .iter()
        .any(|r| account_of(r).is_some_and(|a| a.ends_with(|c: char| c.is_ascii_lowercase()))));
    assert_eq!(config.len(), 1);
    assert_eq!(
        config[0].get("therate").as_decimal(),
        Some(Decimal::from(5))
    );
    assert!(meters
        .iter()
        .any(|r| r.get("current status") == &text("active")));
}

#[test]
fn key_after_resumes_an_integer_keyed_scan_with_no_row_twice_and_none_missed() {
    let acdb = generated(40, 2);
    let mut reader = acdb.reader();
    let spec = spec("tblaccounthistory1");
    let all = keys(spec, &read_all(&mut reader, spec, ScanFilter::All, 500));
    assert!(all.len() > 1_000, "{} rows", all.len());
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "rows come in key order"
    );

    // Read in stretches, stopping after each batch and resuming after the last key seen.
    let mut resumed: Vec<RowKey> = Vec::new();
    loop {
        let filter = resumed
            .last()
            .map_or(ScanFilter::All, |k| ScanFilter::KeyAfter(k.clone()));
        let mut batch_keys = Vec::new();
        reader
            .scan(
                spec,
                &Scan {
                    filter,
                    batch_size: 333,
                },
                &mut |batch| {
                    batch_keys = keys(spec, &batch);
                    false
                },
            )
            .unwrap();
        if batch_keys.is_empty() {
            break;
        }
        resumed.extend(batch_keys);
    }

    assert_eq!(resumed, all);
}

#[test]
fn key_after_resumes_a_composite_keyed_scan_with_no_row_twice_and_none_missed() {
    let acdb = generated(70, 5);
    let mut reader = acdb.reader();
    let spec = spec("tblmeterdata1");
    let all = keys(spec, &read_all(&mut reader, spec, ScanFilter::All, 1_000));
    let meters: std::collections::BTreeSet<_> = all.iter().map(|k| k.parts()[0].clone()).collect();
    assert!(meters.len() >= 2, "readings of {} meters", meters.len());
    // The last reading of the first meter: the next row belongs to the next meter.
    let boundary = all
        .iter()
        .rposition(|k| k.parts()[0] == all[0].parts()[0])
        .unwrap();
    let middle = all.len() / 2 + 17;

    for cut in [0, boundary, middle, all.len() - 1] {
        let after = read_all(
            &mut reader,
            spec,
            ScanFilter::KeyAfter(all[cut].clone()),
            700,
        );

        assert_eq!(
            keys(spec, &after),
            all[cut + 1..].to_vec(),
            "resuming after row {cut}"
        );
    }
}

#[test]
fn at_least_returns_exactly_the_rows_at_or_past_the_watermark() {
    let acdb = generated(70, 5);
    let mut reader = acdb.reader();
    let readings = spec("tblmeterdata1");
    let all = read_all(&mut reader, readings, ScanFilter::All, 2_000);
    let watermark = at("2025-12-24T13:40:00");
    let expected: Vec<RowKey> = keys(readings, &all)
        .into_iter()
        .filter(|k| matches!(&k.parts()[1], KeyPart::DateTime(d) if *d >= watermark))
        .collect();

    let found = read_all(
        &mut reader,
        readings,
        ScanFilter::AtLeast {
            column: "whdatetime".into(),
            value: KeyPart::DateTime(watermark),
        },
        500,
    );

    assert!(!expected.is_empty() && expected.len() < all.len());
    assert_eq!(keys(readings, &found), expected);

    let history = spec("tblaccounthistory1");
    let TableKind::AppendOnly {
        watermark: id_column,
    } = history.kind
    else {
        panic!("history is append-only")
    };
    let from_id = read_all(
        &mut reader,
        history,
        ScanFilter::AtLeast {
            column: id_column.into(),
            value: KeyPart::Int(100),
        },
        500,
    );
    assert_eq!(
        from_id.first().map(|r| r.get("ID")),
        Some(&AcdbValue::Int(100))
    );
    assert_eq!(
        from_id.len() as u64,
        acdb.summary().rows("tblaccounthistory1") - 99
    );
}

#[test]
fn row_counts_match_what_was_generated() {
    let acdb = generated(40, 4);
    let mut reader = acdb.reader();

    for spec in CAPTURED_TABLES {
        assert_eq!(
            reader.count_rows(spec.table).unwrap(),
            acdb.summary().rows(spec.table),
            "{}",
            spec.table
        );
    }
    // Access compares names ignoring case, and so does the reader.
    assert_eq!(
        reader.count_rows("COPY OF TBLMETER").unwrap(),
        acdb.summary().rows("Copy Of tblmeter")
    );
}

#[test]
fn a_missing_table_is_reported_as_missing() {
    let acdb = generated_small();
    acdb.execute("DROP TABLE [tblmeterdata1]", &[]);
    let mut reader = acdb.reader();

    let columns = reader.columns("tblmeterdata1").unwrap_err();
    let count = reader.count_rows("tblnothing").unwrap_err();
    let scan = reader
        .scan(spec("tblmeterdata1"), &Scan::all(10), &mut |_| true)
        .unwrap_err();

    assert!(
        matches!(&columns, Error::AcdbTableMissing { table } if table == "tblmeterdata1"),
        "{columns}"
    );
    assert!(matches!(count, Error::AcdbTableMissing { .. }), "{count}");
    assert!(matches!(scan, Error::AcdbTableMissing { .. }), "{scan}");
    assert!(!reader
        .tables()
        .unwrap()
        .iter()
        .any(|t| t == "tblmeterdata1"));
}

#[test]
fn a_bad_connection_string_fails_with_one_line_naming_the_driver_problem() {
    let missing_driver = OdbcReader::connect("Driver=NoSuchDriver;Database=/nowhere/acdb.sqlite")
        .err()
        .unwrap();
    let missing_dir = OdbcReader::connect("Driver=SQLite3;Database=/nonexistent-dir/acdb.sqlite")
        .err()
        .unwrap();

    for error in [&missing_driver, &missing_dir] {
        let message = error.to_string();
        assert!(matches!(error, Error::AcdbConnect { .. }), "{error:?}");
        assert!(!message.contains('\n'), "{message:?}");
        assert!(message.contains("SQLSTATE"), "{message}");
    }
    assert!(
        missing_driver.to_string().contains("NoSuchDriver"),
        "{missing_driver}"
    );
}

#[test]
fn a_password_in_the_connection_string_never_reaches_the_message() {
    let error = OdbcReader::connect("Driver=NoSuchDriver;DBQ=C:\\acdb.accdb;PWD=hunter2;")
        .err()
        .unwrap();

    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[test]
fn a_value_longer_than_its_buffer_is_read_whole_and_no_row_is_repeated() {
    let acdb = generated_small();
    let long_name: String = "Ntšekhe ".repeat(2_500); // 22,500 bytes: more than the 8 KiB first buffer
    acdb.execute(
        "UPDATE [tblcustomer] SET [FIRST NAME] = ? WHERE [CUSTOMER ID] IN (1, 14)",
        &[long_name.clone().into()],
    );
    let mut reader = acdb.reader();

    for batch_size in [1, 5, 100] {
        let rows = read_all(
            &mut reader,
            spec("tblcustomer"),
            ScanFilter::All,
            batch_size,
        );

        assert_eq!(
            keys(spec("tblcustomer"), &rows),
            (1..=20)
                .map(|i| RowKey(vec![KeyPart::Int(i)]))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            by_int_key(&rows, "CUSTOMER ID", 1).get("FIRST NAME"),
            &AcdbValue::Text(long_name.clone())
        );
        assert_eq!(
            by_int_key(&rows, "CUSTOMER ID", 14).get("FIRST NAME"),
            &AcdbValue::Text(long_name.clone())
        );
    }
}

#[test]
fn open_picks_the_reader_for_the_location() {
    let acdb = generated_small();

    let odbc = open(&AcdbLocation::Odbc(acdb.dsn())).unwrap();
    let file = open(&AcdbLocation::File(fixture("ASampleDatabase.accdb"))).unwrap();

    assert_eq!(odbc.dialect(), Dialect::Sqlite);
    assert_eq!(file.dialect(), Dialect::File);
}

/// The generator at its default size (the unit test in `generate` checks the counts; this reads
/// the result back through ODBC).
#[test]
fn a_default_size_acdb_reads_back_over_odbc() {
    let acdb = generated_with(&GenerateOptions::default());
    let mut reader = acdb.reader();

    let history = reader.count_rows("tblaccounthistory1").unwrap();
    let mut seen = 0u64;
    reader
        .scan(
            spec("tblaccounthistory1"),
            &Scan::all(10_000),
            &mut |batch| {
                seen += batch.len() as u64;
                true
            },
        )
        .unwrap();

    assert!((225_000..=275_000).contains(&history), "{history}");
    assert_eq!(seen, history);
}

// --- .accdb / .mdb files -------------------------------------------------------------------

/// The real Access sample files kept next to the repository (`<repo>/../shared/fixtures/accdb`).
fn fixture(name: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared/fixtures/accdb").join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "fixture {name} not found in shared/fixtures/accdb above {}",
                manifest.display()
            )
        })
}

const ASSET_COLUMNS: [&str; 13] = [
    "Asset No",
    "Asset Category",
    "Make",
    "Model",
    "Description",
    "Owner",
    "Serial No",
    "Acquired",
    "Cost",
    "Warranty",
    "Tax Scale",
    "Supplier No",
    "Comments",
];

const ASSET_ITEMS: TableSpec = TableSpec {
    table: "Asset Items",
    aggregate_type: "TestAssetItem",
    kind: TableKind::Mutable,
    key: &["Asset No"],
    columns: &[],
};

const DATE_TEST: TableSpec = TableSpec {
    table: "DateTest",
    aggregate_type: "TestDate",
    kind: TableKind::Mutable,
    key: &["IDCol"],
    columns: &[],
};

#[test]
fn every_column_of_the_accdb_sample_is_read_with_its_access_type() {
    let mut reader = FileReader::open(&fixture("ASampleDatabase.accdb")).unwrap();

    let tables = reader.tables().unwrap();
    let columns = reader.columns("asset items").unwrap();
    let rows = read_all(&mut reader, &ASSET_ITEMS, ScanFilter::All, 10);

    assert_eq!(tables, vec!["Asset Items".to_string()]);
    assert_eq!(
        columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ASSET_COLUMNS
    );
    let kind = |name: &str| columns.iter().find(|c| c.name == name).unwrap().kind;
    assert_eq!(kind("Acquired"), Some(ColumnKind::DateTime));
    assert_eq!(kind("Cost"), Some(ColumnKind::Decimal));
    assert_eq!(kind("Warranty"), Some(ColumnKind::Int));
    assert_eq!(kind("Comments"), Some(ColumnKind::Text));
    assert_eq!(reader.count_rows("Asset Items").unwrap(), 65);
    assert_eq!(rows.len(), 65);
    assert!(rows.iter().all(|r| r.len() == ASSET_COLUMNS.len()));
    // Values as `mdb-export -T '%Y-%m-%d %H:%M:%S'` shows them.
    let first = &rows[0];
    let expected_first = [
        ("Asset No", text("30050")),
        ("Asset Category", text("Computer Hardware")),
        ("Make", text("GEO Rocket")),
        ("Model", text("220ZX")),
        ("Description", text("Computer")),
        ("Owner", text("Sales")),
        ("Serial No", text("344-667")),
        ("Acquired", datetime("1997-09-02T00:00:00")),
        ("Cost", dec("1995.5000")),
        ("Warranty", AcdbValue::Int(12)),
        ("Tax Scale", text("A")),
        ("Supplier No", text("44577")),
        ("Comments", AcdbValue::Null),
    ];
    for (column, value) in &expected_first {
        assert_eq!(first.get(column), value, "{column}");
    }
    let AcdbValue::Decimal { decimal } = first.get("Cost") else {
        panic!("Cost is money")
    };
    assert_eq!(decimal.to_string(), "1995.5000", "four places kept");
    let last = &rows[64];
    assert_eq!(last.get("Asset No"), &text("30118"));
    assert_eq!(last.get("Make"), &text("Davis Reece"));
    assert_eq!(last.get("Acquired"), &datetime("1999-10-27T00:00:00"));
    assert_eq!(last.get("Cost"), &dec("3425.5000"));
    assert_eq!(last.get("Warranty"), &AcdbValue::Int(0));
    assert_eq!(last.get("Tax Scale"), &AcdbValue::Null);
    assert_eq!(last.get("Supplier No"), &AcdbValue::Null);
    let row = |asset: &str| {
        rows.iter()
            .find(|r| r.get("Asset No") == &text(asset))
            .unwrap()
    };
    assert_eq!(row("30054").get("Owner"), &text("Admin & Accounts"));
    assert_eq!(
        row("30061").get("Acquired"),
        &datetime("1999-02-07T00:00:00")
    );
    assert_eq!(row("30090").get("Warranty"), &AcdbValue::Int(24));
    let total: Decimal = rows
        .iter()
        .map(|r| r.get("Cost").as_decimal().unwrap())
        .sum();
    assert_eq!(
        total,
        Decimal::from_str("98164.5").unwrap(),
        "every Cost exact"
    );
    assert!(rows.iter().all(|r| r.get("Comments").is_null()));
    let order: Vec<_> = rows
        .iter()
        .map(|r| r.get("Asset No").as_text().unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "rows in key order");
}

#[test]
fn every_column_of_the_mdb_date_test_is_read_including_extreme_dates() {
    let mut reader = FileReader::open(&fixture("DateTestDatabase.mdb")).unwrap();

    let tables = reader.tables().unwrap();
    let columns: Vec<_> = reader
        .columns("DateTest")
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.kind))
        .collect();
    let rows = read_all(&mut reader, &DATE_TEST, ScanFilter::All, 4);

    assert_eq!(tables, vec!["DateTest".to_string()]);
    assert_eq!(
        columns,
        vec![
            ("IDCol".to_string(), Some(ColumnKind::Int)),
            ("DateTimeCol".to_string(), Some(ColumnKind::DateTime)),
            ("DateCol".to_string(), Some(ColumnKind::DateTime)),
            ("TimeCol".to_string(), Some(ColumnKind::DateTime)),
            ("LongTextCol".to_string(), Some(ColumnKind::Text)),
            ("ShortTextCol".to_string(), Some(ColumnKind::Text)),
        ]
    );
    assert_eq!(rows.len(), 6);
    assert_eq!(
        rows.iter()
            .map(|r| r.get("IDCol").clone())
            .collect::<Vec<_>>(),
        (1..=6).map(AcdbValue::Int).collect::<Vec<_>>()
    );
    let row = |id: i64| &rows[id as usize - 1];
    for column in ["DateTimeCol", "DateCol", "TimeCol"] {
        assert_eq!(
            row(1).get(column),
            &datetime("2021-12-02T00:00:00"),
            "{column}"
        );
    }
    assert_eq!(row(2).get("DateTimeCol"), &datetime("9999-01-01T00:00:00"));
    assert_eq!(row(2).get("LongTextCol"), &text("Year 9999"));
    assert_eq!(row(2).get("ShortTextCol"), &text("Year 1999"));
    assert_eq!(row(3).get("DateTimeCol"), &datetime("1898-01-01T00:00:00"));
    assert_eq!(row(3).get("TimeCol"), &datetime("1900-01-01T00:00:00"));
    assert_eq!(row(3).get("LongTextCol"), &text("Pre-1900 years"));
    assert_eq!(row(4).get("DateTimeCol"), &datetime("0632-01-01T00:00:00"));
    assert_eq!(
        row(5).get("LongTextCol"),
        &text("Escaped new line \\r\\n in field")
    );
    assert_eq!(row(6).get("LongTextCol"), &text("New line\r\nin field"));
    assert_eq!(row(6).get("ShortTextCol"), &text("No new line"));
    for id in 1..=6 {
        assert_eq!(row(id).len(), 6, "row {id}");
    }
}

#[test]
fn a_file_scan_filters_and_resumes_in_key_order() {
    let mut reader = FileReader::open(&fixture("ASampleDatabase.accdb")).unwrap();
    let all = read_all(&mut reader, &ASSET_ITEMS, ScanFilter::All, 65);
    let all_keys = keys(&ASSET_ITEMS, &all);

    let after = read_all(
        &mut reader,
        &ASSET_ITEMS,
        ScanFilter::KeyAfter(all_keys[40].clone()),
        7,
    );
    let recent = read_all(
        &mut reader,
        &ASSET_ITEMS,
        ScanFilter::AtLeast {
            column: "Acquired".into(),
            value: KeyPart::DateTime(at("1999-06-19T00:00:00")),
        },
        8,
    );
    let mut first_batch = Vec::new();
    reader
        .scan(&ASSET_ITEMS, &Scan::all(10), &mut |batch| {
            first_batch = batch;
            false
        })
        .unwrap();

    assert_eq!(keys(&ASSET_ITEMS, &after), all_keys[41..].to_vec());
    assert_eq!(recent.len(), 29);
    assert!(recent.iter().all(|r| matches!(r.get("Acquired"), AcdbValue::DateTime { datetime } if *datetime >= at("1999-06-19T00:00:00"))));
    assert_eq!(keys(&ASSET_ITEMS, &first_batch), all_keys[..10].to_vec());
}

#[test]
fn a_missing_file_or_table_is_a_clear_error() {
    let missing_file = FileReader::open(Path::new("/nonexistent/acdb.accdb"))
        .err()
        .unwrap();
    let mut reader = FileReader::open(&fixture("DateTestDatabase.mdb")).unwrap();
    let missing_table = reader.count_rows("tblcustomer").unwrap_err();

    assert!(
        matches!(&missing_file, Error::AcdbFile { path, .. } if path == Path::new("/nonexistent/acdb.accdb")),
        "{missing_file}"
    );
    assert!(
        missing_file.to_string().contains("/nonexistent/acdb.accdb"),
        "{missing_file}"
    );
    assert!(
        matches!(missing_table, Error::AcdbTableMissing { .. }),
        "{missing_table}"
    );
}
