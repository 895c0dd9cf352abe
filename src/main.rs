use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
        .block_on(run())
}

async fn run() -> std::process::ExitCode {
    let cli = tenantry::cli::Cli::parse();
    // The server logs what it does; the other commands print their results
    // and log only problems, unless RUST_LOG asks for more.
    let default_filter = match cli.command {
        None | Some(tenantry::cli::Command::Serve(_)) => "info,sqlx::postgres::notice=warn",
        Some(_) => "warn,sqlx::postgres::notice=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    match tenantry::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, never a backtrace: the chain of causes, joined.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
