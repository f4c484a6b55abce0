//! One table model: rows of cells (the text shown, the raw figure, KPI attributes, a link),
//! rendered as the HTML table and as the `format=csv` download, so the CSV holds exactly what
//! the table shows.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::figures::{raw, show, Fmt};
use crate::http::ApiError;
use crate::web::i18n::Lang;

/// A table cell: the text shown (and exported), and the raw figure with its KPI attributes.
#[derive(Serialize, Default, Clone)]
pub(super) struct Cell {
    pub(super) text: String,
    /// `data-value`, and the sort key.
    pub(super) raw: Option<String>,
    pub(super) kpi: Option<String>,
    pub(super) manager: Option<String>,
    pub(super) team: Option<String>,
    pub(super) href: Option<String>,
    /// An attention flag fires on this figure.
    pub(super) flag: bool,
    /// `num` for right-aligned figures.
    pub(super) class: &'static str,
}

impl Cell {
    pub(super) fn text(s: impl Into<String>) -> Self {
        Self {
            text: s.into(),
            ..Default::default()
        }
    }

    pub(super) fn link(s: impl Into<String>, href: String) -> Self {
        Self {
            href: Some(href),
            ..Self::text(s)
        }
    }

    pub(super) fn figure(lang: Lang, fmt: Fmt, v: Option<f64>) -> Self {
        Self {
            text: show(lang, fmt, v),
            raw: Some(raw(v)),
            class: "num",
            ..Default::default()
        }
    }

    pub(super) fn kpi(mut self, kpi: &str, manager: Option<&str>, team: Option<&str>) -> Self {
        self.kpi = Some(kpi.to_string());
        self.manager = manager.map(str::to_string);
        self.team = team.map(str::to_string);
        self
    }
}

/// A table as shown and as downloaded.
#[derive(Serialize)]
pub(super) struct Table {
    pub(super) id: &'static str,
    pub(super) head: Vec<String>,
    /// Right-aligned columns.
    pub(super) num: Vec<bool>,
    pub(super) rows: Vec<Vec<Cell>>,
    /// A last row (the team average), not sorted with the rest.
    pub(super) foot: Option<Vec<Cell>>,
    pub(super) csv: String,
}

impl Table {
    pub(super) fn new(id: &'static str, head: Vec<String>, here: &str) -> Self {
        let sep = if here.contains('?') { '&' } else { '?' };
        Self {
            id,
            num: vec![false; head.len()],
            head,
            rows: Vec::new(),
            foot: None,
            csv: format!("{here}{sep}format=csv&table={id}"),
        }
    }

    /// The table as CSV: UTF-8 with a BOM (so Excel reads Russian), exactly the texts shown.
    pub(super) fn to_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
        w.write_record(&self.head)?;
        for row in self.rows.iter().chain(self.foot.iter()) {
            w.write_record(row.iter().map(|c| c.text.as_str()))?;
        }
        w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
    }
}

pub(super) fn csv_response(table: &Table, name: &str) -> Response {
    match table.to_csv() {
        Ok(bytes) => {
            let mut r = bytes.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            if let Ok(v) =
                HeaderValue::from_str(&format!("attachment; filename=\"{name}-{}.csv\"", table.id))
            {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::dashboard::figures::Fmt;
    use crate::web::i18n::Lang;

    #[test]
    fn a_table_downloads_as_exactly_its_texts_with_a_bom() {
        let mut t = Table::new(
            "x",
            vec!["Менеджер".into(), "Win rate".into()],
            "/dashboard?period=this_month",
        );
        assert_eq!(t.csv, "/dashboard?period=this_month&format=csv&table=x");
        t.rows.push(vec![
            Cell::text("Анна, \"East\""),
            Cell::figure(Lang::Ru, Fmt::Percent, Some(0.5)),
        ]);
        let bytes = t.to_csv().expect("csv");
        assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF]);
        let text = std::str::from_utf8(&bytes[3..]).expect("utf-8");
        assert_eq!(
            text,
            "Менеджер,Win rate\n\"Анна, \"\"East\"\"\",\"50,0%\"\n"
        );
    }
}
