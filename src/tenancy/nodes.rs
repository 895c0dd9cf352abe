//! Which database node holds which tenant, and moving tenants between nodes.
//!
//! On plain PostgreSQL there is one node, the server itself. On Citus with
//! schema-based sharding (`citus.enable_schema_based_sharding = on` on the
//! coordinator) each tenant schema is a distributed schema living whole on
//! one node, and `citus_schema_move()` moves it while it keeps serving. Every
//! function here runs on the coordinator (or the single server), each read in
//! a transaction of its own: behind a transaction-mode PgBouncer without
//! prepared statements, a statement sent outside one may be parsed on one
//! server connection and executed on another.

use sqlx::postgres::{PgConnection, PgPool};

use super::db;

/// One database node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub host: String,
    pub port: u16,
    /// Tenant schemas placed on this node.
    pub tenants: i64,
    /// Size of the database on this node (`pg_database_size`).
    pub bytes: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum NodesError {
    #[error("this database is a single PostgreSQL node; moving tenants needs Citus")]
    SingleNode,
    #[error("{host}:{port} is not a node of this Citus cluster")]
    NoSuchNode { host: String, port: u16 },
    #[error("the schema {0} is not a distributed schema on this Citus cluster")]
    NotDistributed(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Whether the database is a Citus coordinator (the extension is installed).
pub async fn is_citus(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let mut tx = db::begin_public(pool).await?;
    let found = is_citus_on(&mut tx).await?;
    tx.commit().await?;
    Ok(found)
}

async fn is_citus_on(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    db::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
        .fetch_one(&mut *conn)
        .await
}

/// The server itself, as a node name: its address and port.
async fn this_server(conn: &mut PgConnection) -> Result<(String, u16), sqlx::Error> {
    let (host, port): (Option<String>, String) =
        db::query_as("SELECT host(inet_server_addr()), current_setting('port')")
            .fetch_one(&mut *conn)
            .await?;
    Ok((
        host.unwrap_or_else(|| "localhost".to_owned()),
        port.parse().unwrap_or(5432),
    ))
}

/// The primary nodes, in node-id order, with how many tenants each holds and
/// the size of its database. One node on plain PostgreSQL.
pub async fn list_nodes(pool: &PgPool) -> Result<Vec<Node>, sqlx::Error> {
    let mut tx = db::begin_public(pool).await?;
    let found = list_nodes_on(&mut tx).await?;
    tx.commit().await?;
    Ok(found)
}

async fn list_nodes_on(conn: &mut PgConnection) -> Result<Vec<Node>, sqlx::Error> {
    if !is_citus_on(&mut *conn).await? {
        let (host, port) = this_server(&mut *conn).await?;
        let (tenants, bytes): (i64, i64) = db::query_as(
            "SELECT (SELECT count(*) FROM public.tenants), pg_database_size(current_database())",
        )
        .fetch_one(&mut *conn)
        .await?;
        return Ok(vec![Node {
            host,
            port,
            tenants,
            bytes,
        }]);
    }
    let rows: Vec<(String, i32, i64, Option<String>)> = db::query_as(
        "WITH placed AS (
             SELECT DISTINCT t.schema_name, pl.groupid
               FROM public.tenants t
               JOIN pg_dist_schema s ON s.schemaid = to_regnamespace(t.schema_name)
               JOIN pg_dist_partition p ON p.colocationid = s.colocationid
               JOIN pg_dist_shard sh ON sh.logicalrelid = p.logicalrelid
               JOIN pg_dist_placement pl ON pl.shardid = sh.shardid
         ), sizes AS (
             SELECT nodeid, result FROM run_command_on_all_nodes(
                 'SELECT pg_database_size(current_database())') WHERE success
         )
         SELECT n.nodename, n.nodeport,
                (SELECT count(*) FROM placed WHERE placed.groupid = n.groupid),
                (SELECT result FROM sizes WHERE sizes.nodeid = n.nodeid)
           FROM pg_dist_node n
          WHERE n.isactive AND n.noderole = 'primary'
          ORDER BY n.nodeid",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(host, port, tenants, bytes)| Node {
            host,
            port: u16::try_from(port).unwrap_or(0),
            tenants,
            bytes: bytes.and_then(|b| b.parse().ok()).unwrap_or(0),
        })
        .collect())
}

/// The node holding a tenant schema: on Citus, where its tables' shards are
/// (`None` for a schema that is not distributed or has no tables); on plain
/// PostgreSQL, the server, if the schema exists.
pub async fn tenant_node(
    pool: &PgPool,
    schema: &str,
) -> Result<Option<(String, u16)>, sqlx::Error> {
    let mut tx = db::begin_public(pool).await?;
    let found = tenant_node_on(&mut tx, schema).await?;
    tx.commit().await?;
    Ok(found)
}

async fn tenant_node_on(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<Option<(String, u16)>, sqlx::Error> {
    if !is_citus_on(&mut *conn).await? {
        let exists: bool = db::query_scalar("SELECT to_regnamespace($1) IS NOT NULL")
            .bind(schema)
            .fetch_one(&mut *conn)
            .await?;
        return Ok(if exists {
            Some(this_server(&mut *conn).await?)
        } else {
            None
        });
    }
    let node: Option<(String, i32)> = db::query_as(
        "SELECT n.nodename, n.nodeport
           FROM pg_dist_schema s
           JOIN pg_dist_partition p ON p.colocationid = s.colocationid
           JOIN pg_dist_shard sh ON sh.logicalrelid = p.logicalrelid
           JOIN pg_dist_placement pl ON pl.shardid = sh.shardid
           JOIN pg_dist_node n ON n.groupid = pl.groupid
          WHERE s.schemaid = to_regnamespace($1)
          LIMIT 1",
    )
    .bind(schema)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(node.map(|(host, port)| (host, u16::try_from(port).unwrap_or(0))))
}

/// Bytes a tenant schema takes (tables with their indexes and TOAST): on
/// Citus, the sum of its shards on whichever node holds them.
pub async fn tenant_size(pool: &PgPool, schema: &str) -> Result<i64, sqlx::Error> {
    let mut tx = db::begin_public(pool).await?;
    let found = tenant_size_on(&mut tx, schema).await?;
    tx.commit().await?;
    Ok(found)
}

async fn tenant_size_on(conn: &mut PgConnection, schema: &str) -> Result<i64, sqlx::Error> {
    if is_citus_on(&mut *conn).await? {
        return db::query_scalar(
            "SELECT COALESCE(sum(c.shard_size), 0)::bigint
               FROM citus_shards c
               JOIN citus_schemas s ON s.colocation_id = c.colocation_id
              WHERE s.schema_name = to_regnamespace($1)",
        )
        .bind(schema)
        .fetch_one(&mut *conn)
        .await;
    }
    db::query_scalar(
        "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint
           FROM pg_class c
          WHERE c.relnamespace = to_regnamespace($1) AND c.relkind IN ('r', 'm', 'p')",
    )
    .bind(schema)
    .fetch_one(&mut *conn)
    .await
}

/// The size of the whole database (`pg_database_size`), summed over the
/// nodes on Citus, and how many nodes that is: one query, whatever the
/// number of tenants.
pub async fn database_size(pool: &PgPool) -> Result<(i64, i64), sqlx::Error> {
    let mut tx = db::begin_public(pool).await?;
    let found = database_size_on(&mut tx).await?;
    tx.commit().await?;
    Ok(found)
}

async fn database_size_on(conn: &mut PgConnection) -> Result<(i64, i64), sqlx::Error> {
    if is_citus_on(&mut *conn).await? {
        return db::query_as(
            "SELECT COALESCE(sum(result::bigint), 0)::bigint, count(*)
               FROM run_command_on_all_nodes('SELECT pg_database_size(current_database())')
              WHERE success",
        )
        .fetch_one(&mut *conn)
        .await;
    }
    db::query_as("SELECT pg_database_size(current_database()), 1::bigint")
        .fetch_one(&mut *conn)
        .await
}

/// [`tenant_size`] of several schemas in one query: schema name → bytes,
/// for those of `schemas` that exist (on Citus: that are distributed).
pub async fn tenant_sizes(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<std::collections::HashMap<String, i64>, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(conn).await?;
    let found = tenant_sizes_on(&mut tx, schemas).await?;
    tx.commit().await?;
    Ok(found)
}

async fn tenant_sizes_on(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<std::collections::HashMap<String, i64>, sqlx::Error> {
    if schemas.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(String, i64)> = if is_citus_on(&mut *conn).await? {
        db::query_as(
            "SELECT s.schema_name::text, COALESCE(sum(c.shard_size), 0)::bigint
               FROM citus_schemas s
               LEFT JOIN citus_shards c ON c.colocation_id = s.colocation_id
              WHERE s.schema_name::text = ANY ($1)
              GROUP BY 1",
        )
        .bind(schemas)
        .fetch_all(&mut *conn)
        .await?
    } else {
        db::query_as(
            "SELECT n.nspname::text,
                    COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint
               FROM pg_namespace n
               LEFT JOIN pg_class c
                      ON c.relnamespace = n.oid AND c.relkind IN ('r', 'm', 'p')
              WHERE n.nspname = ANY ($1)
              GROUP BY 1",
        )
        .bind(schemas)
        .fetch_all(&mut *conn)
        .await?
    };
    Ok(rows.into_iter().collect())
}

/// What [`move_tenant`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moved {
    Moved,
    /// The schema was already on that node.
    AlreadyThere,
}

/// Moves a tenant schema to the node `host:port` with `citus_schema_move`:
/// the tenant keeps serving reads throughout, and writes too where every
/// table has a primary key or replica identity (logical replication; writes
/// pause only for the final switch). On plain PostgreSQL, an error saying the
/// database is a single node.
pub async fn move_tenant(
    pool: &PgPool,
    schema: &str,
    host: &str,
    port: u16,
) -> Result<Moved, NodesError> {
    // The checks in one transaction (see the module's note); the move
    // itself runs alone, as Citus wants.
    let mut tx = db::begin_public(pool).await?;
    if !is_citus_on(&mut tx).await? {
        return Err(NodesError::SingleNode);
    }
    let known: bool = db::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_dist_node
                         WHERE nodename = $1 AND nodeport = $2
                           AND isactive AND noderole = 'primary')",
    )
    .bind(host)
    .bind(i32::from(port))
    .fetch_one(&mut *tx)
    .await?;
    if !known {
        return Err(NodesError::NoSuchNode {
            host: host.to_owned(),
            port,
        });
    }
    let placed = tenant_node_on(&mut tx, schema).await?;
    tx.commit().await?;
    match placed {
        None => return Err(NodesError::NotDistributed(schema.to_owned())),
        Some((h, p)) if h == host && p == port => return Ok(Moved::AlreadyThere),
        Some(_) => {}
    }
    db::query("SELECT citus_schema_move(to_regnamespace($1), $2, $3)")
        .bind(schema)
        .bind(host)
        .bind(i32::from(port))
        .execute(pool)
        .await?;
    Ok(Moved::Moved)
}
