//! The read models for analysts: `GET /api/read-models` lists the exportable views with their
//! columns, `GET /api/read-models/{view}/export?format=csv|xlsx|json` streams one. Private read
//! models (users and tokens) are neither listed nor exported.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use projections::exports::{self, ReadModelView};

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::export::{self, ExportFormat};
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/read-models", get(list))
        .route("/api/read-models/{view}/export", get(export_view))
}

async fn views(state: &AppState) -> ApiResult<Vec<ReadModelView>> {
    Ok(exports::views(state.read_models.pool(), &projections::all()).await?)
}

async fn list(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    user.employee()?;
    let views = views(&state).await?;
    Ok(Json(Value::Array(
        views
            .iter()
            .map(|v| {
                json!({
                    "name": v.name,
                    "read_model": v.projection,
                    "description": v.description,
                    "columns": v.columns.iter().map(|c| json!({"name": c.name, "type": c.data_type})).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExportQuery {
    format: Option<String>,
}

async fn export_view(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(name): Path<String>,
    Query(query): Query<ExportQuery>,
) -> ApiResult<Response> {
    user.employee()?;
    let format = ExportFormat::parse(
        query.format.as_deref(),
        &[ExportFormat::Csv, ExportFormat::Xlsx, ExportFormat::Json],
    )?;
    let view = views(&state)
        .await?
        .into_iter()
        .find(|v| v.name == name.trim())
        .ok_or_else(|| ApiError::NotFound(format!("Read model '{}' not found", name.trim())))?;
    let columns = view.columns.iter().map(|c| c.name.clone()).collect();
    let pages = exports::rows(state.read_models.pool().clone(), &view, export::PAGE_ROWS)
        .map(|page| page.map_err(ApiError::from))
        .boxed();
    export::respond(&view.name, format, columns, pages).await
}
