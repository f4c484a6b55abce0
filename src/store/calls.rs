//! Calls: the uploaded recordings and where each one is in the pipeline.

use super::jobs::{insert_job, NewJob};
use super::{Store, StoreError};
use crate::domain::{
    now_millis, CallId, CallStatus, ChannelMap, Direction, Language, ManagerId, Millis, Speaker,
};

/// A call as stored: what its upload said, and where it is in the pipeline.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallRecord {
    /// What the upload said and where the recording lies.
    #[sqlx(flatten)]
    pub call: NewCall,
    /// Pipeline state.
    pub status: CallStatus,
    /// Why the call failed, in words a user can act on.
    pub failure_reason: Option<String>,
    /// Accepted at.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// What an upload adds.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NewCall {
    /// Identifier chosen by the server.
    pub id: CallId,
    /// The salesperson.
    pub manager_id: ManagerId,
    /// CRM deal, if known.
    pub deal_id: Option<String>,
    /// CRM customer, if known.
    pub customer_id: Option<String>,
    /// Inbound or outbound.
    pub direction: Option<Direction>,
    /// When the call took place.
    pub started_at: Option<Millis>,
    /// Spoken language (or auto).
    pub language: Language,
    /// Speaker per channel.
    pub channels: ChannelMap,
    /// Who speaks first on a one-channel recording (`manager` or `client`), when the upload or
    /// QA said it; `None` leaves it to the roles rule. Stereo calls ignore it.
    pub first_speaker: Option<Speaker>,
    /// The client's file name, kept only as metadata.
    pub original_filename: Option<String>,
    /// The declared content type, kept only as metadata.
    pub content_type: Option<String>,
    /// Recording size.
    pub size_bytes: i64,
    /// SHA-256 of the recording, hex.
    pub sha256: String,
    /// Server-generated path of the recording, relative to the recordings folder.
    pub storage_key: String,
}

/// Filters and keyset cursor for listing calls.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Only this manager's calls.
    pub manager_id: Option<ManagerId>,
    /// Only calls in this state.
    pub status: Option<CallStatus>,
    /// Accepted at or after.
    pub from: Option<Millis>,
    /// Accepted before.
    pub to: Option<Millis>,
    /// Calls older than this id (the cursor of the previous page).
    pub before: Option<CallId>,
    /// Page size.
    pub limit: i64,
}

/// Conditions of the web app's calls list beyond [`CallFilter`] (they need the score and CRM
/// tables, which only [`Store::list_call_rows`] joins).
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    /// Only managers of this CRM team.
    pub team: Option<String>,
    /// Overall score at least.
    pub min_score: Option<f64>,
    /// Overall score at most.
    pub max_score: Option<f64>,
    /// With (true) or without (false) a critical failure; scored calls only.
    pub critical: Option<bool>,
    /// Only calls in this language.
    pub language: Option<crate::domain::Language>,
    /// Only calls whose criterion (id) got this effective level.
    pub criterion_level: Option<(String, crate::rubric::Level)>,
}

/// A parameter of an extra condition. Floats are never NULL here (sqlx#4284, decision 0013).
enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
    Pair(String, String),
    /// A condition with no parameter.
    None,
}

const CALL_COLUMNS: &str =
    "id, manager_id, deal_id, customer_id, direction, started_at, language, \
     channels, first_speaker, original_filename, content_type, size_bytes, sha256, storage_key, \
     status, failure_reason, created_at, updated_at";

/// `columns` (a comma-separated list) each prefixed with the alias `c.`.
fn qualified(columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("c.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A call with its score and length where known.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallRow {
    /// The call.
    #[sqlx(flatten)]
    pub record: CallRecord,
    /// Overall score, 0-100, after QA corrections.
    pub overall: Option<f64>,
    /// Critical criteria failed.
    pub critical_failures: Option<i64>,
    /// Length of the recording, once transcribed.
    pub duration_ms: Option<i64>,
}

/// The outcome of [`Store::insert_call`].
#[derive(Debug)]
pub enum InsertCall {
    /// A new call was stored and its first job queued.
    Created(CallRecord),
    /// The same recording was already uploaded for this manager.
    Duplicate(CallRecord),
}

impl Store {
    /// Stores a call and queues its first job in one transaction; a recording already uploaded
    /// for the same manager returns the existing call instead.
    pub async fn insert_call(
        &self,
        call: &NewCall,
        first_job: &NewJob,
    ) -> Result<InsertCall, StoreError> {
        if let Some(existing) = self
            .find_call_by_hash(&call.manager_id, &call.sha256)
            .await?
        {
            return Ok(InsertCall::Duplicate(existing));
        }
        let now = now_millis();
        let mut tx = self.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO calls (id, manager_id, deal_id, customer_id, direction, started_at, \
             language, channels, first_speaker, original_filename, content_type, size_bytes, sha256, \
             storage_key, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
        )
        .bind(call.id.to_string())
        .bind(call.manager_id.as_str().to_string())
        .bind(call.deal_id.clone())
        .bind(call.customer_id.clone())
        .bind(call.direction.map(|d| d.as_str().to_string()))
        .bind(call.started_at)
        .bind(call.language.as_str().to_string())
        .bind(call.channels.to_string())
        .bind(call.first_speaker.map(|s| s.as_str().to_string()))
        .bind(call.original_filename.clone())
        .bind(call.content_type.clone())
        .bind(call.size_bytes)
        .bind(call.sha256.clone())
        .bind(call.storage_key.clone())
        .bind(CallStatus::Queued.as_str().to_string())
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if StoreError::is_unique_violation(&e) => {
                // A concurrent upload of the same file won the race.
                drop(tx);
                return match self
                    .find_call_by_hash(&call.manager_id, &call.sha256)
                    .await?
                {
                    Some(existing) => Ok(InsertCall::Duplicate(existing)),
                    None => Err(StoreError::Conflict("call already exists".into())),
                };
            }
            Err(e) => return Err(e.into()),
        }
        insert_job(&mut tx, first_job, now).await?;
        tx.commit().await?;
        let stored = self
            .get_call(call.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("call vanished after insert".into()))?;
        Ok(InsertCall::Created(stored))
    }

    async fn find_call_by_hash(
        &self,
        manager: &ManagerId,
        sha256: &str,
    ) -> Result<Option<CallRecord>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE manager_id = $1 AND sha256 = $2");
        let row = sqlx::query_as::<_, CallRecord>(&sql)
            .bind(manager.as_str().to_string())
            .bind(sha256.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    /// Which of `ids` have a call row (for the sweep of leftover recordings).
    pub async fn existing_calls(
        &self,
        ids: &[CallId],
    ) -> Result<std::collections::HashSet<CallId>, StoreError> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT id FROM calls WHERE id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_scalar::<_, CallId>(&sql);
        for id in ids {
            query = query.bind(id.to_string());
        }
        Ok(query.fetch_all(&self.pool).await?.into_iter().collect())
    }

    /// One call by id.
    pub async fn get_call(&self, id: CallId) -> Result<Option<CallRecord>, StoreError> {
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = $1");
        let row = sqlx::query_as::<_, CallRecord>(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    /// Calls matching `filter`, newest first.
    pub async fn list_calls(&self, filter: &CallFilter) -> Result<Vec<CallRecord>, StoreError> {
        let select = qualified(CALL_COLUMNS);
        self.filtered_calls(&format!("SELECT {select} FROM calls c"), filter)
            .await
    }

    /// Calls matching `filter`, newest first, each with its score and length where known: the
    /// rows of the web app's calls list.
    pub async fn list_call_rows(
        &self,
        filter: &CallFilter,
        rows: &RowFilter,
    ) -> Result<Vec<CallRow>, StoreError> {
        // Calls with a critical failure are few: their list starts from the partial index that
        // holds only them (migration 0008), in id order, instead of walking every call. The
        // condition is written as the index's own literal: SQLite matches a partial index only
        // to a query that repeats its condition, and orders by the scores' key only when asked
        // to.
        let (from, key) = if rows.critical == Some(true) {
            (
                "FROM scores s JOIN calls c ON c.id = s.call_id",
                "s.call_id",
            )
        } else {
            (
                "FROM calls c LEFT JOIN scores s ON s.call_id = c.id",
                "c.id",
            )
        };
        let select = format!(
            "SELECT {}, s.overall, s.critical_failures, t.duration_ms {from} \
             LEFT JOIN transcripts t ON t.call_id = c.id",
            qualified(CALL_COLUMNS)
        );
        let mut extra: Vec<(String, Bind)> = Vec::new();
        if let Some(team) = &rows.team {
            extra.push((
                "c.manager_id IN (SELECT manager_id FROM crm_managers WHERE team = {})".into(),
                Bind::Text(team.clone()),
            ));
        }
        if let Some(min) = rows.min_score {
            extra.push(("s.overall >= {}".into(), Bind::Float(min)));
        }
        if let Some(max) = rows.max_score {
            extra.push(("s.overall <= {}".into(), Bind::Float(max)));
        }
        match rows.critical {
            Some(true) => extra.push(("s.critical_failures > 0".into(), Bind::None)),
            Some(false) => extra.push(("s.critical_failures = {}".into(), Bind::Int(0))),
            None => {}
        }
        if let Some(language) = rows.language {
            extra.push((
                "c.language = {}".into(),
                Bind::Text(language.as_str().into()),
            ));
        }
        if let Some((criterion, level)) = &rows.criterion_level {
            extra.push((
                "EXISTS (SELECT 1 FROM score_criteria sc WHERE sc.call_id = c.id \
                 AND sc.criterion_id = {} AND sc.level = {})"
                    .into(),
                Bind::Pair(criterion.clone(), level.as_str().into()),
            ));
        }
        self.filtered_calls_with(&select, key, filter, &extra).await
    }

    /// `select` (over `calls c`) with `filter`'s conditions, newest first.
    async fn filtered_calls<R>(
        &self,
        select: &str,
        filter: &CallFilter,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        self.filtered_calls_with(select, "c.id", filter, &[]).await
    }

    /// [`Self::filtered_calls`] with further conditions over the select's tables, each with
    /// `{}` where its parameter goes (two for a [`Bind::Pair`], none for [`Bind::None`]), in
    /// descending order of `key` (the call's id, or a column equal to it).
    async fn filtered_calls_with<R>(
        &self,
        select: &str,
        key: &str,
        filter: &CallFilter,
        extra: &[(String, Bind)],
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        let mut sql = format!("{select} WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if filter.manager_id.is_some() {
            sql += &format!(" AND c.manager_id = {}", next());
        }
        if filter.status.is_some() {
            sql += &format!(" AND c.status = {}", next());
        }
        if filter.from.is_some() {
            sql += &format!(" AND c.created_at >= {}", next());
        }
        if filter.to.is_some() {
            sql += &format!(" AND c.created_at < {}", next());
        }
        if filter.before.is_some() {
            sql += &format!(" AND {key} < {}", next());
        }
        for (condition, bind) in extra {
            let mut text = condition.clone();
            let slots = match bind {
                Bind::None => 0,
                Bind::Pair(..) => 2,
                _ => 1,
            };
            for _ in 0..slots {
                text = text.replacen("{}", &next(), 1);
            }
            sql += &format!(" AND {text}");
        }
        sql += &format!(" ORDER BY {key} DESC LIMIT {}", next());
        let mut q = sqlx::query_as::<_, R>(&sql);
        if let Some(m) = &filter.manager_id {
            q = q.bind(m.as_str().to_string());
        }
        if let Some(s) = filter.status {
            q = q.bind(s.as_str().to_string());
        }
        if let Some(f) = filter.from {
            q = q.bind(f);
        }
        if let Some(t) = filter.to {
            q = q.bind(t);
        }
        if let Some(b) = filter.before {
            q = q.bind(b.to_string());
        }
        for (_, bind) in extra {
            q = match bind {
                Bind::Text(t) => q.bind(t.clone()),
                Bind::Int(i) => q.bind(*i),
                Bind::Float(f) => q.bind(*f),
                Bind::Pair(a, b) => q.bind(a.clone()).bind(b.clone()),
                Bind::None => q,
            };
        }
        q = q.bind(filter.limit);
        let rows = q.fetch_all(&self.pool).await?;
        Ok(rows)
    }

    /// Sets a call's pipeline state (and the reason, for `failed`).
    pub async fn set_call_status(
        &self,
        id: CallId,
        status: CallStatus,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.write_one().await?;
        sqlx::query(
            "UPDATE calls SET status = $1, failure_reason = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(status.as_str().to_string())
        .bind(reason.map(str::to_string))
        .bind(now_millis())
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Deletes a call and, through foreign keys, everything derived from it. Returns the
    /// storage key of its recording so the caller can remove the file.
    pub async fn delete_call(&self, id: CallId) -> Result<Option<String>, StoreError> {
        let mut tx = self.write().await?;
        let rolled_up = Self::call_day(&mut tx, id).await?;
        let key: Option<String> =
            sqlx::query_scalar("DELETE FROM calls WHERE id = $1 RETURNING storage_key")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(at) = rolled_up {
            self.refresh_call_rollups(&mut tx, &at).await?;
        }
        tx.commit().await?;
        Ok(key)
    }
}
