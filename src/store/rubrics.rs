//! Scorecard versions: every distinct text of a scorecard is kept, numbered per
//! `(id, language)`; the highest number is the current one.

use sqlx::FromRow;

use super::{Store, StoreError};
use crate::domain::{now_millis, Millis};
use crate::rubric::{LoadedRubric, Rubric};

/// A registered scorecard version.
#[derive(Debug, Clone, FromRow)]
pub struct StoredRubric {
    /// The scorecard.
    #[sqlx(rename = "source")]
    pub rubric: Rubric,
    /// Its TOML.
    #[sqlx(rename = "source")]
    pub text: String,
    /// Version number, from 1.
    pub version: i64,
    /// Content hash.
    pub content_hash: String,
    /// `builtin`, a file path or `api`.
    pub origin: String,
    /// When it was registered.
    pub created_at: Millis,
}

const COLUMNS: &str = "id, language, version, content_hash, source, origin, created_at";

impl StoredRubric {
    /// `loaded` as a first version that no database holds: what offline scoring (`eval`,
    /// `bench score`) passes to the score job.
    pub fn unregistered(loaded: &LoadedRubric) -> Self {
        Self {
            rubric: loaded.rubric.clone(),
            text: loaded.text.clone(),
            version: 1,
            content_hash: loaded.rubric.content_hash(),
            origin: loaded.source.as_origin(),
            created_at: now_millis(),
        }
    }
}

impl Store {
    /// Registers `rubric` (parsed from `text`) as a new version unless this content is already
    /// one. Returns the version and whether it was new.
    pub async fn register_rubric(
        &self,
        rubric: &Rubric,
        text: &str,
        origin: &str,
    ) -> Result<(StoredRubric, bool), StoreError> {
        let hash = rubric.content_hash();
        // One statement: the next version is computed and inserted under the write lock, and
        // content registered before (by this or another process) is left alone.
        let inserted = {
            let mut conn = self.write_one().await?;
            sqlx::query(&format!(
                "INSERT INTO rubrics ({COLUMNS}) VALUES ($1, $2, \
                 (SELECT COALESCE(MAX(version), 0) + 1 FROM rubrics WHERE id = $1 AND language = $2), \
                 $3, $4, $5, $6) ON CONFLICT DO NOTHING"
            ))
            .bind(rubric.id.clone())
            .bind(rubric.language.clone())
            .bind(hash.clone())
            .bind(text.to_string())
            .bind(origin.to_string())
            .bind(now_millis())
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1
        };
        let row = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM rubrics WHERE id = $1 AND language = $2 AND content_hash = $3"
        ))
        .bind(rubric.id.clone())
        .bind(rubric.language.clone())
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok((row, inserted)),
            // Another process took the same version number for other content at this moment.
            None => Err(StoreError::Conflict(format!(
                "scorecard {} ({}) was changed concurrently; try again",
                rubric.id, rubric.language
            ))),
        }
    }

    /// The current version of scorecard `id` in `language`, or of its other language variant
    /// when that one does not exist.
    pub async fn current_rubric(
        &self,
        id: &str,
        language: &str,
    ) -> Result<Option<StoredRubric>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM rubrics WHERE id = $1 \
             ORDER BY CASE WHEN language = $2 THEN 0 ELSE 1 END, version DESC LIMIT 1"
        ))
        .bind(id.to_string())
        .bind(language.to_string())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// One version of a scorecard.
    pub async fn rubric_version(
        &self,
        id: &str,
        language: &str,
        version: i64,
    ) -> Result<Option<StoredRubric>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM rubrics WHERE id = $1 AND language = $2 AND version = $3"
        ))
        .bind(id.to_string())
        .bind(language.to_string())
        .bind(version)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every version of every scorecard, newest first within each.
    pub async fn list_rubrics(&self) -> Result<Vec<StoredRubric>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM rubrics ORDER BY id, language, version DESC"
        ))
        .fetch_all(&self.pool)
        .await?)
    }
}
