//! Sales analytics: CRM data in ([`import`]), KPIs over it ([`kpis`]), quality reports
//! ([`reports`]) and insights linking call quality to outcomes ([`insights`]).
//!
//! The CRM export follows the data contract in `docs/crm-data.md`: one CSV file per
//! entity, upserted by key. KPIs are computed from the stored rows for a period `[from, to)` in
//! UTC, for everyone, one manager or one team.

pub mod cli;
pub mod deals;
pub mod entity;
pub mod import;
pub mod insights;
pub mod kpis;
pub mod logistic;
pub mod reports;
pub mod stats;
pub mod trends;

use serde::{Deserialize, Serialize};

/// The `[analytics]` settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// The funnel's stages in order; the last is the won stage.
    pub funnel_stages: Vec<String>,
    /// A lead answered later than this (in minutes) breaches the response SLA.
    pub response_sla_minutes: u64,
    /// Insights draw nothing from fewer items (deals, calls, leads) than this.
    pub min_sample: u64,
    /// Attention: average call score this many points below the team's.
    pub attention_score_gap: f64,
    /// Attention: win rate or plan attainment this much below the team's, or SLA breach rate
    /// this much above it (a fraction: 0.15 = 15 percentage points).
    pub attention_rate_gap: f64,
    /// Open deals: the win-probability model needs at least this many closed deals.
    pub min_training_deals: u64,
    /// Open deals: suggest a touch after this many days without activity.
    pub stale_days: u64,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            funnel_stages: [
                "new",
                "qualified",
                "meeting",
                "proposal",
                "negotiation",
                "won",
            ]
            .map(String::from)
            .to_vec(),
            response_sla_minutes: 10,
            min_sample: 10,
            attention_score_gap: 10.0,
            attention_rate_gap: 0.15,
            min_training_deals: 30,
            stale_days: 7,
        }
    }
}
