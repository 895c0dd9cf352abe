//! The isolation battery: many tenants, a pool far smaller than the number
//! of concurrent clients, and tens of thousands of mixed requests in random
//! interleaving. Every response is checked for other tenants' names, titles
//! and colours; afterwards every schema must hold exactly the rows its own
//! clients created. Shared by the direct run (`it`) and the PgBouncer run
//! (`pgbouncer`, two app instances behind one transaction-mode pooler).
//!
//! What it would catch: a pooled connection (or a PgBouncer server
//! connection) that carries one tenant's `search_path` into another's
//! request; a prepared statement planned for one schema and run in another;
//! a rolled-back error path that leaves the connection pinned to the wrong
//! schema; a session, CSRF token or cached branding served to the wrong host.

// Each binary uses a part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::LOCATION;
use reqwest::{Client, StatusCode};
use tenantry::branding::Color;
use tenantry::onboarding::{FirstAdmin, NewTenant};
use tenantry::tenancy::Slug;

use crate::harness::{PASSWORD, ROOT, TestDb, admin_hash, csrf_from};

/// The size of a run.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub tenants: usize,
    /// Simulated users per tenant (the admin, then members), each a browser
    /// with its own cookie jar, each running its requests in sequence.
    pub users_per_tenant: usize,
    /// Requests in all (at least; sign-ins after a sign-out add a few).
    pub requests: usize,
    /// Users in flight at once.
    pub concurrency: usize,
    pub seed: u64,
}

impl Spec {
    /// The full run: `tenants` tenants of two users each, 64 users at once,
    /// `BATTERY_REQUESTS` requests in all (20,000 unless told).
    pub fn full(tenants: usize, seed: u64) -> Spec {
        Spec {
            tenants,
            users_per_tenant: 2,
            requests: env_or("BATTERY_REQUESTS", 20_000),
            concurrency: 64,
            seed,
        }
    }
}

/// A size from the environment (`BATTERY_REQUESTS=200000` for a longer
/// run), else `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `qx007`: a slug whose marker cannot occur by chance in a page.
pub fn slug(i: usize) -> String {
    format!("qx{i:03}")
}

pub fn tenant_name(i: usize) -> String {
    format!("Tenant {}", slug(i))
}

/// Each tenant's own primary colour, `#a1b` and its index in hex.
pub fn colour(i: usize) -> String {
    format!("#a1b{i:03x}")
}

fn email(tenant: usize, user: usize) -> String {
    if user == 0 {
        format!("admin@{}.test", slug(tenant))
    } else {
        format!("member{user}@{}.test", slug(tenant))
    }
}

/// Provisions the tenants (`qx000`…), each with an admin and
/// `users_per_tenant - 1` members, all with password [`PASSWORD`].
pub async fn provision(db: &TestDb, spec: &Spec) {
    let hash = admin_hash().await;
    futures_util::stream::iter(0..spec.tenants)
        .map(|i| {
            let hash = hash.clone();
            async move {
                let new = NewTenant {
                    slug: Slug::parse(&slug(i)).unwrap(),
                    display_name: tenant_name(i),
                    primary_color: Color::parse(&colour(i)).unwrap(),
                    accent_color: Color::parse("#0ea5e9").unwrap(),
                };
                let admin = FirstAdmin {
                    email: email(i, 0),
                    display_name: format!("Admin {}", slug(i)),
                    password_hash: hash.clone(),
                };
                db.provision(&new, &admin).await;
                for user in 1..spec.users_per_tenant {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO t_{}.users (email, display_name, password_hash, role)
                         VALUES ($1, $2, $3, 'member')",
                        slug(i)
                    )))
                    .bind(email(i, user))
                    .bind(format!("Member {user} {}", slug(i)))
                    .bind(&hash)
                    .execute(&db.pool)
                    .await
                    .unwrap();
                }
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
}

/// A small deterministic generator (splitmix64): no dependency, and a
/// failing run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every place a page names a tenant: `qx` and three digits. All must be
/// the page's own tenant's.
pub fn foreign_markers(body: &str, own: &str) -> Vec<String> {
    let bytes = body.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(pos) = body[at..].find("qx") {
        let start = at + pos;
        let digits = &bytes[start + 2..(start + 5).min(bytes.len())];
        if digits.len() == 3 && digits.iter().all(u8::is_ascii_digit) {
            let marker = &body[start..start + 5];
            if marker != own {
                found.push(marker.to_owned());
            }
        }
        at = start + 2;
    }
    found
}

/// `#a1bXXX` colours that are not `own`.
fn foreign_colours(body: &str, own: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(pos) = body[at..].find("#a1b") {
        let start = at + pos;
        let end = (start + 7).min(body.len());
        let colour = &body.as_bytes()[start..end];
        if colour != own.as_bytes() {
            found.push(String::from_utf8_lossy(colour).into_owned());
        }
        at = start + 4;
    }
    found
}

/// `(id, title)` of every task link on a page.
fn task_links(body: &str) -> Vec<(i64, String)> {
    let marker = "href=\"/tasks/";
    let mut links = Vec::new();
    let mut rest = body;
    while let Some(pos) = rest.find(marker) {
        rest = &rest[pos + marker.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Some(after) = rest[digits.len()..].strip_prefix("\">") else {
            continue;
        };
        let Some(end) = after.find('<') else { continue };
        if let Ok(id) = digits.parse() {
            links.push((id, after[..end].trim().to_owned()));
        }
    }
    links
}

/// One simulated person: a browser signed in to one tenant.
struct Person {
    tenant: usize,
    user: usize,
    slug: String,
    host: String,
    client: Client,
    csrf: String,
    signed_in: bool,
    failed_logins: usize,
    rng: Rng,
    /// Titles of the tasks this person created and still owns, with their
    /// ids once seen on the board.
    tasks: BTreeMap<String, Option<i64>>,
    counter: usize,
    /// Requests this person has sent.
    sent: usize,
}

/// What the whole run saw.
#[derive(Default)]
pub struct Report {
    pub requests: AtomicUsize,
    pub failures: Mutex<Vec<String>>,
    /// Per tenant, the titles its people left behind.
    pub expected: Mutex<BTreeMap<usize, BTreeSet<String>>>,
    pub by_status: Mutex<BTreeMap<u16, usize>>,
}

impl Report {
    fn fail(&self, message: String) {
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < 50 {
            failures.push(message);
        }
    }
}

/// A browser whose every host name resolves to the loopback address: the
/// port in each URL picks the app instance, and cookies (which ignore
/// ports) are shared by every instance, as behind a load balancer.
fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(Loopback))
        .pool_max_idle_per_host(2)
        // Under the server's 10 s wait for a connection's next request:
        // otherwise a request can go out on a connection the server is
        // closing at that moment (the keep-alive race every HTTP client
        // has), and fail without reaching the app.
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap()
}

struct Loopback;

impl reqwest::dns::Resolve for Loopback {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async {
            let addrs: reqwest::dns::Addrs =
                Box::new(std::iter::once(SocketAddr::from(([127, 0, 0, 1], 0))));
            Ok(addrs)
        })
    }
}

/// The answer to one request, as far as the checks need it.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

struct Run<'a> {
    ports: &'a [u16],
    report: &'a Report,
}

impl Run<'_> {
    fn url(&self, person: &mut Person, path: &str) -> String {
        let port = self.ports[person.rng.below(self.ports.len())];
        format!("http://{}:{port}{path}", person.host)
    }

    async fn send(
        &self,
        person: &mut Person,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Option<Answer> {
        self.report.requests.fetch_add(1, Ordering::Relaxed);
        person.sent += 1;
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                self.report
                    .fail(format!("{} {what}: request failed: {e}", person.slug));
                return None;
            }
        };
        let status = response.status();
        *self
            .report
            .by_status
            .lock()
            .unwrap()
            .entry(status.as_u16())
            .or_default() += 1;
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        // The checks every answer gets.
        let foreign = foreign_markers(&body, &person.slug);
        if !foreign.is_empty() {
            self.report.fail(format!(
                "LEAK: {} {what} ({status}) shows {:?}",
                person.slug,
                &foreign[..foreign.len().min(5)]
            ));
        }
        let colours = foreign_colours(&body, &colour(person.tenant));
        if !colours.is_empty() {
            self.report.fail(format!(
                "LEAK: {} {what} ({status}) shows colours {:?}",
                person.slug,
                &colours[..colours.len().min(5)]
            ));
        }
        if status.is_server_error() {
            self.report
                .fail(format!("{} {what}: {status}", person.slug));
        }
        if body.contains("csrf_token") {
            person.csrf = csrf_from(&body);
        }
        let html = body.starts_with("<!DOCTYPE") || body.starts_with("<!doctype");
        if html && !body.contains(&tenant_name(person.tenant)) {
            self.report.fail(format!(
                "{} {what} ({status}): the page is not branded for its tenant",
                person.slug
            ));
        }
        if let Some(location) = &location
            && !location.starts_with('/')
        {
            self.report.fail(format!(
                "{} {what}: redirect off-site to {location}",
                person.slug
            ));
        }
        Some(Answer {
            status,
            location,
            body,
        })
    }

    fn expect(&self, person: &Person, what: &str, answer: &Answer, status: u16) -> bool {
        if answer.status.as_u16() == status {
            true
        } else {
            self.report.fail(format!(
                "{} {what}: expected {status}, got {} (to {:?})",
                person.slug, answer.status, answer.location
            ));
            false
        }
    }

    async fn get(&self, person: &mut Person, path: &str) -> Option<Answer> {
        let url = self.url(person, path);
        let request = person.client.get(url);
        self.send(person, &format!("GET {path}"), request).await
    }

    async fn post(
        &self,
        person: &mut Person,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Option<Answer> {
        let url = self.url(person, path);
        let mut body: Vec<(&str, &str)> = fields.to_vec();
        let csrf = person.csrf.clone();
        body.push(("csrf_token", &csrf));
        let request = person.client.post(url).form(&body);
        self.send(person, &format!("POST {path}"), request).await
    }

    async fn sign_in(&self, person: &mut Person) {
        if person.csrf.is_empty() {
            let _ = self.get(person, "/login").await;
        }
        let email = email(person.tenant, person.user);
        let Some(answer) = self
            .post(
                person,
                "/login",
                &[("email", &email), ("password", PASSWORD)],
            )
            .await
        else {
            return;
        };
        if self.expect(person, "sign-in", &answer, 303) {
            person.signed_in = true;
        }
    }

    /// Reads the board and learns the ids of this person's tasks; checks that
    /// every task this person owns is on it.
    async fn board(&self, person: &mut Person) {
        let Some(answer) = self.get(person, "/").await else {
            return;
        };
        if !self.expect(person, "board", &answer, 200) {
            return;
        }
        let links = task_links(&answer.body);
        for (id, title) in &links {
            if let Some(slot) = person.tasks.get_mut(title) {
                *slot = Some(*id);
            }
        }
        let shown: BTreeSet<&str> = links.iter().map(|(_, t)| t.as_str()).collect();
        for title in person.tasks.keys() {
            if !shown.contains(title.as_str()) {
                self.report.fail(format!(
                    "{}: own task {title:?} missing from the board",
                    person.slug
                ));
            }
        }
    }

    fn new_title(person: &mut Person) -> String {
        person.counter += 1;
        format!("{} u{} n{}", person.slug, person.user, person.counter)
    }

    /// A task of this person's whose id is known.
    fn known_task(person: &mut Person) -> Option<(String, i64)> {
        let known: Vec<(String, i64)> = person
            .tasks
            .iter()
            .filter_map(|(t, id)| id.map(|id| (t.clone(), id)))
            .collect();
        (!known.is_empty()).then(|| known[person.rng.below(known.len())].clone())
    }

    /// One step of a person's session, chosen at random.
    async fn step(&self, person: &mut Person) {
        if !person.signed_in {
            // Signed out: the board sends to the login page, then sign in.
            if let Some(answer) = self.get(person, "/").await {
                self.expect(person, "board signed out", &answer, 303);
            }
            self.sign_in(person).await;
            return;
        }
        let statuses = ["todo", "doing", "done"];
        let roll = person.rng.below(100);
        match roll {
            0..30 => self.board(person).await,
            30..45 => {
                let title = Self::new_title(person);
                let status = statuses[person.rng.below(3)];
                if let Some(answer) = self
                    .post(
                        person,
                        "/tasks",
                        &[
                            ("title", &title),
                            ("description", &format!("about {title}")),
                            ("status", status),
                        ],
                    )
                    .await
                    && self.expect(person, "create", &answer, 303)
                {
                    person.tasks.insert(title, None);
                }
            }
            45..55 => {
                let Some((old, id)) = Self::known_task(person) else {
                    return self.board(person).await;
                };
                let title = format!("{old} e");
                let title = if title.len() > 150 {
                    Self::new_title(person)
                } else {
                    title
                };
                let path = format!("/tasks/{id}");
                let status = statuses[person.rng.below(3)];
                if let Some(answer) = self
                    .post(person, &path, &[("title", &title), ("status", status)])
                    .await
                    && self.expect(person, "edit", &answer, 303)
                {
                    person.tasks.remove(&old);
                    person.tasks.insert(title, Some(id));
                }
            }
            55..59 => {
                let Some((title, id)) = Self::known_task(person) else {
                    return self.board(person).await;
                };
                let path = format!("/tasks/{id}/delete");
                if let Some(answer) = self.post(person, &path, &[]).await
                    && self.expect(person, "delete", &answer, 303)
                {
                    person.tasks.remove(&title);
                }
            }
            59..66 => {
                let Some((title, id)) = Self::known_task(person) else {
                    return self.board(person).await;
                };
                if let Some(answer) = self.get(person, &format!("/tasks/{id}")).await
                    && self.expect(person, "task page", &answer, 200)
                    && !answer.body.contains(&title)
                {
                    self.report.fail(format!(
                        "{}: task {id} page lacks its title {title:?}",
                        person.slug
                    ));
                }
            }
            66..71 => {
                // Any id: ids overlap between schemas, so this is either one
                // of this tenant's tasks (200, checked for markers) or 404.
                let id = 1 + person.rng.below(80);
                if let Some(answer) = self.get(person, &format!("/tasks/{id}")).await
                    && answer.status != 200
                {
                    self.expect(person, "any task", &answer, 404);
                }
            }
            71..74 => {
                let path = [
                    "/tasks/99999999",
                    "/tasks/abc",
                    "/no/such/page",
                    "/tasks/-1",
                ][person.rng.below(4)];
                if let Some(answer) = self.get(person, path).await {
                    self.expect(person, path, &answer, 404);
                }
            }
            74..79 => {
                // Invalid: an empty or too long title, or a bad status.
                let long = "x".repeat(201);
                let (title, status) =
                    [("", "todo"), (long.as_str(), "todo"), ("ok", "nope")][person.rng.below(3)];
                if let Some(answer) = self
                    .post(person, "/tasks", &[("title", title), ("status", status)])
                    .await
                {
                    self.expect(person, "invalid create", &answer, 422);
                }
            }
            79..82 => {
                // Rolls back after queries in the transaction: the task is
                // read, the assignee looked up and refused.
                let Some((_, id)) = Self::known_task(person) else {
                    return self.board(person).await;
                };
                let path = format!("/tasks/{id}");
                if let Some(answer) = self
                    .post(
                        person,
                        &path,
                        &[
                            ("title", "x"),
                            ("status", "todo"),
                            ("assignee_id", "987654321"),
                        ],
                    )
                    .await
                {
                    self.expect(person, "invalid edit", &answer, 422);
                }
            }
            82..85 => {
                let url = self.url(person, "/tasks");
                let request = person
                    .client
                    .post(url)
                    .form(&[("title", "forged"), ("csrf_token", "forged")]);
                if let Some(answer) = self.send(person, "forged POST /tasks", request).await {
                    self.expect(person, "forged", &answer, 403);
                }
            }
            85..88 => {
                if let Some(answer) = self.get(person, "/account").await {
                    self.expect(person, "account", &answer, 200);
                }
            }
            88..91 => {
                if let Some(answer) = self.get(person, "/admin/users").await {
                    let want = if person.user == 0 { 200 } else { 403 };
                    self.expect(person, "users", &answer, want);
                }
            }
            91..94 => {
                if let Some(answer) = self.get(person, "/theme.css").await
                    && self.expect(person, "theme", &answer, 200)
                    && !answer.body.contains(&colour(person.tenant))
                {
                    self.report
                        .fail(format!("{}: theme.css lacks its colour", person.slug));
                }
            }
            94..96 => {
                if let Some(answer) = self.post(person, "/logout", &[]).await
                    && self.expect(person, "logout", &answer, 303)
                {
                    person.signed_in = false;
                }
            }
            _ => {
                // A wrong password (one per person, under the throttle's
                // limits); the session stays signed in.
                if person.failed_logins >= 1 {
                    return self.board(person).await;
                }
                person.failed_logins += 1;
                let email = email(person.tenant, person.user);
                if let Some(answer) = self
                    .post(
                        person,
                        "/login",
                        &[("email", &email), ("password", "wrong-password!")],
                    )
                    .await
                {
                    self.expect(person, "bad login", &answer, 401);
                }
            }
        }
    }
}

/// Runs the battery against app instances on `ports` (each request goes to
/// one at random) and checks every schema afterwards.
pub async fn run(db: &TestDb, ports: &[u16], spec: Spec) -> Report {
    let report = Report::default();
    let people_count = spec.tenants * spec.users_per_tenant;
    let per_person = spec.requests.div_ceil(people_count);
    let started = Instant::now();
    let run = Run {
        ports,
        report: &report,
    };
    let run = &run;
    futures_util::stream::iter(0..people_count)
        .map(|n| async move {
            // Interleave tenants: person n belongs to tenant n % tenants.
            let tenant = n % spec.tenants;
            let user = n / spec.tenants;
            let slug = slug(tenant);
            let mut person = Person {
                tenant,
                user,
                host: format!("{slug}.{ROOT}"),
                slug,
                client: browser(),
                csrf: String::new(),
                signed_in: false,
                failed_logins: 0,
                rng: Rng(spec.seed ^ (n as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)),
                tasks: BTreeMap::new(),
                counter: 0,
                sent: 0,
            };
            while person.sent < per_person {
                run.step(&mut person).await;
            }
            run.report
                .expected
                .lock()
                .unwrap()
                .entry(tenant)
                .or_default()
                .extend(person.tasks.into_keys());
        })
        .buffer_unordered(spec.concurrency)
        .collect::<Vec<()>>()
        .await;
    let elapsed = started.elapsed();
    eprintln!(
        "battery: {} requests in {:.1?} ({:.0}/s), statuses {:?}",
        report.requests.load(Ordering::Relaxed),
        elapsed,
        report.requests.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        report.by_status.lock().unwrap()
    );
    check_schemas(db, &spec, &report).await;
    report
}

/// Every schema holds exactly the rows its own people created: the titles
/// they kept, its own users, sessions of its own users only.
async fn check_schemas(db: &TestDb, spec: &Spec, report: &Report) {
    let expected = report.expected.lock().unwrap().clone();
    for tenant in 0..spec.tenants {
        let schema = format!("t_{}", slug(tenant));
        let titles: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT title FROM {schema}.tasks"
        )))
        .fetch_all(&db.pool)
        .await
        .unwrap();
        let actual: BTreeSet<String> = titles.iter().cloned().collect();
        let want = expected.get(&tenant).cloned().unwrap_or_default();
        if titles.len() != actual.len() || actual != want {
            let extra: Vec<&String> = actual.difference(&want).take(5).collect();
            let missing: Vec<&String> = want.difference(&actual).take(5).collect();
            report.fail(format!(
                "{schema}: {} rows; extra {extra:?}, missing {missing:?}",
                titles.len()
            ));
        }
        let users: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT email FROM {schema}.users"
        )))
        .fetch_all(&db.pool)
        .await
        .unwrap();
        if users.len() != spec.users_per_tenant
            || users
                .iter()
                .any(|e| !e.ends_with(&format!("@{}.test", slug(tenant))))
        {
            report.fail(format!("{schema}: users {users:?}"));
        }
    }
}

/// Panics with the failures, if any.
pub fn assert_clean(report: &Report, spec: &Spec) {
    let failures = report.failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures (seed {}), first ones:\n{}",
        failures.len(),
        spec.seed,
        failures.join("\n")
    );
    let requests = report.requests.load(Ordering::Relaxed);
    assert!(
        requests >= spec.requests,
        "only {requests} requests were sent"
    );
}

/// Waits up to `limit` for `check` to hold.
pub async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}
