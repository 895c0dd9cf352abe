//! One argon2id password hash, timed in process: the yardstick of
//! `bench/panel.sh` ("a tenant created through the control panel within
//! 15 ms of one password hash").
//!
//!     cargo run --release --example hash_bench -- [RUNS]

use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20);
    let mut samples: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        tenantry::password::hash("bench-password".into()).await?;
        samples.push(t.elapsed());
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "one password hash, in process: mean {:.2} ms, p50 {:.2} ms, min {:.2} ms, max {:.2} ms",
        ms(mean),
        ms(samples[(samples.len() - 1) / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
    );
    Ok(())
}
