//! Open deals ranked by win probability, with the next best steps for each.
//!
//! The probability comes from a logistic regression trained on this deployment's closed deals
//! ([`super::logistic`]); its calibration is measured on the most recently closed fifth of them,
//! held out from training (Brier score, beside the score of always answering the base rate).
//! With too few closed deals there is no model and no number, and the answer says why.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::entity::DealStatus;
use super::logistic::{brier, Logistic};
use super::reports::NextStep;
use super::AnalyticsConfig;
use crate::domain::{now_millis, to_datetime, CallId};
use crate::store::{DealFeatures, DealSet, DealStamp, KpiScope, LastCall, Store, StoreError};

const DAY_MS: f64 = 86_400_000.0;
/// Each outcome must occur at least this often among closed deals to train on them.
const MIN_PER_OUTCOME: usize = 5;
/// Names of the model's features, in order.
const FEATURES: [&str; 7] = [
    "stage_reached",
    "days_since_last_activity",
    "log_activities",
    "log_response_minutes",
    "no_response_known",
    "call_quality",
    "no_scored_calls",
];

/// Why a next step is suggested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepReason {
    /// Nobody touched the deal for a while.
    NoRecentTouch,
    /// Its lead was answered later than the SLA, or not at all.
    MissedSla,
    /// The last call ended without an agreed next step.
    NoAgreedNextStep,
}

/// A rule-based next step.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct NextBestStep {
    /// Which rule.
    pub reason: StepReason,
    /// What to do, for the manager.
    pub text: String,
}

/// An open deal with its chances and next steps.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct OpenDeal {
    /// The deal.
    pub deal_id: String,
    /// Its manager.
    pub manager_id: String,
    /// Created at.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Highest funnel stage reached (by its stage rows).
    pub stage: Option<String>,
    /// Activities logged on it.
    pub activities: i64,
    /// Days since its last activity (or creation).
    pub days_since_last_touch: f64,
    /// Mean overall score of its scored calls.
    pub call_quality: Option<f64>,
    /// Model's win probability; null without a model.
    pub win_probability: Option<f64>,
    /// Rule-based next steps.
    pub next_steps: Vec<NextBestStep>,
    /// The latest scored call, if any.
    pub last_call_id: Option<CallId>,
    /// Next steps the latest call's scorecard suggested.
    pub last_call_next_steps: Vec<NextStep>,
}

/// The model behind the probabilities.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ModelInfo {
    /// Closed deals the final model was trained on.
    pub trained_on: i64,
    /// Most recently closed deals held out to measure calibration.
    pub held_out: i64,
    /// Brier score on the held-out deals (0 best; lower than `brier_base_rate` = useful).
    pub brier_held_out: Option<f64>,
    /// Brier score of always answering the training win rate, on the same deals.
    pub brier_base_rate: Option<f64>,
    /// Features, in order.
    pub features: Vec<String>,
}

/// `GET /api/v1/deals/open`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct OpenDeals {
    /// The model, or null when there is too little history.
    pub model: Option<ModelInfo>,
    /// Why there is no model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Open deals in scope, most likely to win first (without a model: longest untouched first).
    pub deals: Vec<OpenDeal>,
}

fn features(d: &DealFeatures, at: i64) -> Vec<f64> {
    let last = d.last_activity_at.unwrap_or(d.created_at);
    let response = match (d.lead_created_at, d.lead_first_response_at) {
        (Some(c), Some(r)) => Some(((r - c) as f64 / 60_000.0).max(0.0)),
        _ => None,
    };
    vec![
        d.stage.unwrap_or(-1) as f64,
        ((at - last) as f64 / DAY_MS).max(0.0),
        (d.activities as f64).ln_1p(),
        response.map_or(0.0, f64::ln_1p),
        f64::from(u8::from(response.is_none())),
        d.quality.map_or(0.0, |q| q / 100.0),
        f64::from(u8::from(d.quality.is_none())),
    ]
}

/// Trains on closed deals; `Err(note)` when there are too few.
fn train(
    config: &AnalyticsConfig,
    closed: &[&DealFeatures],
) -> Result<(Logistic, ModelInfo), String> {
    let won = closed
        .iter()
        .filter(|d| d.status == DealStatus::Won)
        .count();
    let lost = closed.len() - won;
    if (closed.len() as u64) < config.min_training_deals
        || won < MIN_PER_OUTCOME
        || lost < MIN_PER_OUTCOME
    {
        return Err(format!(
            "too few closed deals to estimate win probabilities: {} won and {} lost; the model \
             needs at least {} closed deals with {MIN_PER_OUTCOME} of each outcome",
            won, lost, config.min_training_deals
        ));
    }
    let mut by_close: Vec<&&DealFeatures> = closed.iter().collect();
    by_close.sort_by_key(|d| (d.closed_at.unwrap_or(d.created_at), d.deal_id.clone()));
    let rows = |ds: &[&&DealFeatures]| -> (Vec<Vec<f64>>, Vec<bool>) {
        ds.iter()
            .map(|d| {
                (
                    features(d, d.closed_at.unwrap_or(d.created_at)),
                    d.status == DealStatus::Won,
                )
            })
            .unzip()
    };
    let held = (by_close.len() / 5).max(1);
    let (train_x, train_y) = rows(&by_close[..by_close.len() - held]);
    let (test_x, test_y) = rows(&by_close[by_close.len() - held..]);
    let (all_x, all_y) = rows(&by_close);
    let no_fit = || "the model could not be fitted on these deals".to_string();
    let held_model = Logistic::fit(&train_x, &train_y).ok_or_else(no_fit)?;
    let base = train_y.iter().filter(|w| **w).count() as f64 / train_y.len().max(1) as f64;
    let brier_base = test_y
        .iter()
        .map(|&w| (base - f64::from(u8::from(w))).powi(2))
        .sum::<f64>()
        / test_y.len().max(1) as f64;
    let model = Logistic::fit(&all_x, &all_y).ok_or_else(no_fit)?;
    Ok((
        model,
        ModelInfo {
            trained_on: all_x.len() as i64,
            held_out: test_x.len() as i64,
            brier_held_out: brier(&held_model, &test_x, &test_y),
            brier_base_rate: Some(brier_base),
            features: FEATURES.map(String::from).to_vec(),
        },
    ))
}

/// The model refits at least this often even when no CRM file came in (the call quality of the
/// closed deals it learnt from moves as scores are corrected).
const REFIT_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
/// The open deals' features are read again at least this often, whatever the stamp says (a
/// safety net: every score written or corrected and every call deleted moves the stamp).
const REREAD_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// The fitted model and the open deals' features, kept between requests (decision 0018).
///
/// Fitting reads every closed deal and the ranking every open one: seconds on a large
/// deployment, on every request to `/api/v1/deals/open`, which both dashboards call. Both
/// change only when a CRM file is imported or a score is written, so they are kept and read
/// again only when [`Store::deal_stamp`] moves: the model when a CRM file came in (or hourly),
/// the open deals' features when either moved (or every ten minutes). One request reads at a
/// time; the others wait for its result instead of reading the same rows beside it.
#[derive(Default)]
pub struct DealBook {
    kept: tokio::sync::Mutex<Option<Kept>>,
}

struct Kept {
    model: Fitted,
    fitted_at: std::time::Instant,
    model_stamp: DealStamp,
    open: std::sync::Arc<Vec<DealFeatures>>,
    read_at: std::time::Instant,
    open_stamp: DealStamp,
}

#[derive(Clone)]
struct Fitted {
    model: Option<Logistic>,
    info: Option<ModelInfo>,
    note: Option<String>,
}

impl DealBook {
    /// The model and the open deals, read again where the data moved since.
    async fn current(
        &self,
        store: &Store,
        config: &AnalyticsConfig,
    ) -> Result<(Fitted, std::sync::Arc<Vec<DealFeatures>>), StoreError> {
        let funnel = &config.funnel_stages;
        let stages = &funnel[..funnel.len().saturating_sub(1)];
        let mut kept = self.kept.lock().await;
        let stamp = store.deal_stamp().await?;
        let refit = kept.as_ref().is_none_or(|k| {
            (k.model_stamp.imports, k.model_stamp.imported_at) != (stamp.imports, stamp.imported_at)
                || k.fitted_at.elapsed() > REFIT_EVERY
        });
        let reread = refit
            || kept
                .as_ref()
                .is_none_or(|k| k.open_stamp != stamp || k.read_at.elapsed() > REREAD_EVERY);
        if !reread {
            let k = kept.as_ref().expect("kept");
            return Ok((k.model.clone(), k.open.clone()));
        }
        let (model, fitted_at, model_stamp) = match kept.take() {
            Some(k) if !refit => (k.model, k.fitted_at, k.model_stamp),
            _ => {
                let t = std::time::Instant::now();
                // The model learns from every closed deal of the deployment, whoever asks.
                let closed = store.deal_features(DealSet::Closed, stages).await?;
                let closed: Vec<&DealFeatures> = closed.iter().collect();
                let fitted = match train(config, &closed) {
                    Ok((m, i)) => Fitted {
                        model: Some(m),
                        info: Some(i),
                        note: None,
                    },
                    Err(note) => Fitted {
                        model: None,
                        info: None,
                        note: Some(note),
                    },
                };
                tracing::info!(
                    closed = closed.len(),
                    ms = t.elapsed().as_millis() as u64,
                    "open deals: win-probability model fitted"
                );
                (fitted, std::time::Instant::now(), stamp)
            }
        };
        let open = std::sync::Arc::new(store.deal_features(DealSet::Open, stages).await?);
        *kept = Some(Kept {
            model: model.clone(),
            fitted_at,
            model_stamp,
            open: open.clone(),
            read_at: std::time::Instant::now(),
            open_stamp: stamp,
        });
        Ok((model, open))
    }
}

/// Open deals in `scope`, ranked, at most `limit`. `own_calls_of`: a manager's own view, made
/// of that manager's calls only.
pub async fn open_deals(
    store: &Store,
    config: &AnalyticsConfig,
    book: &DealBook,
    scope: &KpiScope,
    own_calls_of: Option<&str>,
    limit: usize,
) -> Result<OpenDeals, StoreError> {
    let (fitted, all) = book.current(store, config).await?;
    let managers: Option<std::collections::HashSet<String>> =
        match store.resolve_scope(scope).await? {
            KpiScope::All => None,
            KpiScope::Manager(m) => Some([m].into()),
            KpiScope::Managers(ms) => Some(ms.into_iter().collect()),
            KpiScope::Team(_) => Some(Default::default()),
        };
    let now = now_millis();
    // A manager's view is made of their own calls only: a call another manager tagged with
    // this deal (or made before the CRM reassigned it) shows neither its score nor its id.
    let listed: Vec<DealFeatures> = all
        .iter()
        .filter(|d| {
            managers
                .as_ref()
                .is_none_or(|ms| ms.contains(&d.manager_id))
        })
        .map(|d| match own_calls_of {
            Some(_) => DealFeatures {
                quality: d.own_quality,
                ..d.clone()
            },
            None => d.clone(),
        })
        .collect();
    let mut open: Vec<(Option<f64>, f64, &DealFeatures)> = listed
        .iter()
        .map(|d| {
            let f = features(d, now);
            (fitted.model.as_ref().map(|m| m.predict(&f)), f[1], d)
        })
        .collect();
    open.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => y.total_cmp(&x).then(a.2.deal_id.cmp(&b.2.deal_id)),
        _ => b.1.total_cmp(&a.1).then(a.2.deal_id.cmp(&b.2.deal_id)),
    });
    open.truncate(limit);
    let ids: Vec<String> = open.iter().map(|(_, _, d)| d.deal_id.clone()).collect();
    let last = store.last_scored_calls(&ids, own_calls_of).await?;
    let deals = open
        .into_iter()
        .map(|(p, idle_days, d)| describe(config, d, p, idle_days, last.get(&d.deal_id).cloned()))
        .collect();
    Ok(OpenDeals {
        model: fitted.info,
        note: fitted.note,
        deals,
    })
}

fn describe(
    config: &AnalyticsConfig,
    d: &DealFeatures,
    p: Option<f64>,
    idle_days: f64,
    last: Option<LastCall>,
) -> OpenDeal {
    let mut steps = Vec::new();
    if idle_days > config.stale_days as f64 {
        steps.push(NextBestStep {
            reason: StepReason::NoRecentTouch,
            text: format!(
                "No activity for {idle_days:.0} days: contact the customer to keep the deal moving."
            ),
        });
    }
    let sla = config.response_sla_minutes as f64;
    match (d.lead_created_at, d.lead_first_response_at) {
        (Some(c), Some(r)) if (r - c) as f64 / 60_000.0 > sla => steps.push(NextBestStep {
            reason: StepReason::MissedSla,
            text: format!(
                "The lead behind this deal waited {:.0} minutes for a first response (SLA {sla:.0}); \
                 make sure the customer now hears back promptly.",
                (r - c) as f64 / 60_000.0
            ),
        }),
        (Some(c), None) if (now_millis() - c) as f64 / 60_000.0 > sla => steps.push(NextBestStep {
            reason: StepReason::MissedSla,
            text: "The lead behind this deal has no first response logged; check that someone got \
                   back to the customer."
                .into(),
        }),
        _ => {}
    }
    let mut suggested = Vec::new();
    if let Some(call) = &last {
        if call.closing_met() == Some(false) {
            steps.push(NextBestStep {
                reason: StepReason::NoAgreedNextStep,
                text: format!(
                    "The last call ({}) ended without an agreed next step: agree a concrete one \
                     at the next contact.",
                    to_datetime(call.at).format("%Y-%m-%d")
                ),
            });
        }
        let doc: serde_json::Value = serde_json::from_str(&call.document).unwrap_or_default();
        suggested = doc["next_steps"]
            .as_array()
            .map(|steps| {
                steps
                    .iter()
                    .filter_map(|s| {
                        let text = |k: &str| {
                            s[k].as_str()
                                .map(str::trim)
                                .filter(|t| !t.is_empty())
                                .map(str::to_string)
                        };
                        Some(NextStep {
                            action: text("action")?,
                            owner: text("owner"),
                            due_date: text("due_date"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
    let stage = d
        .stage
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| config.funnel_stages.get(i))
        .cloned();
    OpenDeal {
        deal_id: d.deal_id.clone(),
        manager_id: d.manager_id.clone(),
        created_at: to_datetime(d.created_at),
        stage,
        activities: d.activities,
        days_since_last_touch: idle_days,
        call_quality: d.quality,
        win_probability: p,
        next_steps: steps,
        last_call_id: last.map(|c| c.call_id),
        last_call_next_steps: suggested,
    }
}
