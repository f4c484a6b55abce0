//! Scorecards: the document per call plus one row per criterion for reports.

use super::decode::JsonText;

use super::{Fence, Store, StoreError, WriteTx};
use crate::domain::{now_millis, CallId};
use crate::rubric::Level;
use crate::scoring::calibration::Pair;
use crate::scoring::card::{QaCorrection, ScoreCard};

/// A QA correction that changed the model's level of a criterion.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct Disagreement {
    /// The call.
    #[schema(value_type = String)]
    pub call_id: CallId,
    /// The criterion.
    pub criterion_id: String,
    /// The model's level.
    pub model_level: String,
    /// QA's level.
    pub qa_level: String,
    /// QA's reason.
    pub qa_comment: Option<String>,
    /// Who corrected it.
    pub qa_by: Option<String>,
    /// When (Unix ms).
    pub qa_at: i64,
}

impl Store {
    /// Stores `card` as its call's score, replacing an earlier one, in one transaction.
    pub async fn save_score(
        &self,
        card: &ScoreCard,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        if let Some(fence) = fence {
            fence.hold(&mut tx).await?;
        }
        self.write_score(&mut tx, card).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes `card` (score row, criterion rows, rollups) on `conn`, inside the caller's
    /// transaction and write turn.
    async fn write_score(&self, conn: &mut WriteTx, card: &ScoreCard) -> Result<(), StoreError> {
        let document =
            serde_json::to_string(card).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = now_millis();
        sqlx::query(
            "INSERT INTO scores (call_id, status, rubric_id, rubric_language, rubric_version, \
             overall, model_overall, confidence, critical_failures, language, reason, document, \
             scored_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (call_id) DO UPDATE SET status = excluded.status, \
             rubric_id = excluded.rubric_id, rubric_language = excluded.rubric_language, \
             rubric_version = excluded.rubric_version, overall = excluded.overall, \
             model_overall = excluded.model_overall, confidence = excluded.confidence, \
             critical_failures = excluded.critical_failures, language = excluded.language, \
             reason = excluded.reason, document = excluded.document, \
             scored_at = excluded.scored_at, updated_at = excluded.updated_at",
        )
        // Not prepared and kept: sqlx's Any driver binds a NULL f64 as float4 on PostgreSQL, and
        // a statement first prepared with a NULL score would refuse a real one later ("incorrect
        // binary data format"). Same for the criteria (N/A has no value).
        .persistent(false)
        .bind(card.call_id.to_string())
        .bind(card.status.as_str().to_string())
        .bind(card.rubric.id.clone())
        .bind(card.rubric.language.clone())
        .bind(card.rubric.version)
        .bind(card.overall)
        .bind(card.model_overall)
        .bind(card.confidence)
        .bind(card.critical_failures.len() as i64)
        .bind(card.language.clone())
        .bind(card.reason.clone())
        .bind(document)
        .bind(card.scored_at)
        .bind(now)
        .execute(&mut **conn)
        .await?;
        sqlx::query("DELETE FROM score_criteria WHERE call_id = $1")
            .bind(card.call_id.to_string())
            .execute(&mut **conn)
            .await?;
        for c in &card.criteria {
            let qa = c.qa.as_ref();
            let met = match c.final_level {
                Level::Na => None,
                level => Some(i64::from(level == Level::Strong)),
            };
            sqlx::query(
                "INSERT INTO score_criteria (call_id, criterion_id, section_id, weight, critical, \
                 scale_max, model_answer, model_level, qa_answer, qa_level, qa_comment, qa_by, \
                 qa_at, value, level, met, low_confidence) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                 $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            )
            .persistent(false)
            .bind(card.call_id.to_string())
            .bind(c.id.clone())
            .bind(c.section.clone())
            .bind(c.weight)
            .bind(i64::from(c.critical))
            .bind(i64::from(c.scale_max))
            .bind(c.answer.map(i64::from))
            .bind(c.level.as_str().to_string())
            .bind(qa.and_then(|q| q.answer).map(i64::from))
            .bind(qa.map(|q| q.level.as_str().to_string()))
            .bind(qa.map(|q| q.comment.clone()))
            .bind(qa.map(|q| q.by.clone()))
            .bind(qa.map(|q| q.at))
            .bind(c.final_value)
            .bind(c.final_level.as_str().to_string())
            .bind(met)
            .bind(i64::from(c.low_confidence))
            .execute(&mut **conn)
            .await?;
        }
        self.refresh_rollups_of(conn, card.call_id).await
    }

    /// The score of `call`, if it has one.
    pub async fn get_score(&self, call: CallId) -> Result<Option<ScoreCard>, StoreError> {
        let document: Option<JsonText<ScoreCard>> =
            sqlx::query_scalar("SELECT document FROM scores WHERE call_id = $1")
                .bind(call.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(document.map(|d| d.0))
    }

    /// Records a QA correction of one criterion and recomputes the call's figures; the model's
    /// answer stays beside it. `None` when the call has no score or no such criterion.
    pub async fn correct_criterion(
        &self,
        call: CallId,
        criterion: &str,
        correction: QaCorrection,
    ) -> Result<Option<ScoreCard>, StoreError> {
        // Read, change and write in one transaction with the score row locked, so two QA
        // staff correcting two criteria of one call at once both keep their correction.
        let mut tx = self.write().await?;
        let lock = tx.for_update();
        let document: Option<JsonText<ScoreCard>> = sqlx::query_scalar(&format!(
            "SELECT document FROM scores WHERE call_id = $1{lock}"
        ))
        .bind(call.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(JsonText(mut card)) = document else {
            return Ok(None);
        };
        let Some(c) = card.criteria.iter_mut().find(|c| c.id == criterion) else {
            return Ok(None);
        };
        if let Some(earlier) = c.qa.replace(correction) {
            c.qa_history.push(earlier);
        }
        card.recompute(None);
        self.write_score(&mut tx, &card).await?;
        tx.commit().await?;
        Ok(Some(card))
    }

    /// Corrected criteria in `[from, to)` (by correction time, Unix ms), by criterion id.
    pub async fn calibration_pairs(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, Pair)>, StoreError> {
        let rows: Vec<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT criterion_id, scale_max, model_answer, qa_answer FROM score_criteria \
             WHERE qa_at IS NOT NULL AND qa_at >= $1 AND qa_at < $2 ORDER BY criterion_id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        let answer = |v: Option<i64>| v.map(|v| u8::try_from(v).unwrap_or(u8::MAX));
        Ok(rows
            .into_iter()
            .map(|(id, scale_max, model, qa)| {
                let pair = Pair {
                    scale_max: u8::try_from(scale_max).unwrap_or(1),
                    model: answer(model),
                    qa: answer(qa),
                };
                (id, pair)
            })
            .collect())
    }

    /// Corrections in `[from, to)` where QA's level differs from the model's, newest first.
    pub async fn calibration_disagreements(
        &self,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<Disagreement>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT call_id, criterion_id, model_level, qa_level, qa_comment, qa_by, qa_at \
             FROM score_criteria \
             WHERE qa_at IS NOT NULL AND qa_at >= $1 AND qa_at < $2 AND qa_level <> model_level \
             ORDER BY qa_at DESC, call_id, criterion_id LIMIT {limit}"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Calls scored with scorecard `rubric_id` at a version older than its current one.
    pub async fn outdated_scores(&self, rubric_id: &str) -> Result<Vec<CallId>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT s.call_id FROM scores s WHERE s.rubric_id = $1 AND s.rubric_version < \
             (SELECT MAX(r.version) FROM rubrics r WHERE r.id = s.rubric_id \
              AND r.language = s.rubric_language) ORDER BY s.call_id",
        )
        .bind(rubric_id.to_string())
        .fetch_all(&self.pool)
        .await?)
    }
}
