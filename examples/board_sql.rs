//! Prints the board's one statement, for `bench/board.sh` to run the page's
//! own SQL under pgbench, its parameter as a pgbench variable (`:sid`, or
//! the variable named by the second argument). Given a tenant's schema, the
//! text `GET /` sends for that tenant, on its own; without one, the tables
//! named without a schema, for a transaction that pins it first.
//!
//!     cargo run --release --example board_sql [SCHEMA [VARIABLE]]

use tenantry::tenancy::SchemaName;
use tenantry::tenancy::db::{SCHEMA_MARK, in_schema};

fn main() {
    let mut args = std::env::args().skip(1);
    let schema = args.next();
    let variable = args.next().unwrap_or_else(|| "sid".to_owned());
    let sql = tenantry::workspace::BOARD_SQL.replace("$1", &format!(":{variable}"));
    let sql = match schema {
        Some(name) => {
            let schema = SchemaName::from_stored(&name).expect("a tenant's schema name");
            in_schema(&schema, &sql)
        }
        None => sql.replace(&format!("{SCHEMA_MARK}."), ""),
    };
    println!("{sql};");
}
