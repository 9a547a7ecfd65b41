//! The customers read model's queries, on rows captured like the ACDB's.

use domain::acdb::AcdbValue;
use domain::phone::PhoneNumber;
use projections::customers::{self, Customer};
use projections::{ProjectorRunner, ReadModels};

use crate::support::{account_row, customer_row, datetime, decimal, meter_row, text, Harness};

/// A village's worth of rows, each customer reachable a different way:
/// - 101 Mpho: an account row and a tblmeter row for 0045MAK, a Copy Of tblmeter row for 0099MAK,
///   two phones (the INTEGER form and a text form);
/// - 102 Palesa: only a tblmeter row (0101MAS);
/// - 103 Thabo: only a Copy Of tblmeter row (0007SHG);
/// - 104 Lerato: no account anywhere, a plot implying 0914KET;
/// - 105 and 106: 0200MAK in tblaccountnumbers (105) and tblmeter (106); 0300MAK in tblmeter (106)
///   and Copy Of tblmeter (105); 105 also has the odd lower-case account 0199mak;
/// - 107 Nthabiseng: a South African number.
async fn village() -> (Harness, ProjectorRunner) {
    let mut h = Harness::new().await;
    let c = &mut h.capture;
    let mpho = customer_row(101, "Mpho", "Mokoena", 58123456, "MAK 0045 HH", "MAK")
        .with("CELL PHONE 1", text("+266 6200 1122"))
        .with("EMAIL", text("mpho@example.org"));
    c.row("tblcustomer", mpho).await;
    c.row(
        "tblaccountnumbers",
        account_row("0045MAK", 101, "SMRSD-26-00000045"),
    )
    .await;
    c.row("tblmeter", meter_row("SMRSD-26-00000045", "0045MAK", 101))
        .await;
    c.row(
        "Copy Of tblmeter",
        meter_row("SMRSD-26-00000099", "0099MAK", 101),
    )
    .await;
    c.row(
        "tblcustomer",
        customer_row(102, "Palesa", "Nthako", 57001122, "MAS 0101 HH", "MAS"),
    )
    .await;
    c.row("tblmeter", meter_row("SMRSD-26-00000101", "0101MAS", 102))
        .await;
    let thabo = customer_row(103, "Thabo", "Lebona", 57000003, "SHG 0007 SME", "SHG")
        .with("CUSTOMER POSITION", text("SME"))
        .with("DATE SERVICE TERMINATED", datetime("2024-06-30T00:00:00"));
    c.row("tblcustomer", thabo).await;
    c.row(
        "Copy Of tblmeter",
        meter_row("SMRSD-26-00000007", "0007SHG", 103),
    )
    .await;
    c.row(
        "tblcustomer",
        customer_row(104, "Lerato", "Mofokeng", 59009988, "KET 0914B HH", "KET"),
    )
    .await;
    c.row(
        "tblcustomer",
        customer_row(105, "Neo", "Sello", 63004455, "MAK 0200 HH", "MAK"),
    )
    .await;
    c.row(
        "tblcustomer",
        customer_row(106, "Karabo", "Phiri", 56007788, "MAK 0300 HH", "MAK"),
    )
    .await;
    c.row(
        "tblaccountnumbers",
        account_row("0200MAK", 105, "SMRSD-26-00000200"),
    )
    .await;
    c.row(
        "tblaccountnumbers",
        account_row("0199mak", 105, "SMRSD-26-00000199"),
    )
    .await;
    c.row("tblmeter", meter_row("SMRSD-26-00000200", "0200MAK", 106))
        .await;
    c.row("tblmeter", meter_row("SMRSD-26-00000300", "0300MAK", 106))
        .await;
    c.row(
        "Copy Of tblmeter",
        meter_row("SMRSD-26-00000300", "0300MAK", 105),
    )
    .await;
    let nthabiseng = customer_row(107, "Nthabiseng", "Dlamini", 0, "", "MAK")
        .with("PHONE", AcdbValue::Null)
        .with("CELL PHONE 2", text("0027 82 123 4567"));
    c.row("tblcustomer", nthabiseng).await;
    c.transaction(1, "0045MAK", "50.00").await;
    let runner = h.runner();
    runner.ensure_ready().await.unwrap();
    runner.catch_up().await.unwrap();
    (h, runner)
}

fn ids(customers: &[Customer]) -> Vec<i64> {
    customers.iter().map(|c| c.customer_id).collect()
}

fn phone(raw: &str) -> PhoneNumber {
    PhoneNumber::parse(raw).unwrap()
}

#[tokio::test]
async fn a_customer_is_found_by_id_with_phones_site_dates_and_account_numbers() {
    // Arrange
    let (h, _runner) = village().await;

    // Act
    let mpho = customers::customer_by_id(h.pool(), 101)
        .await
        .unwrap()
        .unwrap();
    let thabo = customers::customer_by_id(h.pool(), 103)
        .await
        .unwrap()
        .unwrap();
    let nobody = customers::customer_by_id(h.pool(), 999).await.unwrap();

    // Assert
    assert_eq!(mpho.full_name, "Mpho Mokoena");
    assert_eq!(
        (mpho.first_name.as_deref(), mpho.middle_name.as_deref()),
        (Some("Mpho"), None)
    );
    assert_eq!(mpho.phones, [phone("+26658123456"), phone("+26662001122")]);
    assert_eq!(mpho.site.as_ref().map(|s| s.as_str()), Some("MAK"));
    assert_eq!(
        (mpho.plot_number.as_deref(), mpho.concession.as_deref()),
        (Some("MAK 0045 HH"), Some("MAK"))
    );
    assert_eq!(
        (mpho.city.as_deref(), mpho.district.as_deref()),
        (Some("Maseru"), Some("Maseru"))
    );
    assert_eq!(
        mpho.date_connected,
        Some("2023-04-12T00:00:00".parse().unwrap())
    );
    assert_eq!((mpho.terminated, mpho.date_terminated), (false, None));
    assert_eq!(mpho.customer_type.as_deref(), Some("HH"));
    assert_eq!(mpho.account_numbers, ["0045MAK", "0099MAK"]);
    assert_eq!(
        mpho.record().unwrap().email.as_deref(),
        Some("mpho@example.org")
    );
    assert_eq!(mpho.source_row.get("GPS X"), &decimal("27.7312"));
    assert!(thabo.terminated);
    assert_eq!(
        thabo.date_terminated,
        Some("2024-06-30T00:00:00".parse().unwrap())
    );
    assert_eq!(thabo.customer_type.as_deref(), Some("SME"));
    assert_eq!(nobody, None);
}

#[tokio::test]
async fn a_customer_is_found_by_phone_written_in_any_legacy_form() {
    // Arrange
    let (h, _runner) = village().await;
    let forms = [
        "58123456",
        "+266 5812 3456",
        "26658123456",
        "0026658123456",
        "058123456",
        "+266-5812-3456",
    ];

    for form in forms {
        // Act
        let found = customers::customers_by_phone(h.pool(), &phone(form))
            .await
            .unwrap();

        // Assert
        assert_eq!(ids(&found), [101], "{form}");
    }
    let second_phone = customers::customers_by_phone(h.pool(), &phone("62001122"))
        .await
        .unwrap();
    assert_eq!(ids(&second_phone), [101]);
    let unknown = customers::customers_by_phone(h.pool(), &phone("+266 5000 0000"))
        .await
        .unwrap();
    assert!(unknown.is_empty());
}

#[tokio::test]
async fn a_number_stored_under_another_country_code_is_found_by_its_last_eight_digits_like_the_legacy(
) {
    // Arrange
    let (h, _runner) = village().await;

    // Act: the South African number +27 82 123 4567, asked for with Lesotho's code.
    let exact = customers::customers_by_phone(h.pool(), &phone("+27821234567"))
        .await
        .unwrap();
    let by_last8 = customers::customers_by_phone(h.pool(), &phone("+266 2123 4567"))
        .await
        .unwrap();

    // Assert
    assert_eq!(ids(&exact), [107]);
    assert_eq!(ids(&by_last8), [107]);
}

#[tokio::test]
async fn an_account_is_resolved_from_account_rows_then_tblmeter_then_the_meter_register_copy() {
    // Arrange
    let (h, _runner) = village().await;
    let by_account = |account: &'static str| {
        let pool = h.pool().clone();
        async move {
            ids(&customers::customers_by_account(&pool, account)
                .await
                .unwrap())
        }
    };

    // Act + Assert: each source alone.
    assert_eq!(by_account("0045MAK").await, [101], "tblaccountnumbers");
    assert_eq!(by_account("0101MAS").await, [102], "tblmeter");
    assert_eq!(by_account("0007SHG").await, [103], "Copy Of tblmeter");
    // The first source that knows the account decides.
    assert_eq!(
        by_account("0200MAK").await,
        [105],
        "tblaccountnumbers before tblmeter"
    );
    assert_eq!(
        by_account("0300MAK").await,
        [106],
        "tblmeter before Copy Of tblmeter"
    );
    // Case, spaces and the reversed form do not matter; unknown accounts find nobody.
    assert_eq!(by_account(" 0045mak ").await, [101]);
    assert_eq!(by_account("mak0045").await, [101]);
    assert_eq!(by_account("0199MAK").await, [105]);
    assert!(by_account("0999MAK").await.is_empty());
    assert!(by_account("   ").await.is_empty());
}

#[tokio::test]
async fn account_numbers_follow_the_legacy_resolution_order() {
    // Arrange
    let (h, _runner) = village().await;

    // Act
    let numbers = |id: i64| {
        let pool = h.pool().clone();
        async move { customers::account_numbers(&pool, id).await.unwrap() }
    };

    // Assert: the union of account rows and both meter tables, sorted byte-wise like Python.
    assert_eq!(numbers(101).await, ["0045MAK", "0099MAK"]);
    assert_eq!(numbers(105).await, ["0199mak", "0200MAK", "0300MAK"]);
    assert_eq!(numbers(106).await, ["0200MAK", "0300MAK"]);
    // No account anywhere: the account the plot implies (sub-plot letter dropped).
    assert_eq!(numbers(104).await, ["0914KET"]);
    // No account and no usable plot: none.
    assert!(numbers(107).await.is_empty());
    assert!(numbers(999).await.is_empty());
}

#[tokio::test]
async fn search_finds_customers_by_name_plot_phone_account_and_id_ignoring_case() {
    // Arrange
    let (h, _runner) = village().await;
    let search = |q: &'static str, limit: i64| {
        let pool = h.pool().clone();
        async move { ids(&customers::search(&pool, q, limit).await.unwrap()) }
    };

    // Act + Assert
    assert_eq!(search("mokoena", 20).await, [101], "last name");
    assert_eq!(search("PALESA", 20).await, [102], "first name, any case");
    assert_eq!(search("mpho mok", 20).await, [101], "full name");
    assert_eq!(search("ket 0914", 20).await, [104], "plot number");
    assert_eq!(search("5812 3456", 20).await, [101], "phone digits");
    assert_eq!(search("+266 6200 1122", 20).await, [101], "phone in E.164");
    assert_eq!(search("0101mas", 20).await, [102], "account of a meter");
    assert_eq!(search("0199MAK", 20).await, [105], "account row");
    assert_eq!(search("104", 20).await, [104], "customer id");
    assert_eq!(search("shg", 20).await, [103], "concession");
    assert!(
        search("%", 20).await.is_empty(),
        "wildcards match literally"
    );
    assert!(search("  ", 20).await.is_empty());
    assert_eq!(
        search("mak", 2).await,
        [101, 105],
        "limited, by customer id"
    );
}

#[tokio::test]
async fn updates_and_deletes_in_the_acdb_are_reflected() {
    // Arrange
    let (mut h, runner) = village().await;
    let renamed = customer_row(101, "Mpho", "Ramoeletsi", 50111222, "MAK 0045 HH", "MAK");

    // Act
    h.capture.row("tblcustomer", renamed).await;
    h.capture.deletion("tblcustomer", "102").await;
    h.capture.deletion("tblaccountnumbers", "0200MAK").await;
    h.capture
        .row("tblmeter", meter_row("SMRSD-26-00000300", "0300MAK", 104))
        .await;
    h.capture
        .deletion("Copy Of tblmeter", "SMRSD-26-00000007")
        .await;
    runner.catch_up().await.unwrap();

    // Assert
    let pool = h.pool();
    let mpho = customers::customer_by_id(pool, 101).await.unwrap().unwrap();
    assert_eq!(
        (mpho.full_name.as_str(), mpho.phones.as_slice()),
        ("Mpho Ramoeletsi", &[phone("50111222")][..])
    );
    assert!(customers::customers_by_phone(pool, &phone("58123456"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(&customers::customers_by_phone(pool, &phone("50111222"))
            .await
            .unwrap()),
        [101]
    );
    assert!(customers::search(pool, "mokoena", 20)
        .await
        .unwrap()
        .is_empty());
    // 102 is gone; its meter still names it, but like the legacy that finds nobody.
    assert_eq!(customers::customer_by_id(pool, 102).await.unwrap(), None);
    assert!(customers::customers_by_account(pool, "0101MAS")
        .await
        .unwrap()
        .is_empty());
    // With its account row gone, 0200MAK falls through to tblmeter.
    assert_eq!(
        ids(&customers::customers_by_account(pool, "0200MAK")
            .await
            .unwrap()),
        [106]
    );
    assert_eq!(
        ids(&customers::customers_by_account(pool, "0300MAK")
            .await
            .unwrap()),
        [104]
    );
    // 103 lost its only meter: its plot implies the same account.
    assert_eq!(
        customers::account_numbers(pool, 103).await.unwrap(),
        ["0007SHG"]
    );
    assert!(customers::customers_by_account(pool, "0007SHG")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(customers::customer_count(pool).await.unwrap(), 6);
}

#[tokio::test]
async fn the_read_models_handle_answers_the_queries_and_reports_health() {
    // Arrange
    let (h, _runner) = village().await;
    let read_models = ReadModels::new(h.pool().clone());

    // Act
    let health = read_models.health().await.unwrap();
    let by_phone = read_models
        .customers_by_phone(&phone("58123456"))
        .await
        .unwrap();
    let searched = read_models.search_customers("lerato", 5).await.unwrap();

    // Assert
    let head = h.capture.store().head().await.unwrap().position;
    assert_eq!((health.event_log_head, health.customer_count), (head, 7));
    assert_eq!(ids(&by_phone), [101]);
    assert_eq!(ids(&searched), [104]);
    assert_eq!(read_models.account_numbers(104).await.unwrap(), ["0914KET"]);
    assert_eq!(read_models.customer_count().await.unwrap(), 7);
}
