//! `projections::analysts`: analysts read the read_model schema, and nothing else, before and
//! after a rebuild.

use std::str::FromStr;
use std::sync::Arc;

use projections::analysts::{self, Granted};
use projections::ProjectorRunner;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::support::Harness;

/// An analyst role of this test alone (roles are shared by the whole cluster); dropped on drop.
struct Analyst {
    name: String,
    admin_url: String,
}

impl Analyst {
    fn new() -> Analyst {
        Analyst {
            name: format!("analyst_{}", uuid::Uuid::new_v4().simple()),
            admin_url: String::new(),
        }
    }

    async fn connect(&self, url: &str) -> PgConnection {
        let options = PgConnectOptions::from_str(url)
            .unwrap()
            .username(&self.name)
            .password("analyst secret 1");
        PgConnection::connect_with(&options).await.unwrap()
    }
}

impl Drop for Analyst {
    fn drop(&mut self) {
        let url = self.admin_url.clone();
        let name = self.name.clone();
        // The test's runtime is ending; drop the role from a runtime of our own.
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&url).await {
                    let _ = sqlx::query(&format!("drop owned by \"{name}\""))
                        .execute(&mut conn)
                        .await;
                    let _ = sqlx::query(&format!("drop role if exists \"{name}\""))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join()
        .unwrap();
    }
}

/// The SQLSTATE with which `sql` is refused on `conn` (it must be refused).
async fn refusal(conn: &mut PgConnection, sql: &str) -> String {
    let error = sqlx::query(sql).execute(conn).await.expect_err(sql);
    error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
        .unwrap_or_else(|| panic!("{sql}: {error}"))
}

#[tokio::test]
async fn an_analyst_reads_the_read_models_and_nothing_else_even_after_a_rebuild() {
    let harness = Harness::new().await;
    let runner = ProjectorRunner::new(harness.pool().clone(), projections::all());
    runner.ensure_ready().await.unwrap();
    let mut analyst = Analyst::new();
    analyst.admin_url = harness.db.url.clone();

    let granted = analysts::grant(
        harness.pool(),
        &projections::all(),
        &analyst.name,
        Some("analyst secret 1"),
    )
    .await
    .unwrap();
    let again = analysts::grant(harness.pool(), &projections::all(), &analyst.name, None)
        .await
        .unwrap();
    assert_eq!((granted, again), (Granted::Created, Granted::Updated));
    assert!(analysts::list(harness.pool())
        .await
        .unwrap()
        .contains(&analyst.name));

    let mut conn = analyst.connect(&harness.db.url).await;
    let customers: i64 = sqlx::query_scalar("select count(*) from read_model.customers")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(customers, 0);
    assert_eq!(
        refusal(&mut conn, "select * from event_log limit 1").await,
        "42501"
    );
    let schema: String = sqlx::query_scalar(
        "select table_schema::text from information_schema.tables where table_name = 'customers' and table_schema <> 'read_model' limit 1",
    )
    .fetch_one(harness.pool())
    .await
    .unwrap();
    assert_eq!(
        refusal(&mut conn, &format!("select * from \"{schema}\".customers")).await,
        "42501"
    );
    assert_eq!(
        refusal(&mut conn, "select * from read_model.users").await,
        "42501",
        "password hashes"
    );
    assert_eq!(
        refusal(&mut conn, "select * from read_model.conversation_messages").await,
        "42501",
        "what customers wrote"
    );
    // read_only_sql_transaction: the session is read-only before any grant is even checked.
    assert_eq!(
        refusal(&mut conn, "create table read_model.mine (x int)").await,
        "25006"
    );

    // A rebuild recreates the views; the analyst can still read them.
    let rebuilding = ProjectorRunner::new(
        harness.pool().clone(),
        vec![Arc::new(projections::customers::CustomersProjection)],
    );
    rebuilding
        .rebuild(Some("customers"), &mut |_| {})
        .await
        .unwrap();
    let after: i64 = sqlx::query_scalar("select count(*) from read_model.customers")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(after, 0);
    let users_rebuilt = ProjectorRunner::new(
        harness.pool().clone(),
        vec![Arc::new(projections::users::UsersProjection)],
    );
    users_rebuilt
        .rebuild(Some("users"), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(
        refusal(&mut conn, "select * from read_model.users").await,
        "42501",
        "after a rebuild"
    );
    conn.close().await.unwrap();

    assert!(analysts::revoke(harness.pool(), &analyst.name)
        .await
        .unwrap());
    assert!(!analysts::revoke(harness.pool(), &analyst.name)
        .await
        .unwrap());
    let mut conn = analyst.connect(&harness.db.url).await;
    assert_eq!(
        refusal(&mut conn, "select count(*) from read_model.customers").await,
        "42501"
    );
}

#[tokio::test]
async fn bad_or_privileged_role_names_are_refused() {
    let harness = Harness::new().await;

    for name in [
        "Robert'); drop table x;--",
        "pg_monitor",
        "ccare_analysts",
        "",
    ] {
        let refused = analysts::grant(harness.pool(), &projections::all(), name, None).await;
        assert!(
            matches!(refused, Err(projections::Error::InvalidRoleName { .. })),
            "{name}: {refused:?}"
        );
    }
    let superuser: String = sqlx::query_scalar(
        "select rolname::text from pg_roles where rolsuper and rolname ~ '^[a-z][a-z0-9_]*$' and rolname !~ '^(pg_|ccare)' limit 1",
    )
    .fetch_one(harness.pool())
    .await
    .unwrap();
    let refused = analysts::grant(harness.pool(), &projections::all(), &superuser, None).await;
    assert!(
        matches!(refused, Err(projections::Error::PrivilegedRole { .. })),
        "{refused:?}"
    );
}
