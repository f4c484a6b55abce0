//! One integration-test binary: a real server over a real socket, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

mod analytics_deals;
mod analytics_import;
mod analytics_insights;
mod analytics_kpis;
mod analytics_reports;
mod bad_inputs;
mod browser;
mod busy;
mod cli;
mod dashboards;
mod eval;
mod fake_llm;
mod helpers;
mod llm_e2e;
mod metrics_truth;
mod migrations;
mod openapi;
mod process;
mod queue;
mod redaction;
mod roles;
mod scoring;
mod search;
mod slow_clients;
mod speakers;
mod test_jobs;
mod transcribe;
mod uploads;
mod vad;
mod web;
mod web_pages;
