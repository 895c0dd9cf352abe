//! Integration tests: real PostgreSQL, real HTTP. One test binary, so the
//! test cluster starts once and the suite links once.

mod harness;

mod abuse;
mod affinity;
mod bad_moments;
mod battery;

mod cli;
mod concurrency;
mod connections;
mod control_panel;
mod export;
mod faults;
mod hostile;
mod impersonation;
mod isolation;
mod metrics;
mod migrations;
mod properties;
mod provisioning;
mod registry;
mod rollout_restart;
mod routing;
mod spares;
mod usage;
mod workspace;
