//! The read-model views as analysts see them, and their rows streamed for exports (CSV, XLSX
//! and JSON through the API). Private read models (see [`Projection::private`]) are left out.

use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::error::Result;
use crate::projection::{qualified, quote_ident, Projection};
use crate::registry::READ_MODEL_SCHEMA;

/// A column of a read-model view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewColumn {
    pub name: String,
    /// PostgreSQL's type name (`text`, `numeric`, `bigint`, …).
    pub data_type: String,
}

/// A read-model view that may be exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadModelView {
    pub name: String,
    /// The read model (projection) it belongs to.
    pub projection: String,
    /// The table's comment.
    pub description: String,
    pub columns: Vec<ViewColumn>,
}

/// A view's name, projection, comment, column names and column types.
type ViewRow = (String, String, Option<String>, Vec<String>, Vec<String>);

/// Every view of the public read models among `projections`, by name.
pub async fn views(
    pool: &PgPool,
    projections: &[Arc<dyn Projection>],
) -> Result<Vec<ReadModelView>> {
    let public: Vec<&str> = projections
        .iter()
        .filter(|p| !p.private())
        .map(|p| p.name())
        .collect();
    let rows: Vec<ViewRow> = sqlx::query_as(
        "select v.view_name, v.projection, \
                obj_description(format('%I.%I', $2::text, v.view_name)::regclass, 'pg_class'), \
                array_agg(c.column_name::text order by c.ordinal_position), \
                array_agg(c.data_type::text order by c.ordinal_position) \
         from projection_views v \
         join information_schema.columns c \
           on c.table_schema = $2 and c.table_name = v.view_name \
         where v.projection = any($1) \
         group by v.view_name, v.projection order by v.view_name",
    )
    .bind(&public)
    .bind(READ_MODEL_SCHEMA)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(name, projection, description, names, types)| ReadModelView {
                name,
                projection,
                description: description.unwrap_or_default(),
                columns: names
                    .into_iter()
                    .zip(types)
                    .map(|(name, data_type)| ViewColumn { name, data_type })
                    .collect(),
            },
        )
        .collect())
}

/// The rows of `view` as JSON objects, in pages of `page_rows`, ordered by every column (so an
/// export is the same twice over the same data). Numbers of type `numeric` come as exact
/// strings (money is never a float), other values as their JSON form. There is always at least
/// one page, possibly empty.
pub fn rows(
    pool: PgPool,
    view: &ReadModelView,
    page_rows: usize,
) -> BoxStream<'static, Result<Vec<Value>>> {
    let select: Vec<String> = view
        .columns
        .iter()
        .map(|c| {
            let column = quote_ident(&c.name);
            if c.data_type == "numeric" {
                format!("{column}::text as {column}")
            } else {
                column
            }
        })
        .collect();
    let order: Vec<String> = (1..=view.columns.len()).map(|i| i.to_string()).collect();
    // View and column names come from the catalogue, quoted anyway.
    let sql = format!(
        "select to_jsonb(r) from (select {} from {} order by {}) r",
        select.join(", "),
        qualified(READ_MODEL_SCHEMA, &view.name),
        order.join(", ")
    );
    let (sender, receiver) = mpsc::channel::<Result<Vec<Value>>>(2);
    // The query streams on a task of its own; it stops when the receiver goes (the client left).
    tokio::spawn(async move {
        let mut stream = sqlx::query_scalar::<_, Json<Value>>(&sql).fetch(&pool);
        let mut page = Vec::with_capacity(page_rows);
        let mut sent = false;
        while let Some(row) = stream.next().await {
            match row {
                Ok(Json(row)) => page.push(row),
                Err(e) => {
                    let _ = sender.send(Err(e.into())).await;
                    return;
                }
            }
            if page.len() == page_rows {
                sent = true;
                if sender.send(Ok(std::mem::take(&mut page))).await.is_err() {
                    return;
                }
            }
        }
        if !page.is_empty() || !sent {
            let _ = sender.send(Ok(page)).await;
        }
    });
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|page| (page, receiver))
    })
    .boxed()
}
