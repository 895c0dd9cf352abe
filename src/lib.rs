//! Tenantry: a multitenant web application with one PostgreSQL schema per
//! tenant. See `ARCHITECTURE.md` in the shared docs for the design.

pub mod allocator;
pub mod app;
pub mod branding;
pub mod cli;
pub mod config;
pub mod control_panel;
pub mod database;
pub mod devdb;
pub mod http_server;
pub mod jobs;
pub mod metrics;
pub mod onboarding;
pub mod password;
pub mod portability;
pub mod server;
pub mod state;
pub mod tenancy;
pub mod usage;
pub mod web;
pub mod workspace;
