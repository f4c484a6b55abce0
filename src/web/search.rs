//! `/search`: words across the calls the signed-in user may see (the API's `/api/v1/search`
//! with the calls page's role rule: a manager's search covers their own calls, whatever the
//! form asks).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

use super::i18n::{self, Lang};
use super::session::{urlencode, WebUser};
use super::{render, Nonce, PageCtx};
use crate::domain::{to_datetime, ManagerId, Speaker};
use crate::http::search::page_url;
use crate::http::AppState;
use crate::search::{self, Found, Piece, QueryError};
use crate::store::SearchFilter;

/// Hits per page.
const PAGE_SIZE: i64 = 20;

/// The search page's routes (merged in `web::routes`).
pub fn routes() -> Router<AppState> {
    Router::new().route("/search", get(search_page))
}

/// The form, as the address carries it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct SearchForm {
    #[serde(default)]
    q: String,
    #[serde(default)]
    manager: String,
    #[serde(default)]
    speaker: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
}

impl SearchForm {
    fn link(&self) -> String {
        let query = [
            ("q", &self.q),
            ("manager", &self.manager),
            ("speaker", &self.speaker),
            ("from", &self.from),
            ("to", &self.to),
            ("cursor", &self.cursor),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
        if query.is_empty() {
            "/search".to_string()
        } else {
            format!("/search?{query}")
        }
    }
}

/// One hit, ready to show.
#[derive(Serialize)]
struct HitLine {
    href: String,
    title: Option<String>,
    manager: String,
    when_iso: String,
    when_text: String,
    has_start: bool,
    speaker: &'static str,
    time: String,
    snippet: Vec<Piece>,
}

fn hit_line(found: Found, lang: Lang) -> HitLine {
    let h = found.hit;
    let when = to_datetime(h.call_at);
    HitLine {
        href: page_url(h.call_id, h.start_ms),
        title: h.original_filename,
        manager: h.manager_id.to_string(),
        when_iso: when.to_rfc3339(),
        when_text: when.format("%Y-%m-%d %H:%M UTC").to_string(),
        has_start: h.started_at.is_some(),
        speaker: lang.t(&format!("speaker_{}", h.speaker.as_str())),
        time: i18n::duration(h.start_ms),
        snippet: found.snippet,
    }
}

async fn search_page(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Query(form): Query<SearchForm>,
) -> Response {
    let lang = web.lang;
    let searched = !form.q.trim().is_empty();
    let mut hits: Vec<HitLine> = Vec::new();
    let mut next_link = None;
    let error = if searched {
        match parse(&form, &web) {
            Ok((query, filter)) => match search::find(
                &state.store,
                &query,
                &filter,
                state.config.redaction.hidden_from(web.user.role),
            )
            .await
            {
                Ok(page) => {
                    next_link = page.next.map(|c| {
                        SearchForm {
                            cursor: c.to_string(),
                            ..form.clone()
                        }
                        .link()
                    });
                    hits = page.found.into_iter().map(|f| hit_line(f, lang)).collect();
                    None
                }
                Err(e) => return crate::http::ApiError::from(e).into_response(),
            },
            Err(e) => Some(e),
        }
    } else {
        None
    };
    let first_page_link = (!form.cursor.is_empty()).then(|| {
        SearchForm {
            cursor: String::new(),
            ..form.clone()
        }
        .link()
    });
    let speakers: Vec<Value> = Speaker::ALL
        .iter()
        .map(|s| context! { code => s.as_str(), label => lang.t(&format!("speaker_{}", s.as_str())) })
        .collect();
    let here = form.link();
    let ctx = PageCtx {
        lang,
        nonce: &nonce,
        user: Some(&web.user),
        here: &here,
        page: "search",
    };
    let mut response = render(
        "search.html",
        ctx,
        context! {
            filter => &form,
            scoped => web.principal.scope().is_some(),
            speakers => speakers,
            searched => searched,
            hits => hits,
            next_link => next_link,
            first_page_link => first_page_link,
            error => error,
        },
    );
    if error.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

/// The query and the store filter of the form, with the calls page's role rule; an input that
/// does not parse is an error to show, in the user's language.
fn parse(form: &SearchForm, web: &WebUser) -> Result<(search::Query, SearchFilter), String> {
    let lang = web.lang;
    let query = search::Query::parse(&form.q).map_err(|e| {
        lang.t(match e {
            QueryError::NoWords => "search_no_words",
            QueryError::TooManyWords => "search_too_many_words",
        })
        .to_string()
    })?;
    let requested = (!form.manager.trim().is_empty())
        .then(|| ManagerId::parse(&form.manager))
        .transpose()
        .map_err(|e| format!("{}: {e}", lang.t("filter_manager")))?;
    let speaker = (!form.speaker.is_empty())
        .then(|| form.speaker.parse::<Speaker>())
        .transpose()
        .map_err(|e| format!("{}: {e}", lang.t("search_speaker")))?;
    let day = |s: &str, label: &str| {
        crate::domain::parse_day(s)
            .map(crate::domain::day_start)
            .map_err(|e| format!("{}: {e}", lang.t(label)))
    };
    let from = (!form.from.is_empty())
        .then(|| day(&form.from, "filter_from"))
        .transpose()?;
    // The end date is inclusive in the UI, as on the calls page.
    let to = (!form.to.is_empty())
        .then(|| day(&form.to, "filter_to").map(|t| t + crate::store::DAY_MS))
        .transpose()?;
    let after = (!form.cursor.is_empty())
        .then(|| form.cursor.parse())
        .transpose()
        .map_err(|_| "cursor".to_string())?;
    let filter = SearchFilter {
        manager_id: web.principal.scope().cloned().or(requested),
        speaker,
        from,
        to,
        after,
        limit: PAGE_SIZE,
    };
    Ok((query, filter))
}
