//! A tenant schema's data out and in: the archive (`.tar.gz`) and the
//! restore into a new tenant.
//!
//! The archive holds `manifest.json` first (format version, the schema's
//! applied migrations, one entry per table with its columns, row count,
//! size and SHA-256), then one file per table in `COPY`'s text format
//! (`tables/<table>.copy`), then whatever files the application adds (its
//! catalogue row, a logo…). The core knows no application table: it dumps
//! every table of the schema except its ledgers, its own sessions table and
//! the ones the application names as not to be carried.
//!
//! A restore provisions the new tenant in one transaction: catalogue row,
//! default domain, an empty schema, the migrations the archive was taken
//! at (the exact ones: same versions, same checksums), the data through
//! `COPY` (in foreign-key order, sequences moved past the highest id), then
//! the migrations this build has beyond the archive's. Anything wrong and
//! the transaction rolls back: nothing is left behind.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Executor};

use super::db;
use super::migrate::{self, CORE_TENANT_MIGRATIONS, TenantMigrateError};
use super::provision::{self, NewTenant, ProvisionError, Provisioning};
use super::schema::SchemaName;

/// What `manifest.json` says it is.
pub const FORMAT: &str = "tenantry-tenant-archive";
/// The archive layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";
/// The core's own sessions table: sessions are never carried.
const CORE_SESSIONS: &str = "tenantry_sessions";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The version of the program that wrote it.
    pub app_version: String,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ`.
    pub exported_at: String,
    /// The tenant it was taken from.
    pub slug: String,
    /// The schema's tenant migration version (`public.tenants.schema_version`:
    /// how many tenant migrations, the core's and the application's).
    pub schema_version: i64,
    pub migrations: Ledgers,
    pub tables: Vec<TableEntry>,
    /// The application's own files.
    pub files: Vec<FileEntry>,
}

/// The applied migrations of the schema's two ledgers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ledgers {
    pub core: Vec<Applied>,
    pub app: Vec<Applied>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Applied {
    pub version: i64,
    /// sqlx's SHA-384 of the migration file, hex.
    pub checksum: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    pub file: String,
    /// `COPY`'s text format.
    pub format: String,
    pub columns: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// An archive in memory: the manifest and every file it lists, checked.
#[derive(Debug)]
pub struct Archive {
    pub manifest: Manifest,
    /// `manifest.tables[i]`'s data.
    tables: Vec<Vec<u8>>,
    files: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the archive is corrupt or truncated: {0}")]
    Corrupt(String),
    #[error(
        "not a tenant archive this build reads (format {0:?} version {1}; this build reads {FORMAT:?} version {FORMAT_VERSION})"
    )]
    Format(String, u32),
    #[error(
        "the archive was taken at tenant migration version {archive}, newer than this build's {known}: upgrade tenantry first"
    )]
    Newer { archive: i64, known: i64 },
    #[error("the archive's tenant migration {0} differs from this build's (checksum mismatch)")]
    Changed(i64),
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("tenant migrations failed: {0}")]
    Migrate(#[from] TenantMigrateError),
    #[error("the archive's table {table} cannot be restored: {why}")]
    Table { table: String, why: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A message from a damaged archive (which may quote its garbage) as one
/// short line.
fn one_line(message: &str) -> String {
    let mut line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if message.chars().count() > 200 {
        line.push('…');
    }
    line
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A name as a quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A name the application may give a file of its own: a relative path of
/// plain characters, outside the core's names.
fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name != MANIFEST
        && !name.starts_with("tables/")
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
}

impl Archive {
    /// One of the application's files.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// Adds (or replaces) one of the application's files. Names are the
    /// application's constants: an invalid one is a bug.
    pub fn add_file(&mut self, name: &str, data: Vec<u8>) {
        assert!(valid_file_name(name), "invalid archive file name {name:?}");
        self.manifest.files.retain(|f| f.name != name);
        self.manifest.files.push(FileEntry {
            name: name.to_owned(),
            bytes: data.len() as u64,
            sha256: sha256(&data),
        });
        self.files.insert(name.to_owned(), data);
    }

    /// A table's data in `COPY` text format (for tests and tools).
    pub fn table(&self, name: &str) -> Option<&[u8]> {
        let i = self.manifest.tables.iter().position(|t| t.name == name)?;
        Some(&self.tables[i])
    }

    /// Takes a table out of the archive (for tools and tests: an archive
    /// as an older version would have written it).
    pub fn remove_table(&mut self, name: &str) -> bool {
        let Some(i) = self.manifest.tables.iter().position(|t| t.name == name) else {
            return false;
        };
        self.manifest.tables.remove(i);
        self.tables.remove(i);
        true
    }

    /// Replaces a table's data (`COPY` text format), its count, size and
    /// checksum with it (for tools and tests).
    pub fn replace_table(&mut self, name: &str, data: Vec<u8>) -> bool {
        let Some(i) = self.manifest.tables.iter().position(|t| t.name == name) else {
            return false;
        };
        let entry = &mut self.manifest.tables[i];
        entry.rows = data.iter().filter(|b| **b == b'\n').count() as u64;
        entry.bytes = data.len() as u64;
        entry.sha256 = sha256(&data);
        self.tables[i] = data;
        true
    }

    /// The archive as `.tar.gz` bytes: the manifest first.
    pub fn to_tar_gz(&self, mtime: u64) -> std::io::Result<Vec<u8>> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let manifest = serde_json::to_vec_pretty(&self.manifest).map_err(std::io::Error::other)?;
        let mut entries: Vec<(&str, &[u8])> = vec![(MANIFEST, &manifest)];
        for (entry, data) in self.manifest.tables.iter().zip(&self.tables) {
            entries.push((&entry.file, data));
        }
        for f in &self.manifest.files {
            entries.push((&f.name, &self.files[&f.name]));
        }
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(mtime);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, name, data)?;
        }
        tar.into_inner()?.finish()
    }

    /// Reads and checks an archive: every file the manifest lists must be
    /// there with its size and SHA-256 (so a truncated or altered archive
    /// is refused here, before anything is created).
    pub fn from_tar_gz(bytes: &[u8]) -> Result<Archive, ArchiveError> {
        let corrupt = |e: std::io::Error| ArchiveError::Corrupt(one_line(&e.to_string()));
        let mut raw: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        for entry in tar.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()
                .map_err(corrupt)?
                .to_string_lossy()
                .into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(corrupt)?;
            if raw.insert(name.clone(), data).is_some() {
                return Err(ArchiveError::Corrupt(format!(
                    "{} appears twice",
                    one_line(&name)
                )));
            }
        }
        // A gzip stream cut short can still yield whole tar entries:
        // read to its end, so its length and CRC are checked too.
        let mut rest = tar.into_inner();
        std::io::copy(&mut rest, &mut std::io::sink()).map_err(corrupt)?;

        let manifest = raw
            .remove(MANIFEST)
            .ok_or_else(|| ArchiveError::Corrupt(format!("no {MANIFEST}")))?;
        let manifest: Manifest = serde_json::from_slice(&manifest)
            .map_err(|e| ArchiveError::Corrupt(format!("{MANIFEST}: {e}")))?;
        if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
            return Err(ArchiveError::Format(
                manifest.format.clone(),
                manifest.format_version,
            ));
        }
        let mut take = |name: &str, bytes: u64, sum: &str| {
            let data = raw
                .remove(name)
                .ok_or_else(|| ArchiveError::Corrupt(format!("{name} is missing")))?;
            if data.len() as u64 != bytes || sha256(&data) != sum {
                return Err(ArchiveError::Corrupt(format!(
                    "{name} does not match its size or checksum"
                )));
            }
            Ok(data)
        };
        let mut seen = HashSet::new();
        let mut tables = Vec::new();
        for t in &manifest.tables {
            if !seen.insert(t.name.as_str()) || t.format != "text" || t.columns.is_empty() {
                return Err(ArchiveError::Corrupt(format!(
                    "{MANIFEST}: table {:?} is listed twice, empty or not in text format",
                    t.name
                )));
            }
            tables.push(take(&t.file, t.bytes, &t.sha256)?);
        }
        let mut files = BTreeMap::new();
        for f in &manifest.files {
            if !valid_file_name(&f.name) {
                return Err(ArchiveError::Corrupt(format!("bad file name {:?}", f.name)));
            }
            files.insert(f.name.clone(), take(&f.name, f.bytes, &f.sha256)?);
        }
        Ok(Archive {
            manifest,
            tables,
            files,
        })
    }
}

/// The tables of `schema` (ordinary and partitioned, no partitions).
async fn tables_of(
    conn: &mut PgConnection,
    schema: &SchemaName,
) -> Result<Vec<String>, sqlx::Error> {
    db::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          ORDER BY c.relname",
    )
    .bind(schema.as_str())
    .fetch_all(conn)
    .await
}

/// The columns `COPY` reads and writes (not generated ones), in order.
async fn columns_of(
    conn: &mut PgConnection,
    schema: &SchemaName,
    table: &str,
) -> Result<Vec<String>, sqlx::Error> {
    db::query_scalar(
        "SELECT a.attname::text FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
            AND a.attgenerated = ''
          ORDER BY a.attnum",
    )
    .bind(schema.as_str())
    .bind(table)
    .fetch_all(conn)
    .await
}

fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Dumps `schema`: every table but the ledgers, the core's sessions and
/// `skip` (the application's tables not to carry), through `COPY`, with
/// the schema's applied migrations. Run it in a `REPEATABLE READ`
/// transaction, so every table is read at the same moment.
pub async fn export(
    conn: &mut PgConnection,
    schema: &SchemaName,
    slug: &str,
    skip: &[&str],
    app_version: &str,
) -> Result<Archive, sqlx::Error> {
    let exported_at: String = db::query_scalar(
        "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
    )
    .fetch_one(&mut *conn)
    .await?;
    let (core, app) = migrate::applied(conn, schema).await?;
    let as_entries = |set: Vec<(i64, Vec<u8>)>| {
        set.into_iter()
            .map(|(version, checksum)| Applied {
                version,
                checksum: hex(&checksum),
            })
            .collect::<Vec<_>>()
    };
    let mut manifest = Manifest {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        app_version: app_version.to_owned(),
        exported_at,
        slug: slug.to_owned(),
        schema_version: (core.len() + app.len()) as i64,
        migrations: Ledgers {
            core: as_entries(core),
            app: as_entries(app),
        },
        tables: Vec::new(),
        files: Vec::new(),
    };
    let mut tables = Vec::new();
    for table in tables_of(conn, schema).await? {
        if not_carried(&table, skip) {
            continue;
        }
        let columns = columns_of(conn, schema, &table).await?;
        let sql = format!(
            "COPY {}.{} ({}) TO STDOUT",
            schema.quoted(),
            ident(&table),
            column_list(&columns)
        );
        let mut data = Vec::new();
        let mut stream = conn.copy_out_raw(&sql).await?;
        while let Some(chunk) = stream.next().await {
            data.extend_from_slice(&chunk?);
        }
        drop(stream);
        manifest.tables.push(TableEntry {
            file: format!("tables/{table}.copy"),
            name: table,
            format: "text".to_owned(),
            columns,
            // Text format: one line per row (newlines in values are escaped).
            rows: data.iter().filter(|b| **b == b'\n').count() as u64,
            bytes: data.len() as u64,
            sha256: sha256(&data),
        });
        tables.push(data);
    }
    Ok(Archive {
        manifest,
        tables,
        files: BTreeMap::new(),
    })
}

fn not_carried(table: &str, skip: &[&str]) -> bool {
    table == CORE_SESSIONS || migrate::LEDGERS.contains(&table) || skip.contains(&table)
}

/// The migrations of `set` whose versions the archive's ledger `applied`
/// holds, checked against this build's: a version it does not know is an
/// archive from a newer build, a different checksum a changed file.
fn subset(set: &Migrator, applied: &[Applied]) -> Result<Migrator, ArchiveError> {
    let mut migrations = Vec::new();
    for a in applied {
        let Some(m) = set
            .iter()
            .find(|m| m.version == a.version && m.migration_type.is_up_migration())
        else {
            return Err(ArchiveError::Newer {
                archive: a.version,
                known: set.iter().map(|m| m.version).max().unwrap_or(0),
            });
        };
        if hex(&m.checksum) != a.checksum {
            return Err(ArchiveError::Changed(a.version));
        }
        migrations.push(m.clone());
    }
    Ok(Migrator::with_migrations(migrations))
}

/// Checks that this build can restore `archive` with the application's
/// tenant migrations `app`.
pub fn check_versions(archive: &Archive, app: &Migrator) -> Result<(), ArchiveError> {
    restore_migrators(archive, app).map(|_| ())
}

fn restore_migrators(
    archive: &Archive,
    app: &Migrator,
) -> Result<(Migrator, Migrator), ArchiveError> {
    let m = &archive.manifest;
    let newer = || ArchiveError::Newer {
        archive: m.schema_version,
        known: migrate::latest_version(app),
    };
    let core = subset(&CORE_TENANT_MIGRATIONS, &m.migrations.core).map_err(|e| match e {
        ArchiveError::Newer { .. } => newer(),
        e => e,
    })?;
    let app = subset(app, &m.migrations.app).map_err(|e| match e {
        ArchiveError::Newer { .. } => newer(),
        e => e,
    })?;
    Ok((core, app))
}

/// Creates the tenant `new` from `archive` in one open transaction (see the
/// module's notes): the caller adds its own rows through
/// [`Provisioning::conn`] and commits. `skip` names the application's
/// tables that are never carried (refused if an archive holds them).
pub async fn restore(
    pool: &PgPool,
    new: &NewTenant,
    root_domain: &str,
    app: &Migrator,
    archive: &Archive,
    skip: &[&str],
) -> Result<Provisioning, RestoreError> {
    let (core_then, app_then) = restore_migrators(archive, app)?;
    let mut p = provision::begin_empty(pool, new, root_domain).await?;
    let schema = p.schema.clone();
    migrate::apply_sets(p.conn(), &schema, &core_then, &app_then).await?;
    load(p.conn(), &schema, archive, skip).await?;
    migrate::apply_tenant_migrations(p.conn(), &schema, app).await?;
    Ok(p)
}

/// `COPY`s the archive's tables into `schema`, which has the archive's
/// migrations applied and nothing else.
async fn load(
    conn: &mut PgConnection,
    schema: &SchemaName,
    archive: &Archive,
    skip: &[&str],
) -> Result<(), RestoreError> {
    let present: HashSet<String> = tables_of(conn, schema).await?.into_iter().collect();
    for t in &archive.manifest.tables {
        let refuse = |why: &str| RestoreError::Table {
            table: t.name.clone(),
            why: why.to_owned(),
        };
        if not_carried(&t.name, skip) {
            return Err(refuse("it is never carried"));
        }
        if !present.contains(&t.name) {
            return Err(refuse(
                "the schema has no such table at the archive's version",
            ));
        }
    }

    // Referenced tables first; emptied in the reverse order (migrations may
    // have seeded rows, such as counters, that the archive holds too).
    let order = fk_order(conn, schema, archive).await?;
    for &i in order.iter().rev() {
        let sql = format!(
            "DELETE FROM {}.{}",
            schema.quoted(),
            ident(&archive.manifest.tables[i].name)
        );
        conn.execute(AssertSqlSafe(sql)).await?;
    }
    for &i in &order {
        let t = &archive.manifest.tables[i];
        let failed = |e: sqlx::Error| RestoreError::Table {
            table: t.name.clone(),
            why: e
                .as_database_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
        };
        let sql = format!(
            "COPY {}.{} ({}) FROM STDIN",
            schema.quoted(),
            ident(&t.name),
            column_list(&t.columns)
        );
        let mut copy = conn.copy_in_raw(&sql).await.map_err(failed)?;
        let mut sent = Ok(());
        for chunk in archive.tables[i].chunks(64 * 1024) {
            if let Err(e) = copy.send(chunk).await {
                sent = Err(e);
                break;
            }
        }
        let rows = match sent {
            Ok(()) => copy.finish().await.map_err(failed)?,
            Err(e) => {
                let _ = copy.abort("send failed").await;
                return Err(failed(e));
            }
        };
        if rows != t.rows {
            return Err(RestoreError::Table {
                table: t.name.clone(),
                why: format!("{rows} rows read, the manifest says {}", t.rows),
            });
        }
    }
    set_sequences(conn, schema, archive).await?;
    Ok(())
}

/// The archive's tables (indices) with every table after those it refers to.
async fn fk_order(
    conn: &mut PgConnection,
    schema: &SchemaName,
    archive: &Archive,
) -> Result<Vec<usize>, sqlx::Error> {
    let refs: Vec<(String, String)> = db::query_as(
        "SELECT c.relname::text, r.relname::text
           FROM pg_constraint k
           JOIN pg_class c ON c.oid = k.conrelid
           JOIN pg_class r ON r.oid = k.confrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE k.contype = 'f' AND n.nspname = $1 AND c.oid <> r.oid",
    )
    .bind(schema.as_str())
    .fetch_all(conn)
    .await?;
    let names: Vec<&str> = archive
        .manifest
        .tables
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let mut placed: Vec<usize> = Vec::new();
    let mut left: Vec<usize> = (0..names.len()).collect();
    while !left.is_empty() {
        let ready = left.iter().position(|&i| {
            refs.iter()
                .filter(|(from, _)| from == names[i])
                .all(|(_, to)| {
                    // Placed already, or not in the archive (empty: nothing to wait for).
                    !names.contains(&to.as_str()) || placed.iter().any(|&j| names[j] == to.as_str())
                })
        });
        // A cycle: take the next in order and let the database judge.
        placed.push(left.remove(ready.unwrap_or(0)));
    }
    Ok(placed)
}

/// Moves every identity or serial sequence of the archive's tables past
/// the highest value `COPY` wrote (a new row must not collide with one).
async fn set_sequences(
    conn: &mut PgConnection,
    schema: &SchemaName,
    archive: &Archive,
) -> Result<(), sqlx::Error> {
    let sequences: Vec<(String, String, String)> = db::query_as(
        "SELECT c.relname::text, a.attname::text, s.seq
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           CROSS JOIN LATERAL (SELECT pg_get_serial_sequence(
                 format('%I.%I', n.nspname, c.relname), a.attname) AS seq) s
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND s.seq IS NOT NULL",
    )
    .bind(schema.as_str())
    .fetch_all(&mut *conn)
    .await?;
    for (table, column, sequence) in sequences {
        if !archive.manifest.tables.iter().any(|t| t.name == table) {
            continue;
        }
        let sql = format!(
            "SELECT max({})::bigint FROM {}.{}",
            ident(&column),
            schema.quoted(),
            ident(&table),
        );
        let max: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
            .persistent(false)
            .fetch_one(&mut *conn)
            .await?;
        let Some(max) = max else {
            continue;
        };
        // A statement of its own, so that on Citus it runs where the
        // application's inserts take their values: on the coordinator.
        // Out of the sequence's bounds means every value it will give lies
        // beyond the copied ones (on Citus each node's sequence has a range
        // of its own): nothing to move then.
        conn.execute("SAVEPOINT tenantry_setval").await?;
        let moved = db::query("SELECT setval($1::regclass, $2)")
            .bind(&sequence)
            .bind(max)
            .execute(&mut *conn)
            .await;
        match moved {
            Ok(_) => conn.execute("RELEASE SAVEPOINT tenantry_setval").await?,
            Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("22003") => {
                conn.execute("ROLLBACK TO SAVEPOINT tenantry_setval")
                    .await?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Archive {
        let data = b"1\tAda\n2\tBob\\nby\n".to_vec();
        let mut archive = Archive {
            manifest: Manifest {
                format: FORMAT.into(),
                format_version: FORMAT_VERSION,
                app_version: "0.1.0".into(),
                exported_at: "2026-12-02T14:00:00Z".into(),
                slug: "acme".into(),
                schema_version: 2,
                migrations: Ledgers::default(),
                tables: vec![TableEntry {
                    name: "users".into(),
                    file: "tables/users.copy".into(),
                    format: "text".into(),
                    columns: vec!["id".into(), "name".into()],
                    rows: 2,
                    bytes: data.len() as u64,
                    sha256: sha256(&data),
                }],
                files: Vec::new(),
            },
            tables: vec![data],
            files: BTreeMap::new(),
        };
        archive.add_file("tenant.json", b"{}".to_vec());
        archive
    }

    #[test]
    fn an_archive_reads_back_as_written() {
        let bytes = sample().to_tar_gz(0).unwrap();
        let back = Archive::from_tar_gz(&bytes).unwrap();
        assert_eq!(
            back.table("users").unwrap(),
            sample().table("users").unwrap()
        );
        assert_eq!(back.file("tenant.json").unwrap(), b"{}");
        assert_eq!(back.manifest.tables[0].rows, 2);
    }

    #[test]
    fn truncated_or_altered_archives_are_refused() {
        let bytes = sample().to_tar_gz(0).unwrap();
        for cut in [1, 10, bytes.len() / 2, bytes.len() - 1] {
            let e = Archive::from_tar_gz(&bytes[..cut]).unwrap_err();
            assert!(matches!(e, ArchiveError::Corrupt(_)), "cut at {cut}: {e}");
        }
        assert!(matches!(
            Archive::from_tar_gz(b"not an archive at all").unwrap_err(),
            ArchiveError::Corrupt(_)
        ));
        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x55;
        assert!(Archive::from_tar_gz(&flipped).is_err());
    }

    #[test]
    fn file_names_stay_inside_the_archive() {
        assert!(valid_file_name("branding/logo"));
        for bad in [
            "",
            "../x",
            "/etc/passwd",
            "a//b",
            "manifest.json",
            "tables/x",
            "a b",
        ] {
            assert!(!valid_file_name(bad), "{bad}");
        }
    }
}
