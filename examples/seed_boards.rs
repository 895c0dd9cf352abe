//! Gives seeded tenants (`seed_tenants`) a board and a signed-in session,
//! in bulk and straight in the database, for the board benchmarks: for each
//! of the first COUNT tenants, TASKS tasks (a third each to do, doing and
//! done) and one session of its admin. Prints one line per tenant,
//! `<host> <session cookie value>`, for wrk's script.
//!
//!     DATABASE_URL=… cargo run --release --example seed_boards -- COUNT [TASKS] [JOBS]

use futures_util::StreamExt;
use sqlx::{AssertSqlSafe, Executor};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10);
    let tasks: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let jobs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2);
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let pool = tenantry::database::pool(&url, jobs as u32)?;
    let started = std::time::Instant::now();
    let lines: Vec<anyhow::Result<String>> = futures_util::stream::iter(0..count)
        .map(|i| {
            let pool = pool.clone();
            async move {
                let slug = format!("seed-{i:05}");
                let schema = format!("\"t_{}\"", slug.replace('-', "_"));
                let id = tower_sessions::session::Id::default().to_string();
                // The admin's id first: Citus refuses subqueries in an
                // INSERT's values and mangles an INSERT … SELECT of an aggregate.
                let admin: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT min(id) FROM {schema}.users"
                )))
                .fetch_one(&pool)
                .await?;
                // One multi-statement string per tenant: the seeding is
                // bulk work, not what is measured.
                let sql = format!(
                    "BEGIN;
                     SET LOCAL search_path TO {schema};
                     INSERT INTO tasks (title, description, status, assignee_id, created_by, due_date)
                     SELECT 'Task ' || n || ' of {slug}', 'Something to do, and a little more about it',
                            (ARRAY['todo','doing','done'])[n % 3 + 1],
                            {admin}, {admin},
                            CASE WHEN n % 4 = 0 THEN current_date + n END
                       FROM generate_series(1, {tasks}) n;
                     UPDATE task_counts c
                        SET n = (SELECT count(*) FROM tasks t WHERE t.status = c.status);
                     INSERT INTO tenantry_sessions (id, data, expiry_date, owner_id)
                     VALUES ('{id}', jsonb_build_object('user_id', {admin}), now() + interval '13 days', {admin});
                     COMMIT;"
                );
                pool.execute(AssertSqlSafe(sql)).await?;
                Ok(format!("{slug}.localhost {id}"))
            }
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    for line in lines {
        println!("{}", line?);
    }
    eprintln!(
        "gave {count} tenants {tasks} tasks and a session in {:.1?}",
        started.elapsed()
    );
    Ok(())
}
