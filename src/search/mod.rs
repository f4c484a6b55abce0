//! Search across calls: the words of every transcript segment, stemmed here in Rust, so that
//! SQLite (FTS5) and PostgreSQL (`tsvector`) index and match exactly the same terms.
//!
//! "цену" finds "цена" and "цены", "ё" matches "е", "pricing" finds "price": both the indexed
//! text and a query go through [`terms`], and a hit is a segment that holds every term of the
//! query. The stored rows live in `store/search.rs`; the snippet a hit shows (its words marked
//! where their stems match the query) is computed by [`snippet`] for the page of hits only.
//! Transcripts saved before the index existed, or by an older [`INDEX_VERSION`], are indexed by
//! [`index_backlog`] when the server starts. See docs/decisions/0016-search.md.

pub mod snippet;
pub mod terms;

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::redact::{redact_text, Kind};
use crate::store::{SearchCursor, SearchFilter, SearchHit, Store, StoreError};

pub use snippet::{snippet, Piece};

/// The version of [`terms`] the stored index was built with. Bump it whenever tokenising or
/// stemming changes: the start-up step then indexes every transcript again.
/// Version 2: each row also holds its manager's term (store/search.rs, `manager_term`).
pub const INDEX_VERSION: i64 = 2;

/// The version a transcript's rows are marked with when the index holds its text with the
/// personal data of `redacted` replaced: [`INDEX_VERSION`] itself when nothing is redacted (so
/// an index built before redaction existed stays current), else `INDEX_VERSION * 1000` plus
/// one bit per kind. A change of the redacted kinds makes every transcript pending again.
pub fn index_version(redacted: &[Kind]) -> i64 {
    let mask = Kind::ALL
        .iter()
        .enumerate()
        .filter(|(_, k)| redacted.contains(k))
        .fold(0i64, |m, (i, _)| m | (1 << i));
    if mask == 0 {
        INDEX_VERSION
    } else {
        INDEX_VERSION * 1000 + mask
    }
}

/// The most terms one query may have.
pub const MAX_QUERY_TERMS: usize = 16;

/// Why a query cannot be searched for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The query holds no letters or digits.
    #[error("the query has no words to search for")]
    NoWords,
    /// More terms than [`MAX_QUERY_TERMS`].
    #[error("the query has more than {MAX_QUERY_TERMS} different words")]
    TooManyWords,
}

/// A parsed query: the distinct stems a segment must all contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    terms: Vec<String>,
}

impl Query {
    /// Splits and stems `text` as the index does.
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let mut terms: Vec<String> = Vec::new();
        for term in terms::stems(text) {
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        if terms.is_empty() {
            return Err(QueryError::NoWords);
        }
        if terms.len() > MAX_QUERY_TERMS {
            return Err(QueryError::TooManyWords);
        }
        Ok(Self { terms })
    }

    /// The stems, in the order they first appear in the query.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// `text` split into pieces, the words whose stem is one of the query's marked.
    pub fn snippet(&self, text: &str) -> Vec<Piece> {
        snippet(text, &self.terms)
    }
}

/// A hit as a result list shows it: the segment and its call, and its snippet.
#[derive(Debug, Clone)]
pub struct Found {
    /// The segment and its call.
    pub hit: SearchHit,
    /// Its text in pieces, the query's words marked.
    pub snippet: Vec<Piece>,
}

/// A page of hits.
#[derive(Debug, Clone)]
pub struct Page {
    /// Newest call first, then by call and place in the call.
    pub found: Vec<Found>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<SearchCursor>,
}

/// The page of segments that `filter` selects and that hold every word of `query`, with
/// their snippets (computed for this page only). The caller has applied the role rule to
/// `filter`; `redact` names the kinds of personal data the reader may not see in a hit.
pub async fn find(
    store: &Store,
    query: &Query,
    filter: &SearchFilter,
    redact: &[Kind],
) -> Result<Page, StoreError> {
    // One more than the page: whether another page follows is then known, not guessed.
    let wanted = SearchFilter {
        limit: filter.limit + 1,
        ..filter.clone()
    };
    let mut hits = store.search_segments(query.terms(), &wanted).await?;
    let more = hits.len() as i64 > filter.limit;
    hits.truncate(usize::try_from(filter.limit).unwrap_or(0));
    let next = more.then(|| hits.last().map(SearchHit::cursor)).flatten();
    let found = hits
        .into_iter()
        .map(|mut hit| {
            if !redact.is_empty() {
                hit.text = redact_text(&hit.text, redact);
            }
            Found {
                snippet: query.snippet(&hit.text),
                hit,
            }
        })
        .collect();
    Ok(Page { found, next })
}

/// Transcripts indexed per transaction by [`index_backlog`]: small, so that uploads and
/// finished jobs never wait long for the SQLite write turn.
const BACKLOG_BATCH: i64 = 8;
/// How long [`index_backlog`] waits after a failed batch before trying again.
const BACKLOG_RETRY: Duration = Duration::from_secs(60);

/// Indexes every transcript the search index does not hold at [`INDEX_VERSION`] (saved before
/// the index existed, or by an older version of [`terms`]), a few per transaction, until none
/// is left or `shutdown` fires. Idempotent: each transcript's rows and its marker are written
/// in one transaction, so a restart goes on where the last one stopped.
pub async fn index_backlog(store: Store, shutdown: CancellationToken) {
    let mut after = String::new();
    let mut indexed = 0usize;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        match store.index_pending_transcripts(&after, BACKLOG_BATCH).await {
            Ok(Some((last, batch))) => {
                if indexed / 1000 != (indexed + batch) / 1000 {
                    info!(
                        transcripts = indexed + batch,
                        "indexing earlier transcripts for search"
                    );
                }
                indexed += batch;
                after = last;
            }
            Ok(None) => {
                store.mark_search_index_current();
                break;
            }
            Err(e) => {
                warn!(error = %e, "indexing earlier transcripts for search failed; trying again later");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(BACKLOG_RETRY) => {}
                }
            }
        }
        // Let requests and jobs have the write turn between batches.
        tokio::task::yield_now().await;
    }
    if indexed > 0 {
        info!(
            transcripts = indexed,
            "earlier transcripts indexed for search"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_its_distinct_stems_and_needs_at_least_one() {
        let q = Query::parse("Цену, цены и ЦЕНА: pricing prices").expect("words");
        assert_eq!(q.terms(), ["цен", "и", "price"]);
        assert_eq!(Query::parse(" ,.!? "), Err(QueryError::NoWords));
        assert_eq!(Query::parse(""), Err(QueryError::NoWords));
        let many: Vec<String> = (0..=MAX_QUERY_TERMS).map(|n| format!("w{n}")).collect();
        assert_eq!(Query::parse(&many.join(" ")), Err(QueryError::TooManyWords));
    }
}
