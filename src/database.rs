//! Opening PostgreSQL: the server in `DATABASE_URL`, or the private cluster under the data directory.

use std::path::Path;

use adapters::postgres::{self, EmbeddedPostgres};
use anyhow::Context;
use sqlx::PgPool;

use crate::config::Settings;

/// An open, migrated database, and the private cluster behind it when ccare started one.
pub struct Database {
    pub pool: PgPool,
    /// The server's URL, for a role that needs a pool of its own.
    pub url: String,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts (or joins) the private cluster under
    /// `CCARE_DATA_DIR/postgres`, then applies the migrations.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let (url, embedded) = match &settings.database_url {
            Some(url) => (url.clone(), None),
            None => {
                let bin = postgres::find_bin_dir(settings.pg_bin.as_deref())?;
                let dir = settings.data_dir.join("postgres");
                ensure_dir(&settings.data_dir)?;
                let cluster = EmbeddedPostgres::start(&dir, &bin).await.with_context(|| {
                    format!(
                        "starting the private PostgreSQL cluster in {}",
                        dir.display()
                    )
                })?;
                (cluster.url(), Some(cluster))
            }
        };
        let pool = postgres::connect(&url).await?;
        postgres::migrate(&pool).await?;
        Ok(Database {
            pool,
            url,
            embedded,
        })
    }

    /// Closes the pool and stops the private cluster if this process started it.
    pub async fn close(self) -> anyhow::Result<()> {
        self.pool.close().await;
        if let Some(cluster) = self.embedded {
            cluster.stop().await?;
        }
        Ok(())
    }
}

pub fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "creating the data directory {} (CCARE_DATA_DIR)",
            dir.display()
        )
    })
}
