//! Prints the board's one statement (`GET /` sends it after `BEGIN` and
//! the schema pin), for `bench/board.sh` to run the page's own SQL under
//! pgbench: the same text, its parameters as pgbench variables.
//!
//!     cargo run --release --example board_sql

fn main() {
    let sql = tenantry::workspace::BOARD_SQL.replace("$1", ":sid");
    println!("{sql};");
}
