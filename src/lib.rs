//! callgrade: a self-hosted call-quality system for sales teams.
//!
//! Calls are uploaded over HTTP ([`http`]), stored durably ([`recordings`], [`store`]) and
//! moved through the pipeline stages ([`pipeline`]) by workers claiming jobs from a queue in
//! the database ([`jobs`]). [`app`] wires it together; `main.rs` only parses the command line.
//! `docs/ARCHITECTURE.md` draws the flow.

pub mod accounts;
pub mod analytics;
pub mod app;
pub mod audio;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod diarize;
pub mod domain;
pub mod eval;
pub mod http;
pub mod jobs;
pub mod llm;
pub mod models;
pub mod pipeline;
pub mod playback;
pub mod recordings;
pub mod redact;
pub mod rubric;
pub mod scoring;
pub mod search;
pub mod store;
pub mod telemetry;
pub mod transcribe;
pub mod transcript;
pub mod web;
