//! The database nodes (`GET /nodes`): each node with its tenant count and
//! size, so an operator sees an imbalance, and on Citus a rebalance that
//! spreads the tenants evenly (`POST /nodes/rebalance`), with its progress.
//! On plain PostgreSQL the page says the database is a single node.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use super::auth::Empty;
use super::{PanelNav, SuperAdmin, audit};
use crate::state::AppState;
use crate::tenancy::{PublicDb, db, nodes};
use crate::web::{AppError, Chrome, CsrfForm, Flash, IncomingFlash, Page};

/// `1234567` as "1.2 MB": powers of 1024, one decimal above bytes.
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A node name as the panel shows and the move form sends it.
pub fn node_name(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The `host` and `port` of a name written by [`node_name`].
pub fn parse_node_name(name: &str) -> Option<(String, u16)> {
    let (host, port) = name.trim().rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), port.parse().ok()?))
}

/// One row of the nodes table.
#[derive(Clone, Debug)]
pub struct NodeView {
    pub name: String,
    pub tenants: i64,
    pub size: String,
}

/// The newest rebalance job, from `citus_rebalance_status()`.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RebalanceView {
    pub job_id: i64,
    pub state: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// "done: 2, runnable: 1": the job's tasks by state.
    pub tasks: Option<String>,
}

impl RebalanceView {
    pub fn is_active(&self) -> bool {
        matches!(
            self.state.as_str(),
            "scheduled" | "running" | "cancelling" | "failing"
        )
    }

    /// A CSS modifier for the state's badge.
    pub fn tone(&self) -> &'static str {
        match self.state.as_str() {
            "finished" => "badge-success",
            "failed" | "failing" | "cancelled" | "cancelling" => "badge-danger",
            _ => "",
        }
    }
}

/// The newest rebalance job, if Citus ever ran one on this database.
async fn rebalance_status(pool: &sqlx::PgPool) -> Result<Option<RebalanceView>, sqlx::Error> {
    db::query_as(
        "SELECT job_id, state::text AS state,
                to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS started,
                to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS finished,
                (SELECT string_agg(key || ': ' || value, ', ' ORDER BY key)
                   FROM jsonb_each_text(details -> 'task_state_counts')) AS tasks
           FROM citus_rebalance_status()
          ORDER BY job_id DESC
          LIMIT 1",
    )
    .fetch_optional(pool)
    .await
}

#[derive(Template, WebTemplate)]
#[template(path = "control_panel/nodes.html")]
pub struct NodesPage {
    chrome: Chrome,
    nav: PanelNav,
    flash: IncomingFlash,
    csrf: String,
    citus: bool,
    nodes: Vec<NodeView>,
    rebalance: Option<RebalanceView>,
}

impl NodesPage {
    /// Most minus fewest tenants on a node.
    fn spread(&self) -> i64 {
        let most = self.nodes.iter().map(|n| n.tenants).max().unwrap_or(0);
        let fewest = self.nodes.iter().map(|n| n.tenants).min().unwrap_or(0);
        most - fewest
    }
}

/// `GET /nodes`.
pub async fn page(
    admin: SuperAdmin,
    page: Page,
    State(state): State<AppState>,
) -> Result<NodesPage, AppError> {
    let citus = nodes::is_citus(&state.pool).await?;
    let listed = nodes::list_nodes(&state.pool).await?;
    let rebalance = if citus {
        rebalance_status(&state.pool).await?
    } else {
        None
    };
    Ok(NodesPage {
        chrome: page.chrome,
        nav: admin.nav(&page.csrf, "nodes"),
        flash: page.flash,
        csrf: page.csrf.0,
        citus,
        nodes: listed
            .into_iter()
            .map(|n| NodeView {
                name: node_name(&n.host, n.port),
                tenants: n.tenants,
                size: human_bytes(n.bytes),
            })
            .collect(),
        rebalance,
    })
}

/// `POST /nodes/rebalance`: starts `citus_rebalance_start()`, a background
/// job that moves tenant schemas (with logical replication where possible,
/// so they keep serving) until each node holds about as many. By shard
/// count, so it evens out what this page shows (tenants per node): Citus's
/// default strategy weighs disk size and may leave two small tenants
/// together. Answers at once; the nodes page shows the job's progress.
pub async fn rebalance(
    admin: SuperAdmin,
    State(state): State<AppState>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, AppError> {
    let back = Redirect::to("/nodes");
    if !nodes::is_citus(&state.pool).await? {
        return Ok((
            Flash::error(
                "This database is a single PostgreSQL node: there is no other node to spread tenants over.",
            ),
            back,
        )
            .into_response());
    }
    let started: Result<Option<i64>, sqlx::Error> = db::query_scalar(
        "SELECT citus_rebalance_start(rebalance_strategy => 'by_shard_count', \
                                          shard_transfer_mode => 'auto')",
    )
    .fetch_one(&state.pool)
    .await;
    let job = match started {
        Ok(job) => job,
        Err(sqlx::Error::Database(e)) => {
            tracing::warn!(error = %e, by = %admin.email, "rebalance not started");
            return Ok((
                Flash::error(format!("The rebalance did not start: {}.", e.message())),
                back,
            )
                .into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let Some(job) = job else {
        return Ok((
            Flash::success("The tenants are already spread evenly: there is nothing to move."),
            back,
        )
            .into_response());
    };
    let mut db = PublicDb::begin(&state.pool).await?;
    admin
        .audit(
            db.conn(),
            audit::REBALANCE_START,
            None,
            &format!("Citus job {job}"),
        )
        .await?;
    db.commit().await?;
    Ok((
        Flash::success(format!(
            "Rebalance started (job {job}); this page shows its progress."
        )),
        back,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 kB");
        assert_eq!(human_bytes(1_258_291), "1.2 MB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GB");
    }

    #[test]
    fn node_names_round_trip() {
        for (host, port) in [("localhost", 5432), ("10.0.0.2", 6000), ("::1", 7)] {
            let name = node_name(host, port);
            assert_eq!(parse_node_name(&name), Some((host.to_owned(), port)));
        }
        assert_eq!(node_name("::1", 7), "[::1]:7");
        assert_eq!(parse_node_name("nohost"), None);
        assert_eq!(parse_node_name(":5432"), None);
        assert_eq!(parse_node_name("h:notaport"), None);
    }
}
