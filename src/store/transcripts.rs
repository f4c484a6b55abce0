//! Transcripts, one per call (a second transcription replaces the first), written with their
//! rows of the search index.

use super::decode::JsonText;

use super::{Fence, Store, StoreError};
use crate::domain::{CallId, ChannelMap, Speaker};
use crate::transcript::Transcript;

impl Store {
    /// Stores `t` as its call's transcript, replacing an earlier one (a retried job writes the
    /// same row again), and its segments' search rows in the same transaction.
    pub async fn save_transcript(
        &self,
        t: &Transcript,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        self.write_transcript(t, fence, None).await
    }

    /// Stores `t`, whose speakers QA reassigned, and the call's new channel map and first
    /// speaker (a separated one-channel call's) with it in one transaction, so a later
    /// transcription of the recording keeps the correction.
    pub async fn reassign_speakers(
        &self,
        t: &Transcript,
        channels: &ChannelMap,
        first_speaker: Option<Speaker>,
    ) -> Result<(), StoreError> {
        self.write_transcript(t, None, Some((channels, first_speaker)))
            .await
    }

    async fn write_transcript(
        &self,
        t: &Transcript,
        fence: Option<&Fence>,
        roles: Option<(&ChannelMap, Option<Speaker>)>,
    ) -> Result<(), StoreError> {
        let document = serde_json::to_string(t).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let words: usize = t
            .segments
            .iter()
            .map(|s| s.text.split_whitespace().count())
            .sum();
        // Stemmed before the write turn is taken: the transaction only writes.
        let search_rows = self.searchable_rows(t);
        let mut tx = self.write().await?;
        if let Some(fence) = fence {
            fence.hold(&mut tx).await?;
        }
        sqlx::query(
            "INSERT INTO transcripts (call_id, language, model, duration_ms, speech_ms, words, \
             document, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (call_id) DO UPDATE SET language = excluded.language, \
             model = excluded.model, duration_ms = excluded.duration_ms, \
             speech_ms = excluded.speech_ms, words = excluded.words, \
             document = excluded.document, created_at = excluded.created_at",
        )
        .bind(t.call_id.to_string())
        .bind(t.language.clone())
        .bind(t.model.clone())
        .bind((t.duration_s * 1000.0).round() as i64)
        .bind((t.processing.speech_s * 1000.0).round() as i64)
        .bind(words as i64)
        .bind(document)
        .bind(t.created_at)
        .execute(&mut *tx)
        .await?;
        if let Some((channels, first_speaker)) = roles {
            sqlx::query("UPDATE calls SET channels = $1, first_speaker = $2 WHERE id = $3")
                .bind(channels.to_string())
                .bind(first_speaker.map(|s| s.as_str().to_string()))
                .bind(t.call_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        Self::save_call_conversation(&mut tx, t.call_id, &t.metrics).await?;
        Self::write_search_rows(&mut tx, t.call_id, search_rows, self.index_version()).await?;
        self.refresh_rollups_of(&mut tx, t.call_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The transcript of `call`, if it has one.
    pub async fn get_transcript(&self, call: CallId) -> Result<Option<Transcript>, StoreError> {
        let document: Option<JsonText<Transcript>> =
            sqlx::query_scalar("SELECT document FROM transcripts WHERE call_id = $1")
                .bind(call.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(document.map(|d| d.0))
    }

    /// When `call`'s transcript was last written (its `created_at`), without reading it.
    pub async fn transcript_written_at(&self, call: CallId) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT created_at FROM transcripts WHERE call_id = $1")
                .bind(call.to_string())
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
