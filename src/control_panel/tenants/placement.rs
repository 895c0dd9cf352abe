//! Where a tenant lives: the node holding its schema and the schema's size,
//! as the detail page shows them, and moving it to another node
//! (`POST /tenants/{slug}/move`, Citus only).
//!
//! A move runs within the request: `citus_schema_move` copies the schema
//! with logical replication, so the tenant keeps serving meanwhile, and the
//! request answers when the move is done (seconds for a typical tenant).

use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sqlx::PgPool;

use super::{back_to, parse_slug};
use crate::control_panel::nodes::{human_bytes, node_name, parse_node_name};
use crate::control_panel::{SuperAdmin, audit};
use crate::state::AppState;
use crate::tenancy::nodes::{self, Moved, NodesError};
use crate::tenancy::{PublicDb, db};
use crate::web::{AppError, CsrfForm, Flash};

/// The detail page's "Placement" section.
#[derive(Clone, Debug)]
pub struct Placement {
    pub citus: bool,
    /// `host:port` of the node holding the schema, if it is placed.
    pub node: Option<String>,
    /// The schema's size on disk, human-readable.
    pub size: String,
    /// The nodes it could move to.
    pub others: Vec<String>,
}

impl Placement {
    pub async fn load(pool: &PgPool, schema: &str) -> Result<Placement, sqlx::Error> {
        let citus = nodes::is_citus(pool).await?;
        let node = nodes::tenant_node(pool, schema)
            .await?
            .map(|(host, port)| node_name(&host, port));
        let size = human_bytes(nodes::tenant_size(pool, schema).await?);
        let others = if citus {
            nodes::list_nodes(pool)
                .await?
                .into_iter()
                .map(|n| node_name(&n.host, n.port))
                .filter(|n| Some(n) != node.as_ref())
                .collect()
        } else {
            Vec::new()
        };
        Ok(Placement {
            citus,
            node,
            size,
            others,
        })
    }
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    node: String,
}

/// `POST /tenants/{slug}/move`: moves the tenant's schema to `node`
/// (`host:port`), audited; back to the detail page with how long it took,
/// or with why it did not happen.
pub async fn move_tenant(
    admin: SuperAdmin,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<MoveForm>,
) -> Result<Response, AppError> {
    let slug = parse_slug(&slug)?;
    let schema = slug.schema_name();
    let schema = schema.as_str();
    {
        let mut db = PublicDb::begin(&state.pool).await?;
        let known: bool =
            db::query_scalar("SELECT EXISTS (SELECT 1 FROM public.tenants WHERE slug = $1)")
                .bind(slug.as_str())
                .fetch_one(db.conn())
                .await?;
        if !known {
            return Err(AppError::NotFound);
        }
    }
    let refuse = |message: String| Ok((Flash::error(message), back_to(&slug)).into_response());
    let Some((host, port)) = parse_node_name(&form.node) else {
        return refuse("Choose the node to move the tenant to.".to_owned());
    };
    let to = node_name(&host, port);
    let from = nodes::tenant_node(&state.pool, schema)
        .await?
        .map(|(h, p)| node_name(&h, p));
    let started = Instant::now();
    match nodes::move_tenant(&state.pool, schema, &host, port).await {
        Ok(Moved::Moved) => {
            let took = started.elapsed().as_secs_f64();
            let detail = format!(
                "from {} to {to} in {took:.1} s",
                from.as_deref().unwrap_or("?")
            );
            let mut db = PublicDb::begin(&state.pool).await?;
            admin
                .audit(db.conn(), audit::TENANT_MOVE, Some(slug.as_str()), &detail)
                .await?;
            db.commit().await?;
            tracing::info!(tenant = %slug, by = %admin.email, %detail, "tenant moved in the control panel");
            Ok((
                Flash::success(format!("Moved {slug} to {to} in {took:.1} s.")),
                back_to(&slug),
            )
                .into_response())
        }
        Ok(Moved::AlreadyThere) => Ok((
            Flash::success(format!("{slug} is already on {to}; nothing was moved.")),
            back_to(&slug),
        )
            .into_response()),
        Err(NodesError::SingleNode) => refuse(format!(
            "This database is a single PostgreSQL node: there is no other node to move {slug} to."
        )),
        Err(NodesError::NoSuchNode { .. }) => refuse(format!(
            "{to} is not a node of this cluster; {slug} was not moved."
        )),
        Err(NodesError::NotDistributed(_)) => refuse(format!(
            "The schema of {slug} is not distributed on this cluster, so it cannot be moved."
        )),
        Err(NodesError::Database(sqlx::Error::Database(e))) => {
            tracing::warn!(tenant = %slug, error = %e, by = %admin.email, "tenant move failed");
            refuse(format!(
                "Moving {slug} to {to} failed: {}. It stays on {}.",
                e.message(),
                from.as_deref().unwrap_or("its node")
            ))
        }
        Err(NodesError::Database(e)) => Err(e.into()),
    }
}
