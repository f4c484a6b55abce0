//! The search index (decision 0016): one row per transcript segment holding its words' stems,
//! written in the transcript's own transaction, and the query over it. How the stems are
//! matched differs per backend (FTS5 on SQLite, a GIN-indexed `tsvector` on PostgreSQL) and
//! lives in `dialect.rs`; the rows, filters and order are the same SQL on both.
//!
//! A row's key is its place in the results ([`row_key`]): newest call second first, then the
//! call, then the segment. Both engines can then hand over the matches in key order and stop
//! after a page (FTS5 walks its index by rowid; PostgreSQL walks the primary key), instead of
//! collecting and sorting every match of a common word.

use std::fmt;
use std::str::FromStr;

use super::{dialect, insert_batch, Backend, Store, StoreError, WriteTx};
use crate::analytics::entity::Value;
use crate::domain::{CallId, ManagerId, Millis, Speaker};
use crate::redact::redact;
use crate::search::terms::stem_line;
use crate::search::INDEX_VERSION;
use crate::transcript::Transcript;

/// What a search selects besides its words: filters and the page.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// Only this manager's calls.
    pub manager_id: Option<ManagerId>,
    /// Only what this speaker said.
    pub speaker: Option<Speaker>,
    /// Calls at or after (the call's start, else its upload).
    pub from: Option<Millis>,
    /// Calls before.
    pub to: Option<Millis>,
    /// Hits after this one (the previous page's last).
    pub after: Option<SearchCursor>,
    /// Page size.
    pub limit: i64,
}

/// Where a page of hits ended: the key of its last hit (results come in descending key order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchCursor(i64);

impl fmt::Display for SearchCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for SearchCursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<i64>()
            .ok()
            .filter(|k| *k >= 0)
            .map(SearchCursor)
            .ok_or_else(|| format!("not a search cursor: {s:?}"))
    }
}

/// Bits of a row key for the segment's index (the lowest).
const SEGMENT_BITS: u32 = 16;
/// Bits of a row key that tell apart the calls of one second.
const SLOT_BITS: u32 = 14;
/// Seconds since 1970 fit in the 33 bits above: until the year 2242.
const MAX_SECOND: i64 = (1 << 33) - 1;

/// The key of a call's segment: its place in the results, which come in descending key order.
/// From the highest bits: the call's second (`call_at`, newest first), the call's slot among
/// the calls of that second, and the segment's index subtracted from the maximum (so a call's
/// segments come in their own order). A transcript's segments past the 65,536th are not
/// indexed.
fn row_key(call_second: i64, slot: i64, segment: i64) -> i64 {
    (call_second << (SLOT_BITS + SEGMENT_BITS))
        | (slot << SEGMENT_BITS)
        | ((1 << SEGMENT_BITS) - 1 - segment)
}

/// The smallest key of a call at or after `ms`.
fn first_key_from(ms: Millis) -> i64 {
    row_key(
        ms.div_euclid(1000).clamp(0, MAX_SECOND),
        0,
        (1 << SEGMENT_BITS) - 1,
    )
}

/// A key above every call before `ms`, where there is one.
fn end_key_before(ms: Millis) -> Option<i64> {
    let next_second = ms.saturating_sub(1).div_euclid(1000) + 1;
    (next_second <= MAX_SECOND).then(|| first_key_from(next_second.max(0) * 1000))
}

/// A segment that matched, with what a result list shows of its call.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SearchHit {
    /// The row's key: its place in the results.
    pub id: i64,
    /// The call.
    pub call_id: CallId,
    /// The segment's index in the transcript.
    pub segment: i64,
    /// The call's manager.
    pub manager_id: ManagerId,
    /// The call's start, else its upload time: what results are ordered by.
    pub call_at: Millis,
    /// The call's start, where known.
    pub started_at: Option<Millis>,
    /// The uploaded file's name.
    pub original_filename: Option<String>,
    /// Who spoke.
    pub speaker: Speaker,
    /// Start on the recording, ms.
    pub start_ms: i64,
    /// End on the recording, ms.
    pub end_ms: i64,
    /// What was said.
    pub text: String,
}

impl SearchHit {
    /// The cursor of the page that follows this hit.
    pub fn cursor(&self) -> SearchCursor {
        SearchCursor(self.id)
    }
}

/// One segment's row, before the call's manager and time are added.
#[derive(Debug, Clone)]
pub(super) struct SegmentRow {
    segment: i64,
    speaker: Speaker,
    start_ms: i64,
    end_ms: i64,
    text: String,
    stems: String,
}

/// The rows of `t`'s segments that have words. CPU work (stemming): callers do it before they
/// take the write turn.
pub(super) fn segment_rows(t: &Transcript) -> Vec<SegmentRow> {
    t.segments
        .iter()
        .enumerate()
        .take(1 << SEGMENT_BITS)
        .filter_map(|(i, s)| {
            let stems = stem_line(&s.text);
            (!stems.is_empty()).then(|| SegmentRow {
                segment: i as i64,
                speaker: s.speaker,
                start_ms: (s.start * 1000.0).round() as i64,
                end_ms: (s.end * 1000.0).round() as i64,
                text: s.text.trim().to_string(),
                stems,
            })
        })
        .collect()
}

const COLUMNS: [&str; 10] = [
    "id",
    "call_id",
    "segment",
    "manager_id",
    "call_at",
    "speaker",
    "start_ms",
    "end_ms",
    "text",
    "stems",
];

/// Logs a stored transcript that no longer parses: it stays out of the index.
fn unreadable(call_id: &str, e: &serde_json::Error) {
    tracing::warn!(call = call_id, error = %e, "a stored transcript does not parse; it is not searchable");
}

impl Store {
    /// The rows `t` is indexed with: its segments, with the personal data the settings keep
    /// from readers replaced ([`Store::redacting_search`]).
    pub(super) fn searchable_rows(&self, t: &Transcript) -> Vec<SegmentRow> {
        if self.search_redact.is_empty() {
            segment_rows(t)
        } else {
            segment_rows(&redact(t, &self.search_redact).0)
        }
    }

    /// The version rows are marked with under this store's redaction settings.
    pub(super) fn index_version(&self) -> i64 {
        crate::search::index_version(&self.search_redact)
    }

    /// Replaces the search rows of `call` with `rows` and marks its transcript indexed at
    /// `version`, inside the transaction that writes the transcript.
    pub(super) async fn write_search_rows(
        tx: &mut WriteTx,
        call: CallId,
        rows: Vec<SegmentRow>,
        version: i64,
    ) -> Result<(), StoreError> {
        // The call's manager and time go on every row: a search filters and orders by them
        // without visiting the call of every match (they never change after the upload).
        let owner: Option<(ManagerId, Millis)> = sqlx::query_as(
            "SELECT manager_id, COALESCE(started_at, created_at) FROM calls WHERE id = $1",
        )
        .bind(call.to_string())
        .fetch_optional(&mut **tx)
        .await?;
        sqlx::query("DELETE FROM search_segments WHERE call_id = $1")
            .bind(call.to_string())
            .execute(&mut **tx)
            .await?;
        let Some((manager, call_at)) = owner else {
            return Ok(());
        };
        if rows.is_empty() {
            return Self::mark_indexed(tx, call, version).await;
        }
        let second = call_at.div_euclid(1000).clamp(0, MAX_SECOND);
        let slot = Self::free_slot(tx, call, second).await?;
        let owner_term = manager_term(&manager);
        let batch = dialect::import_batch_rows(tx.backend());
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<Vec<Value>> = rows
                .by_ref()
                .take(batch)
                .map(|r| {
                    vec![
                        Value::Int(Some(row_key(second, slot, r.segment))),
                        Value::Text(Some(call.to_string())),
                        Value::Int(Some(r.segment)),
                        Value::Text(Some(manager.as_str().to_string())),
                        Value::Int(Some(call_at)),
                        Value::Text(Some(r.speaker.as_str().to_string())),
                        Value::Int(Some(r.start_ms)),
                        Value::Int(Some(r.end_ms)),
                        Value::Text(Some(r.text)),
                        Value::Text(Some(format!("{} {owner_term}", r.stems))),
                    ]
                })
                .collect();
            insert_batch(tx, "search_segments", &COLUMNS, chunk, "").await?;
        }
        Self::mark_indexed(tx, call, version).await
    }

    /// The slot of `call` among the calls of its second: the one its id's random bits name, or
    /// the next free one. Its own rows are gone by now, so a row in a slot is another call's.
    /// On PostgreSQL two calls of the same second whose ids pick the same slot, indexed at the
    /// same moment, would both find it free: the second's insert then fails on the key and
    /// its job is retried (one chance in 16,384 for two calls of one second).
    async fn free_slot(tx: &mut WriteTx, call: CallId, second: i64) -> Result<i64, StoreError> {
        let slots: i64 = 1 << SLOT_BITS;
        let first = i64::try_from(call.0.as_u128() % (1 << SLOT_BITS)).unwrap_or(0);
        for step in 0..slots {
            let slot = (first + step) % slots;
            let taken: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM search_segments WHERE id >= $1 AND id <= $2 LIMIT 1",
            )
            .bind(row_key(second, slot, (1 << SEGMENT_BITS) - 1))
            .bind(row_key(second, slot, 0))
            .fetch_optional(&mut **tx)
            .await?;
            if taken.is_none() {
                return Ok(slot);
            }
        }
        Err(StoreError::Conflict(format!(
            "more than {slots} calls start in the same second"
        )))
    }

    /// Records that `call`'s transcript is indexed at `version`.
    async fn mark_indexed(tx: &mut WriteTx, call: CallId, version: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO search_indexed (call_id, version) VALUES ($1, $2) \
             ON CONFLICT (call_id) DO UPDATE SET version = excluded.version",
        )
        .bind(call.to_string())
        .bind(version)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Indexes up to `limit` transcripts after call id `after` that the index does not hold at
    /// [`INDEX_VERSION`], in one transaction. Returns the last call id looked at (where the
    /// next batch starts) and how many were indexed, or `None` when none was left.
    pub async fn index_pending_transcripts(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Option<(String, usize)>, StoreError> {
        // Which ones: a plain read, so a start with nothing to index (every start but the first
        // after an upgrade) scans without taking the write turn.
        // Current: this version, or one a newer build wrote (a higher INDEX_VERSION, with or
        // without redaction); a mark for other redacted kinds is not.
        let pending = "NOT EXISTS (SELECT 1 FROM search_indexed i WHERE i.call_id = t.call_id \
                       AND (i.version = $1 OR (i.version > $2 AND i.version < 1000) \
                       OR i.version >= ($2 + 1) * 1000))";
        let version = self.index_version();
        let ids: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT t.call_id FROM transcripts t WHERE {pending} AND t.call_id > $3 \
             ORDER BY t.call_id LIMIT $4"
        ))
        .bind(version)
        .bind(INDEX_VERSION)
        .bind(after.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let Some(last) = ids.last().cloned() else {
            return Ok(None);
        };
        let mut tx = self.write().await?;
        // Read again under the write lock (the rows locked on PostgreSQL): one saved meanwhile
        // is skipped, never overwritten with the rows of its older version.
        let placeholders: Vec<String> = (3..ids.len() + 3).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT t.call_id, t.document FROM transcripts t WHERE {pending} \
             AND t.call_id IN ({}){}",
            placeholders.join(", "),
            tx.for_update()
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql)
            .bind(version)
            .bind(INDEX_VERSION);
        for id in ids {
            query = query.bind(id);
        }
        let documents = query.fetch_all(&mut *tx).await?;
        // Parsing and stemming are CPU work: off the async threads.
        let store = self.clone();
        let parsed = tokio::task::spawn_blocking(move || {
            documents
                .into_iter()
                .filter_map(
                    |(id, document)| match serde_json::from_str::<Transcript>(&document) {
                        Ok(t) => Some((t.call_id, store.searchable_rows(&t))),
                        Err(e) => {
                            unreadable(&id, &e);
                            None
                        }
                    },
                )
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("indexing transcripts: {e}")))?;
        let indexed = parsed.len();
        for (call, rows) in parsed {
            Self::write_search_rows(&mut tx, call, rows, version).await?;
        }
        tx.commit().await?;
        Ok(Some((last, indexed)))
    }

    /// Segments holding every one of `terms` (stems, `search::Query::terms`) that `filter`
    /// selects, in key order (newest call second first, then by call and place in the call);
    /// at most `filter.limit`.
    ///
    /// A manager filter is one more term: the manager's [`manager_term`], which every row of
    /// the manager's calls holds, so the engine intersects it with the words in the index
    /// instead of checking the manager on each row it walks.
    pub async fn search_segments(
        &self,
        terms: &[String],
        filter: &SearchFilter,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let mut terms = terms.to_vec();
        if let Some(m) = &filter.manager_id {
            // Until the start-up step has indexed every transcript again, rows of an older
            // version lack the term: the manager is then checked on the rows alone.
            if self.search_index_current() {
                terms.push(manager_term(m));
            }
        }
        if self.backend == Backend::Sqlite || terms.len() < 2 {
            return self.search_page(&terms, filter, None).await;
        }
        // PostgreSQL estimates several terms as if they were independent, and for two common
        // ones walks the key from the newest expecting a page soon; two that are rarely said
        // together (words of two languages, a word a manager never says) then walk all 5M rows
        // (4 s). So the walk is bounded, by the rate of matches a probe of the newest rows
        // finds: walking costs about 1 us a row, fetching a match through the GIN index 3-10
        // us, so a rate that fills the page within the window is walked, and a lower one
        // (few matches in all) is left to the index.
        let wanted = usize::try_from(filter.limit).unwrap_or(0);
        let window = self.search_window.max(1);
        let probe = (window / PROBE_SHARE).max(1);
        let mut hits = self
            .search_page(&terms, filter, Some(Plan::Window(probe)))
            .await?;
        let rest = |hits: &[SearchHit]| SearchFilter {
            after: hits.last().map(SearchHit::cursor).or(filter.after),
            limit: wanted.saturating_sub(hits.len()) as i64,
            ..filter.clone()
        };
        // Walk on while the rate of matches so far says the rest of the page lies within the
        // window (a step at least as long as the probe, so one unlucky stretch does not
        // decide); the index only when it does not: then the matches are few in all.
        let mut walked = probe;
        while hits.len() < wanted && !hits.is_empty() {
            let needed = (wanted - hits.len()) * walked / hits.len();
            let step = (needed * 5 / 4).max(probe);
            if walked + step > window {
                break;
            }
            let more = self
                .search_page(&terms, &rest(&hits), Some(Plan::Window(step)))
                .await?;
            hits.extend(more);
            walked += step;
        }
        if hits.len() < wanted {
            let more = self
                .search_page(&terms, &rest(&hits), Some(Plan::Index))
                .await?;
            hits.extend(more);
        }
        Ok(hits)
    }

    /// One query of [`Self::search_segments`]: `plan` `None` leaves the plan to the engine.
    async fn search_page(
        &self,
        terms: &[String],
        filter: &SearchFilter,
        plan: Option<Plan>,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let search = dialect::text_search(self.backend);
        let mut n = 1;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        // Conditions on the rows, and on their keys.
        let mut rows = String::new();
        let mut keys = String::new();
        if filter.manager_id.is_some() {
            rows += &format!(" AND s.manager_id = {}", next());
        }
        if filter.speaker.is_some() {
            rows += &format!(" AND s.speaker = {}", next());
        }
        // A period is also a range of keys (they start with the call's second), which both
        // engines seek to; the exact bounds in milliseconds are checked on the rows.
        let first_key = filter.from.map(first_key_from);
        let end_key = filter.to.and_then(end_key_before);
        if filter.from.is_some() {
            rows += &format!(" AND s.call_at >= {}", next());
            keys += &format!(" AND {} >= {}", search.key, next());
        }
        if filter.to.is_some() {
            rows += &format!(" AND s.call_at < {}", next());
        }
        if end_key.is_some() {
            keys += &format!(" AND {} < {}", search.key, next());
        }
        if filter.after.is_some() {
            keys += &format!(" AND {} < {}", search.key, next());
        }
        let columns = "s.id AS id, s.call_id AS call_id, s.segment AS segment, \
                       s.manager_id AS manager_id, s.call_at AS call_at, s.speaker AS speaker, \
                       s.start_ms AS start_ms, s.end_ms AS end_ms, s.text AS text";
        let inner = match plan {
            // The newest `window` rows of the range, walked in key order, then matched.
            Some(Plan::Window(window)) => format!(
                "SELECT {columns} FROM (SELECT * FROM search_segments s WHERE 1 = 1{keys} \
                 ORDER BY s.id DESC LIMIT {window}) s WHERE {}{rows}",
                search.matches
            ),
            _ => format!("SELECT {columns} {}{rows}{keys}", search.from_where),
        };
        // The page is chosen on the index rows alone, in key order; only its hits visit their
        // calls.
        let sql = format!(
            "SELECT h.*, c.started_at, c.original_filename FROM ({inner} \
             ORDER BY {} DESC LIMIT {}) h JOIN calls c ON c.id = h.call_id ORDER BY h.id DESC",
            if matches!(plan, Some(Plan::Window(_))) {
                "s.id"
            } else {
                search.key
            },
            next()
        );
        let mut q =
            sqlx::query_as::<_, SearchHit>(&sql).bind(dialect::text_query(self.backend, terms));
        if let Some(m) = &filter.manager_id {
            q = q.bind(m.as_str().to_string());
        }
        if let Some(s) = filter.speaker {
            q = q.bind(s.as_str().to_string());
        }
        if let (Some(f), Some(k)) = (filter.from, first_key) {
            q = q.bind(f).bind(k);
        }
        if let Some(t) = filter.to {
            q = q.bind(t);
        }
        if let Some(k) = end_key {
            q = q.bind(k);
        }
        if let Some(a) = filter.after {
            q = q.bind(a.0);
        }
        let q = q.bind(filter.limit);
        if plan != Some(Plan::Index) {
            return Ok(q.fetch_all(&self.pool).await?);
        }
        // Only the GIN index: no walk of the key, no scan of the table, no JIT (compiling
        // costs more than this query runs).
        let mut tx = self.pool.begin().await?;
        for setting in [
            "SET LOCAL enable_indexscan = off",
            "SET LOCAL enable_seqscan = off",
            "SET LOCAL jit = off",
        ] {
            sqlx::query(setting).execute(&mut *tx).await?;
        }
        let hits = q.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(hits)
    }
}

/// How a search query on PostgreSQL is to be run (see [`Store::search_segments`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Walk this many of the newest rows of the range, in key order, and match them.
    Window(usize),
    /// Match through the GIN index only.
    Index,
}

/// Rows a search for several terms on PostgreSQL walks at most before it turns to the GIN
/// index (see [`Store::search_segments`]): about 45 ms, spent only while the rate of matches
/// says the page fills within it.
pub const SEARCH_WINDOW: usize = 60_000;

/// The probe that comes first is this share of [`SEARCH_WINDOW`] (4,000 rows, 2-3 ms): enough
/// to tell terms said together often from terms said together rarely.
const PROBE_SHARE: usize = 15;

/// The term every search row of `manager`'s calls holds besides its words: a private-use
/// character, which no word has (a word is letters and digits), and 64 bits of the id's
/// SHA-256 in hex, so that any id (up to 128 characters of any script) is one short token in
/// both engines. Rows are still checked against the id itself.
pub(super) fn manager_term(manager: &ManagerId) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(manager.as_str().as_bytes());
    format!("\u{e000}{}", hex::encode(&digest[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written() {
        let c = SearchCursor(row_key(1_772_323_200, 7, 12));
        assert_eq!(c.to_string().parse::<SearchCursor>(), Ok(c));
        assert!("12.x.3".parse::<SearchCursor>().is_err());
        assert!("-1".parse::<SearchCursor>().is_err());
        assert!("".parse::<SearchCursor>().is_err());
    }

    #[test]
    fn keys_order_newest_second_first_then_the_call_then_its_segments_in_order() {
        let (now, earlier) = (1_772_323_200, 1_772_323_199);
        let mut keys = [
            (row_key(earlier, 16_383, 0), "earlier second, first segment"),
            (row_key(now, 3, 1), "slot 3, second segment"),
            (row_key(now, 3, 0), "slot 3, first segment"),
            (row_key(now, 9, 65_535), "slot 9, last segment"),
            (row_key(MAX_SECOND, 16_383, 0), "the last second there is"),
        ];
        keys.sort_by_key(|k| std::cmp::Reverse(k.0));
        let order: Vec<&str> = keys.iter().map(|k| k.1).collect();
        assert_eq!(
            order,
            [
                "the last second there is",
                "slot 9, last segment",
                "slot 3, first segment",
                "slot 3, second segment",
                "earlier second, first segment",
            ]
        );
        assert!(keys.iter().all(|k| k.0 >= 0));
        assert_eq!(row_key(0, 0, 65_535), 0);
    }

    #[test]
    fn a_period_is_the_range_of_keys_of_its_seconds() {
        let at = 1_772_323_200_250; // 250 ms into a second
        let second = at / 1000;
        let key = row_key(second, 5, 3);
        // From the call's millisecond, or one later in the same second: its key is in range.
        assert!(first_key_from(at) <= key && first_key_from(at + 500) <= key);
        assert!(first_key_from(at + 1000) > key);
        // Before the next millisecond, or the next second: in range; before its own second: not.
        assert!(end_key_before(at + 1).is_some_and(|end| key < end));
        assert!(end_key_before((second + 1) * 1000).is_some_and(|end| key < end));
        assert!(end_key_before(second * 1000).is_some_and(|end| key >= end));
        assert_eq!(end_key_before(i64::MAX), None);
        assert_eq!(first_key_from(-5_000), 0);
    }
}
