//! A tenant's data out and in: `tenantry tenant export` / `import`, the
//! panel's download and the workspace admin's own download.

use std::io::Write;

use reqwest::StatusCode;
use tenantry::tenancy::export::{Applied, Archive};

use crate::harness::{ACME, ROOT, TestApp, TestDb, admin_hash, header, spawn_cli};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the binary on `db` with `stdin` as bytes.
fn run(db: &TestDb, args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = spawn_cli(&[("DATABASE_URL", db.url.as_str())], args);
    let mut input = child.stdin.take().unwrap();
    // A refusal may come before the whole archive is read.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

fn export(db: &TestDb, slug: &str) -> Vec<u8> {
    let out = run(db, &["tenant", "export", slug], b"");
    assert!(out.status.success(), "export: {}", stderr(&out));
    out.stdout
}

fn import(db: &TestDb, slug: &str, archive: &[u8]) -> std::process::Output {
    run(db, &["tenant", "import", slug], archive)
}

/// Acme with a member, tasks (with awkward text), a logo, a dark theme, a
/// custom domain, an operator visit and a live session; Globex beside it.
async fn seeded() -> TestDb {
    let db = TestDb::two_tenants().await;
    let hash = admin_hash().await;
    let seed = format!(
        "INSERT INTO t_acme.users (email, display_name, password_hash, role)
         VALUES ('jane@acme.test', 'Jane Doe', '{hash}', 'member'),
                ('old@acme.test', 'Old Timer', '{hash}', 'member');
         UPDATE t_acme.users SET active = false WHERE email = 'old@acme.test';
         INSERT INTO t_acme.tasks (title, description, status, assignee_id, due_date, created_by)
         SELECT 'Task ' || i, E'line one\\nline\\ttwo \\\\ back ünï ' || i,
                (ARRAY['todo', 'doing', 'done'])[1 + i % 3],
                CASE WHEN i % 2 = 0 THEN (SELECT id FROM t_acme.users WHERE email = 'jane@acme.test') END,
                CASE WHEN i % 4 = 0 THEN date '2027-01-01' + i END,
                (SELECT id FROM t_acme.users WHERE role = 'admin')
           FROM generate_series(1, 25) AS i;
         UPDATE t_acme.task_counts c SET n = (SELECT count(*) FROM t_acme.tasks t WHERE t.status = c.status);
         INSERT INTO t_acme.operator_access (super_admin, user_id, user_name, user_email, expires_at,
                                             ended_at, end_reason)
         SELECT 'root@example.com', id, display_name, email, now(), now(), 'ended'
           FROM t_acme.users WHERE email = 'jane@acme.test';
         INSERT INTO t_acme.tenantry_sessions (id, data, expiry_date, owner_id)
         VALUES ('a-session', '{{}}', now() + interval '1 day', NULL);
         INSERT INTO t_globex.tasks (title) VALUES ('Globex secret plan');
         UPDATE tenants SET theme = 'dark', primary_color = '#112233',
                logo = '\\x89504e470d0a1a0a0000000d4948445207070707'::bytea,
                logo_content_type = 'image/png', logo_sha256 = 'x'
          WHERE slug = 'acme';
         INSERT INTO tenant_domains (domain, tenant_id)
         SELECT 'tasks.acme.com', id FROM tenants WHERE slug = 'acme';"
    );
    // One statement per message, as a Citus coordinator needs.
    for statement in seed.split(";\n") {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
            .execute(&db.pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    db
}

/// The tables of a schema that carry data (not its ledgers).
async fn data_tables(db: &TestDb, schema: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname NOT LIKE '\\_%'
          ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

/// Every row of `schema.table`, as text, in order.
async fn rows(db: &TestDb, schema: &str, table: &str) -> Vec<String> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT t::text FROM {schema}.{table} t ORDER BY 1"
    )))
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

async fn nothing_of(db: &TestDb, slug: &str) {
    let schema = format!("t_{}", slug.replace('-', "_"));
    assert!(!db.schema_exists(&schema).await, "{schema} left behind");
    db.assert_count(
        &format!("SELECT count(*) FROM tenants WHERE slug = '{slug}'"),
        0,
    )
    .await;
    db.assert_count(
        &format!("SELECT count(*) FROM tenant_domains WHERE domain LIKE '{slug}.%'"),
        0,
    )
    .await;
}

#[tokio::test]
async fn a_round_trip_gives_identical_rows_without_sessions() {
    let db = seeded().await;
    let archive = export(&db, "acme");
    let parsed = Archive::from_tar_gz(&archive).unwrap();
    assert_eq!(parsed.manifest.slug, "acme");
    assert!(
        parsed
            .manifest
            .tables
            .iter()
            .all(|t| t.name != "tenantry_sessions")
    );
    let users = parsed
        .manifest
        .tables
        .iter()
        .find(|t| t.name == "users")
        .unwrap();
    assert_eq!(users.rows, 3);

    let out = import(&db, "acme-copy", &archive);
    assert!(out.status.success(), "import: {}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("left out domain tasks.acme.com: another tenant has it"),
        "{said}"
    );

    // Row by row, every table but the sessions.
    let tables = data_tables(&db, "t_acme").await;
    assert_eq!(tables, data_tables(&db, "t_acme_copy").await);
    for table in &tables {
        let copy = rows(&db, "t_acme_copy", table).await;
        if table == "tenantry_sessions" {
            assert!(copy.is_empty(), "sessions were carried");
            continue;
        }
        let original = rows(&db, "t_acme", table).await;
        assert!(!original.is_empty(), "{table} was not seeded");
        assert_eq!(original, copy, "{table}");
    }

    // The catalogue row: branding and logo, a default domain of its own.
    let (name, primary, theme, logo, status, version): (
        String,
        String,
        String,
        Vec<u8>,
        String,
        i64,
    ) = db
        .row(
            "SELECT display_name, primary_color, theme, logo, status, schema_version
                FROM tenants WHERE slug = 'acme-copy'",
        )
        .await;
    assert_eq!(
        (
            name.as_str(),
            primary.as_str(),
            theme.as_str(),
            status.as_str()
        ),
        ("Acme Inc", "#112233", "dark", "active")
    );
    let old_logo: Vec<u8> = db
        .scalar("SELECT logo FROM tenants WHERE slug = 'acme'")
        .await;
    assert_eq!(logo, old_logo);
    let latest: i64 = db
        .scalar("SELECT schema_version FROM tenants WHERE slug = 'acme'")
        .await;
    assert_eq!(version, latest);
    db.assert_count(
        "SELECT count(*) FROM tenant_domains d JOIN tenants t ON t.id = d.tenant_id
          WHERE t.slug = 'acme-copy' AND d.domain = 'acme-copy.localhost' AND d.is_default",
        1,
    )
    .await;
    db.assert_count(
        "SELECT user_count::bigint FROM tenants WHERE slug = 'acme-copy'",
        2,
    )
    .await;

    // New rows get new ids after the copied ones.
    db.exec("INSERT INTO t_acme_copy.tasks (title) VALUES ('After the import')")
        .await;
    db.exec(
        "INSERT INTO t_acme_copy.users (email, display_name, password_hash, role)
         VALUES ('new@acme.test', 'New', 'x', 'member')",
    )
    .await;

    // The copy's users sign in with their passwords; the old session is not there.
    let app = TestApp::start(db).await;
    app.wait_for_host("acme-copy.localhost").await;
    let jane = app.signed_in("acme-copy.localhost", "jane@acme.test").await;
    let board = app.get_text(&jane, "acme-copy.localhost", "/").await;
    assert!(
        board.contains("Task 24"),
        "the board shows the copied tasks"
    );
    assert!(!board.contains("Globex secret plan"));
}

#[tokio::test]
async fn an_older_archive_is_migrated_forward() {
    let db = seeded().await;
    let mut archive = Archive::from_tar_gz(&export(&db, "acme")).unwrap();
    // As an archive from before the board counts (app migration 3) and the
    // operator log (4) would be.
    assert!(archive.remove_table("task_counts"));
    assert!(archive.remove_table("operator_access"));
    archive.manifest.migrations.app.retain(|m| m.version <= 2);
    archive.manifest.schema_version -= 2;
    let old = archive.to_tar_gz(0).unwrap();

    let out = import(&db, "acme-old", &old);
    assert!(out.status.success(), "import: {}", stderr(&out));
    for table in ["users", "tasks"] {
        assert_eq!(
            rows(&db, "t_acme", table).await,
            rows(&db, "t_acme_old", table).await,
            "{table}"
        );
    }
    // Migration 3 ran over the imported tasks: its counts are theirs.
    assert_eq!(
        rows(&db, "t_acme", "task_counts").await,
        rows(&db, "t_acme_old", "task_counts").await
    );
    db.assert_count("SELECT count(*) FROM t_acme_old.operator_access", 0)
        .await;
    let (old, new): (i64, i64) = db
        .row(
            "SELECT (SELECT schema_version FROM tenants WHERE slug = 'acme-old'),
                     (SELECT schema_version FROM tenants WHERE slug = 'acme')",
        )
        .await;
    assert_eq!(old, new);
    db.assert_count(
        "SELECT count(*) FROM t_acme_old._sqlx_migrations WHERE version IN (3, 4)",
        2,
    )
    .await;
}

#[tokio::test]
async fn bad_archives_are_refused_and_leave_nothing() {
    let db = seeded().await;
    let good = export(&db, "acme");

    let truncated = good[..good.len() * 2 / 3].to_vec();
    let mut corrupt = good.clone();
    let middle = corrupt.len() / 2;
    for b in &mut corrupt[middle..middle + 16] {
        *b ^= 0xa5;
    }
    let mut newer = Archive::from_tar_gz(&good).unwrap();
    newer.manifest.migrations.app.push(Applied {
        version: 9999,
        checksum: "00".into(),
    });
    newer.manifest.schema_version += 1;
    let newer = newer.to_tar_gz(0).unwrap();
    // Passes every check of the archive, then fails inside the restore,
    // after the schema was made: the transaction takes it all back.
    let mut bad_row = Archive::from_tar_gz(&good).unwrap();
    bad_row.replace_table("tasks", b"not\ta task\n".to_vec());
    let bad_row = bad_row.to_tar_gz(0).unwrap();

    let cases: [(&str, &[u8], &str); 6] = [
        ("truncated", &truncated, "corrupt or truncated"),
        ("corrupt", &corrupt, "corrupt or truncated"),
        (
            "not-gzip",
            b"hello, I am not an archive",
            "corrupt or truncated",
        ),
        ("newer", &newer, "newer than this build"),
        ("bad-row", &bad_row, "table tasks"),
        ("empty", b"", "corrupt or truncated"),
    ];
    for (slug, bytes, says) in cases {
        let out = import(&db, slug, bytes);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{slug}: {err}");
        assert!(err.contains(says), "{slug}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{slug}: {err}");
        assert!(!err.contains("panicked"), "{slug}: {err}");
        nothing_of(&db, slug).await;
    }

    // A slug taken, or no slug at all: refused, the other tenant untouched.
    let globex_tasks = rows(&db, "t_globex", "tasks").await;
    let out = import(&db, "globex", &good);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(rows(&db, "t_globex", "tasks").await, globex_tasks);
    db.assert_count("SELECT count(*) FROM tenants", 2).await;
    let out = import(&db, "Bad Slug", &good);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid slug"), "{}", stderr(&out));
    db.assert_count("SELECT count(*) FROM tenants", 2).await;

    let out = run(&db, &["tenant", "export", "nobody"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no tenant"), "{}", stderr(&out));
}

fn assert_download(response: &reqwest::Response, slug: &str) {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(response, "content-type"), "application/gzip");
    let disposition = header(response, "content-disposition");
    assert!(
        disposition.starts_with(&format!("attachment; filename=\"{slug}-20"))
            && disposition.ends_with(".tar.gz\""),
        "{disposition}"
    );
}

#[tokio::test]
async fn the_panel_offers_the_export_to_super_admins_and_audits_it() {
    let db = seeded().await;
    db.create_super_admin("root@example.com").await;
    let app = TestApp::start(db).await;

    // Not signed in: to the login page; no download.
    let anonymous = app.client();
    let refused = app
        .post(
            &anonymous,
            ROOT,
            "/tenants/acme/export",
            &[("csrf_token", "x")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);

    let panel = app.super_admin("root@example.com").await;
    let page = app.get_text(&panel, ROOT, "/tenants/acme").await;
    assert!(page.contains("action=\"/tenants/acme/export\""));
    // Without the CSRF token: 403.
    let forged = app.post(&panel, ROOT, "/tenants/acme/export", &[]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let download = app
        .post_form(&panel, ROOT, "/tenants/acme", "/tenants/acme/export", &[])
        .await;
    assert_download(&download, "acme");
    let archive = Archive::from_tar_gz(&download.bytes().await.unwrap()).unwrap();
    assert_eq!(archive.manifest.slug, "acme");
    app.db
        .assert_count(
            "SELECT count(*) FROM audit_log WHERE action = 'tenant_export'
                AND actor = 'root@example.com' AND tenant_slug = 'acme'",
            1,
        )
        .await;
    // The tenant's admins see the operator's download on their audit page.
    let admin = app.signed_in(ACME, "admin@acme.test").await;
    let audit = app.get_text(&admin, ACME, "/audit").await;
    assert!(
        audit.contains("data-export=\"operator\"") && audit.contains("root@example.com"),
        "{audit}"
    );
    // An operator viewing the workspace as its admin cannot take the
    // admin's download: the panel's is theirs.
    let admin_id: i64 = app
        .db
        .scalar("SELECT id FROM t_acme.users WHERE email = 'admin@acme.test'")
        .await;
    let minted = app
        .post_form(
            &panel,
            ROOT,
            "/tenants/acme",
            "/tenants/acme/impersonate",
            &[("user_id", &admin_id.to_string())],
        )
        .await;
    assert_eq!(minted.status(), StatusCode::SEE_OTHER);
    let link = header(&minted, "location");
    let path = &link[link.find("/impersonate").unwrap()..];
    let viewing = app.client();
    let redeemed = app.get(&viewing, ACME, path).await;
    assert_eq!(redeemed.status(), StatusCode::SEE_OTHER);
    let refused = app
        .post_form(&viewing, ACME, "/admin/users", "/export", &[])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    app.db
        .assert_count(
            "SELECT count(*) FROM audit_log WHERE action = 'workspace_export'",
            0,
        )
        .await;

    let unknown = app
        .post_form(&panel, ROOT, "/tenants/acme", "/tenants/nobody/export", &[])
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_tenant_admin_downloads_their_own_workspace_only() {
    let db = seeded().await;
    let app = TestApp::start(db).await;

    let member = app.signed_in(ACME, "jane@acme.test").await;
    let refused = app.post_form(&member, ACME, "/", "/export", &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let admin = app.signed_in(ACME, "admin@acme.test").await;
    let users = app.get_text(&admin, ACME, "/admin/users").await;
    assert!(users.contains("action=\"/export\""));
    let download = app
        .post_form(&admin, ACME, "/admin/users", "/export", &[])
        .await;
    assert_download(&download, "acme");
    let archive = Archive::from_tar_gz(&download.bytes().await.unwrap()).unwrap();
    assert_eq!(archive.manifest.slug, "acme");
    let tasks = String::from_utf8_lossy(archive.table("tasks").unwrap()).into_owned();
    assert!(tasks.contains("Task 25"));
    let users = String::from_utf8_lossy(archive.table("users").unwrap()).into_owned();
    assert!(users.contains("jane@acme.test"));
    for (name, data) in [("tasks", &tasks), ("users", &users)] {
        assert!(!data.contains("globex"), "{name} holds Globex's rows");
        assert!(!data.contains("Globex"), "{name} holds Globex's rows");
    }
    // The tenant's admins see the download on their audit page.
    let audit = app.get_text(&admin, ACME, "/audit").await;
    assert!(
        audit.contains("data-export=\"admin\"") && audit.contains("admin@acme.test"),
        "{audit}"
    );
    let tenant = String::from_utf8_lossy(archive.file("tenant.json").unwrap()).into_owned();
    assert!(tenant.contains("\"slug\": \"acme\"") && !tenant.contains("globex"));

    app.db
        .assert_count(
            "SELECT count(*) FROM audit_log WHERE action = 'workspace_export'
                AND actor = 'admin@acme.test' AND tenant_slug = 'acme'",
            1,
        )
        .await;
}
