//! The command line, run as a user would: the real binary, real database.

use crate::harness::{PASSWORD, TestDb, cli, cli_with_env};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn tenant_create_list_delete() {
    let db = TestDb::new().await;
    let out = cli(
        &db,
        &[
            "tenant",
            "create",
            "acme",
            "--name",
            "Acme Inc",
            "--admin-email",
            "Boss@Acme.test",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("acme.localhost"), "{}", stdout(&out));
    let email: String = db.scalar("SELECT email FROM t_acme.users").await;
    assert_eq!(email, "boss@acme.test");

    db.exec(
        "INSERT INTO tenant_domains (domain, tenant_id) SELECT 'tasks.acme.com', id FROM tenants",
    )
    .await;
    let out = cli(&db, &["tenant", "list"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "acme\tactive\tacme.localhost,tasks.acme.com\n"
    );

    let out = cli(&db, &["tenant", "delete", "acme"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert!(db.schema_exists("t_acme").await);

    let out = cli(&db, &["tenant", "delete", "acme", "--yes"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!db.schema_exists("t_acme").await);
    assert_eq!(stdout(&cli(&db, &["tenant", "list"], "")), "");

    let out = cli(&db, &["tenant", "delete", "acme", "--yes"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
}

/// Runs `tenant create SLUG` with the settings `env`.
fn create_with_env(db: &TestDb, slug: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut env = env.to_vec();
    env.push(("DATABASE_URL", db.url.as_str()));
    let args = [
        "tenant",
        "create",
        slug,
        "--name",
        "Acme Inc",
        "--admin-email",
        "boss@acme.test",
        "--password-stdin",
    ];
    cli_with_env(&env, &args, &format!("{PASSWORD}\n"))
}

/// The link at the end of `tenant create`'s line.
fn printed_link(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", stderr(out));
    let line = stdout(out);
    line.trim()
        .rsplit_once(": ")
        .map(|(_, url)| url.to_owned())
        .unwrap_or_else(|| panic!("no link in {line:?}"))
}

/// `tenant create` prints an address a person can open: the port the server
/// listens on (`TENANTRY_BIND`), or the scheme and port of
/// `TENANTRY_PUBLIC_URL` (behind a proxy).
#[tokio::test]
async fn tenant_create_prints_a_link_with_the_servers_port() {
    let db = TestDb::new().await;
    let out = create_with_env(&db, "acme", &[]);
    assert_eq!(printed_link(&out), "http://acme.localhost:8080/");
    let out = create_with_env(&db, "globex", &[("TENANTRY_BIND", "127.0.0.1:8181")]);
    assert_eq!(printed_link(&out), "http://globex.localhost:8181/");
    let out = create_with_env(&db, "initech", &[("TENANTRY_BIND", "0.0.0.0:80")]);
    assert_eq!(printed_link(&out), "http://initech.localhost/");
}

#[tokio::test]
async fn tenant_create_prints_a_link_on_the_public_url() {
    let db = TestDb::new().await;
    let behind_a_proxy = [
        ("TENANTRY_BIND", "127.0.0.1:8181"),
        ("TENANTRY_BASE_DOMAIN", "example.com"),
        ("TENANTRY_PUBLIC_URL", "https://example.com"),
    ];
    let out = create_with_env(&db, "umbrella", &behind_a_proxy);
    assert_eq!(printed_link(&out), "https://umbrella.example.com/");
    let on_a_port = [
        ("TENANTRY_BASE_DOMAIN", "example.com"),
        ("TENANTRY_PUBLIC_URL", "https://Example.com:8443/"),
    ];
    let out = create_with_env(&db, "hooli", &on_a_port);
    assert_eq!(printed_link(&out), "https://hooli.example.com:8443/");

    // A public URL on another host than the base domain, or not a plain
    // origin, is refused before anything is created.
    for bad in [
        "https://other.test",
        "https://example.com/app",
        "example.com",
    ] {
        let env = [
            ("TENANTRY_BASE_DOMAIN", "example.com"),
            ("TENANTRY_PUBLIC_URL", bad),
        ];
        let out = create_with_env(&db, "vandelay", &env);
        assert!(!out.status.success(), "{bad} was accepted");
        assert!(
            stderr(&out).contains("public URL") || stderr(&out).contains(bad),
            "{bad}: {}",
            stderr(&out)
        );
    }
    assert!(!db.schema_exists("t_vandelay").await);
}

#[tokio::test]
async fn superadmin_create_refuses_duplicates_and_short_passwords() {
    let db = TestDb::new().await;
    let args = [
        "superadmin",
        "create",
        "--email",
        "root@example.com",
        "--password-stdin",
    ];
    let out = cli(&db, &args, &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    let hash: String = db.scalar("SELECT password_hash FROM super_admins").await;
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    let out = cli(
        &db,
        &[
            "superadmin",
            "create",
            "--email",
            "ROOT@example.com",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    let out = cli(
        &db,
        &[
            "superadmin",
            "create",
            "--email",
            "other@example.com",
            "--password-stdin",
        ],
        "short\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("at least 10"), "{}", stderr(&out));
    assert_eq!(db.count("SELECT count(*) FROM super_admins").await, 1);
}

#[tokio::test]
async fn migrate_works_on_an_empty_database_and_is_idempotent() {
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    for _ in 0..2 {
        let out = cli(&db, &["migrate", "--jobs", "2"], "");
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains("0 failed"), "{}", stdout(&out));
    }
    let out = cli(&db, &["migrate", "--all"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("t_acme: up to date"),
        "{}",
        stdout(&out)
    );
}

/// With no DATABASE_URL the commands run the managed cluster themselves:
/// initialise on first use, reuse afterwards, and stop it when done.
#[tokio::test]
async fn commands_run_a_managed_cluster_without_database_url() {
    let dir = std::env::temp_dir().join(format!("tenantry-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data_dir = dir.to_str().unwrap();
    let env = [("TENANTRY_DATA_DIR", data_dir)];

    let create = [
        "superadmin",
        "create",
        "--email",
        "a@b.test",
        "--password-stdin",
    ];
    let password = format!("{PASSWORD}\n");
    let out = cli_with_env(&env, &create, &password);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.join("pgdata/PG_VERSION").exists());

    let out = cli_with_env(&env, &create, &password);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the first run's data is still there"
    );

    let out = cli_with_env(&env, &["tenant", "list"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !dir.join("pgdata/postmaster.pid").exists(),
        "the server is stopped when the command ends"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// On plain PostgreSQL `nodes` prints one line, the server itself, with the
/// tenant count and the database's size.
#[tokio::test]
async fn nodes_on_plain_postgresql_is_the_server_itself() {
    if crate::harness::skip_on_citus("tests the listing of a single PostgreSQL node") {
        return;
    }
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    db.create_tenant("globex").await;
    let out = cli(&db, &["nodes"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 1, "{listing}");
    let fields: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(fields.len(), 3, "{listing}");
    let port = db
        .url
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap();
    assert!(fields[0].ends_with(&format!(":{port}")), "{listing}");
    assert_eq!(fields[1], "2", "{listing}");
    assert!(fields[2].parse::<i64>().unwrap() > 0, "{listing}");
}

/// Moving a tenant needs Citus: on plain PostgreSQL it exits non-zero with
/// one line saying so, and a malformed node is refused before that.
#[tokio::test]
async fn tenant_move_on_plain_postgresql_says_it_is_a_single_node() {
    if crate::harness::skip_on_citus("tests the refusal on a single PostgreSQL node") {
        return;
    }
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    let out = cli(
        &db,
        &["tenant", "move", "acme", "--node", "127.0.0.1:5433"],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "error: this database is a single PostgreSQL node; moving tenants needs Citus"
    );
    assert!(db.schema_exists("t_acme").await);

    let out = cli(&db, &["tenant", "move", "acme", "--node", "nowhere"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("HOST:PORT"), "{}", stderr(&out));
}
