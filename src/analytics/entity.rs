//! The CRM files of the data contract: which file holds which entity, its columns, its key, and
//! how one CSV cell is checked and turned into a stored value.
//!
//! One table describes every file, so import, upsert and validation are written once and the
//! contract can be read off [`Entity::columns`].

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{parse_day, parse_instant, text_enum, ParseError};

text_enum!(
    /// A CRM file, named after the entity it holds (`deals.csv` holds deals).
    Entity {
        /// managers.csv
        Managers => "managers",
        /// customers.csv
        Customers => "customers",
        /// leads.csv
        Leads => "leads",
        /// deals.csv
        Deals => "deals",
        /// deal_stages.csv
        DealStages => "deal_stages",
        /// activities.csv
        Activities => "activities",
        /// plans.csv
        Plans => "plans",
    }
);

text_enum!(
    /// Where a deal stands.
    DealStatus {
        /// Still being worked.
        Open => "open",
        /// Closed and won.
        Won => "won",
        /// Closed and lost.
        Lost => "lost",
    }
);

text_enum!(
    /// What kind of touch an activity was.
    ActivityType {
        /// Phone call.
        Call => "call",
        /// E-mail.
        Email => "email",
        /// Meeting.
        Meeting => "meeting",
        /// Product demo.
        Demo => "demo",
        /// Proposal sent.
        Proposal => "proposal",
        /// Chat or messenger message.
        Message => "message",
    }
);

text_enum!(
    /// Whether a touch moved the deal on.
    Outcome {
        /// It did.
        Productive => "productive",
        /// It did not.
        Unproductive => "unproductive",
    }
);

text_enum!(
    /// What a plan row sets a target for.
    PlanMetric {
        /// Call activities.
        Calls => "calls",
        /// E-mail activities.
        Emails => "emails",
        /// Meetings.
        Meetings => "meetings",
        /// Demos.
        Demos => "demos",
        /// Proposals.
        Proposals => "proposals",
        /// Messages.
        Messages => "messages",
        /// Deals won (by closed_at).
        DealsWon => "deals_won",
        /// Sum of won deals' amounts.
        Revenue => "revenue",
    }
);

impl PlanMetric {
    /// The activity type this metric counts, if it counts activities.
    pub fn activity_type(self) -> Option<ActivityType> {
        match self {
            PlanMetric::Calls => Some(ActivityType::Call),
            PlanMetric::Emails => Some(ActivityType::Email),
            PlanMetric::Meetings => Some(ActivityType::Meeting),
            PlanMetric::Demos => Some(ActivityType::Demo),
            PlanMetric::Proposals => Some(ActivityType::Proposal),
            PlanMetric::Messages => Some(ActivityType::Message),
            PlanMetric::DealsWon | PlanMetric::Revenue => None,
        }
    }
}

/// How a cell is checked and stored.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Free text, stored as is (trimmed).
    Text,
    /// A manager id that must be in managers.csv (imported earlier or in the same folder).
    KnownManager,
    /// RFC 3339 timestamp, stored as Unix ms UTC.
    Time,
    /// `YYYY-MM-DD`, stored as text.
    Date,
    /// A decimal number.
    Real,
    /// A whole number.
    Int,
    /// One of a closed set; the function checks it and returns the stored form; the second
    /// lists the values allowed.
    Enum(
        fn(&str) -> Result<&'static str, ParseError>,
        fn() -> Vec<&'static str>,
    ),
}

/// One column of a CRM file.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header name, also the stored column's name.
    pub name: &'static str,
    /// How it is checked.
    pub kind: Kind,
    /// Whether an empty cell rejects the row.
    pub required: bool,
    /// Part of the upsert key.
    pub key: bool,
}

const fn col(name: &'static str, kind: Kind, required: bool, key: bool) -> Column {
    Column {
        name,
        kind,
        required,
        key,
    }
}

fn deal_status(s: &str) -> Result<&'static str, ParseError> {
    s.parse::<DealStatus>().map(DealStatus::as_str)
}
fn deal_statuses() -> Vec<&'static str> {
    DealStatus::ALL.iter().map(|v| v.as_str()).collect()
}
fn activity_type(s: &str) -> Result<&'static str, ParseError> {
    s.parse::<ActivityType>().map(ActivityType::as_str)
}
fn activity_types() -> Vec<&'static str> {
    ActivityType::ALL.iter().map(|v| v.as_str()).collect()
}
fn outcome(s: &str) -> Result<&'static str, ParseError> {
    s.parse::<Outcome>().map(Outcome::as_str)
}
fn outcomes() -> Vec<&'static str> {
    Outcome::ALL.iter().map(|v| v.as_str()).collect()
}
fn plan_metric(s: &str) -> Result<&'static str, ParseError> {
    s.parse::<PlanMetric>().map(PlanMetric::as_str)
}
fn plan_metrics() -> Vec<&'static str> {
    PlanMetric::ALL.iter().map(|v| v.as_str()).collect()
}

use Kind::{Date, Int, KnownManager, Real, Text, Time};

const MANAGERS: &[Column] = &[
    col("manager_id", Text, true, true),
    col("name", Text, true, false),
    col("team", Text, false, false),
    col("email", Text, false, false),
];
const CUSTOMERS: &[Column] = &[
    col("customer_id", Text, true, true),
    col("name", Text, false, false),
    col("segment", Text, false, false),
];
const LEADS: &[Column] = &[
    col("lead_id", Text, true, true),
    col("created_at", Time, true, false),
    col("source", Text, false, false),
    col("manager_id", KnownManager, false, false),
    col("first_response_at", Time, false, false),
    col("mql_at", Time, false, false),
    col("sql_at", Time, false, false),
    col("customer_id", Text, false, false),
];
const DEALS: &[Column] = &[
    col("deal_id", Text, true, true),
    col("manager_id", KnownManager, true, false),
    col("created_at", Time, true, false),
    col(
        "status",
        Kind::Enum(deal_status, deal_statuses),
        true,
        false,
    ),
    col("customer_id", Text, false, false),
    col("lead_id", Text, false, false),
    col("closed_at", Time, false, false),
    col("amount", Real, false, false),
    col("currency", Text, false, false),
    col("lost_reason", Text, false, false),
];
const DEAL_STAGES: &[Column] = &[
    col("deal_id", Text, true, true),
    col("stage", Text, true, true),
    col("entered_at", Time, true, false),
];
const ACTIVITIES: &[Column] = &[
    col("activity_id", Text, true, true),
    col("manager_id", KnownManager, true, false),
    col(
        "type",
        Kind::Enum(activity_type, activity_types),
        true,
        false,
    ),
    col("at", Time, true, false),
    col("deal_id", Text, false, false),
    col("outcome", Kind::Enum(outcome, outcomes), false, false),
    col("duration_s", Int, false, false),
];
const PLANS: &[Column] = &[
    col("manager_id", KnownManager, true, true),
    col("period_start", Date, true, true),
    col("period_end", Date, true, true),
    col("metric", Kind::Enum(plan_metric, plan_metrics), true, true),
    col("target", Real, true, false),
];

impl Entity {
    /// Files of a folder are imported in this order, so managers exist before what refers to them.
    pub const IMPORT_ORDER: &'static [Entity] = Entity::ALL;

    /// The entity a file holds, from its name (`deals.csv` -> deals).
    pub fn from_path(path: &Path) -> Option<Entity> {
        let ext = path.extension()?.to_str()?;
        if !ext.eq_ignore_ascii_case("csv") {
            return None;
        }
        path.file_stem()?
            .to_str()?
            .to_ascii_lowercase()
            .parse()
            .ok()
    }

    /// The file's columns, in the stored table's order.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Entity::Managers => MANAGERS,
            Entity::Customers => CUSTOMERS,
            Entity::Leads => LEADS,
            Entity::Deals => DEALS,
            Entity::DealStages => DEAL_STAGES,
            Entity::Activities => ACTIVITIES,
            Entity::Plans => PLANS,
        }
    }

    /// The table the rows go to.
    pub fn table(self) -> &'static str {
        match self {
            Entity::Managers => "crm_managers",
            Entity::Customers => "crm_customers",
            Entity::Leads => "crm_leads",
            Entity::Deals => "crm_deals",
            Entity::DealStages => "crm_deal_stages",
            Entity::Activities => "crm_activities",
            Entity::Plans => "crm_plans",
        }
    }
}

/// A checked cell, ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text or NULL.
    Text(Option<String>),
    /// Whole number (also timestamps in ms) or NULL.
    Int(Option<i64>),
    /// Decimal or NULL.
    Real(Option<f64>),
}

text_enum!(
    /// What was wrong with a refused row, as a stable code: the API's `code`, which the web
    /// app words in the reader's language (the API's `reason` stays in English).
    Problem {
        /// The header row cannot be read.
        UnreadableHeader => "unreadable_header",
        /// The file cannot be read from this line on (a broken quote, invalid UTF-8).
        UnreadableCsv => "unreadable_csv",
        /// A required column is not in the header.
        MissingColumn => "missing_column",
        /// A required cell is empty.
        Empty => "empty",
        /// A cell is longer than the longest accepted (64 KiB).
        TooLong => "too_long",
        /// A cell holds NUL or another non-printing control character.
        ControlCharacter => "control_character",
        /// A manager id that managers.csv does not have.
        UnknownManager => "unknown_manager",
        /// Not an RFC 3339 time.
        BadTime => "bad_time",
        /// Not a `YYYY-MM-DD` date.
        BadDate => "bad_date",
        /// Not a number.
        NotANumber => "not_a_number",
        /// Not a finite number.
        NotFinite => "not_finite",
        /// Not a whole number.
        NotWhole => "not_whole",
        /// Not one of the allowed values (`expected` lists them).
        BadChoice => "bad_choice",
        /// A period that ends before it starts.
        EndBeforeStart => "end_before_start",
    }
);

/// Why one cell was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct CellError {
    /// The column.
    pub column: &'static str,
    /// What was wrong.
    pub problem: Problem,
    /// Why, in words a CRM admin can act on.
    pub reason: String,
    /// The values allowed, for [`Problem::BadChoice`].
    pub expected: Option<String>,
}

impl CellError {
    fn new(column: &'static str, problem: Problem, reason: String) -> Self {
        Self {
            column,
            problem,
            reason,
            expected: None,
        }
    }
}

impl Column {
    /// Checks one cell (`None` when the file has no such column).
    pub fn check(
        &self,
        cell: Option<&str>,
        managers: &HashSet<String>,
    ) -> Result<Value, CellError> {
        let fail = |problem: Problem, reason: String| CellError::new(self.name, problem, reason);
        let cell = cell.map(str::trim).filter(|c| !c.is_empty());
        let Some(cell) = cell else {
            if self.required {
                return Err(fail(Problem::Empty, "required value is empty".into()));
            }
            return Ok(match self.kind {
                Kind::Time | Kind::Int => Value::Int(None),
                Kind::Real => Value::Real(None),
                _ => Value::Text(None),
            });
        };
        if cell.len() > MAX_CELL_BYTES {
            return Err(fail(
                Problem::TooLong,
                format!(
                    "the value is {} bytes long; a cell may hold at most {MAX_CELL_BYTES}",
                    cell.len()
                ),
            ));
        }
        if let Some(c) = cell.chars().find(|&c| is_forbidden_control(c)) {
            return Err(fail(
                Problem::ControlCharacter,
                format!(
                    "contains the non-printing control character U+{:04X}",
                    u32::from(c)
                ),
            ));
        }
        Ok(match self.kind {
            Kind::Text => Value::Text(Some(cell.to_string())),
            Kind::KnownManager => {
                if !managers.contains(cell) {
                    return Err(fail(
                        Problem::UnknownManager,
                        format!(
                            "unknown manager {cell:?} (not in managers.csv; import managers first)"
                        ),
                    ));
                }
                Value::Text(Some(cell.to_string()))
            }
            Kind::Time => Value::Int(Some(
                parse_instant(cell).map_err(|r| fail(Problem::BadTime, r))?,
            )),
            Kind::Date => Value::Text(Some(
                parse_day(cell)
                    .map_err(|r| fail(Problem::BadDate, r))?
                    .format("%Y-%m-%d")
                    .to_string(),
            )),
            Kind::Real => {
                let v: f64 = cell
                    .parse()
                    .map_err(|_| fail(Problem::NotANumber, format!("not a number: {cell:?}")))?;
                if !v.is_finite() {
                    return Err(fail(
                        Problem::NotFinite,
                        format!("not a finite number: {cell:?}"),
                    ));
                }
                Value::Real(Some(v))
            }
            Kind::Int => Value::Int(Some(cell.parse().map_err(|_| {
                fail(Problem::NotWhole, format!("not a whole number: {cell:?}"))
            })?)),
            Kind::Enum(check, allowed) => Value::Text(Some(
                check(&cell.to_ascii_lowercase())
                    .map_err(|e| CellError {
                        expected: Some(allowed().join(", ")),
                        ..fail(Problem::BadChoice, e.0)
                    })?
                    .to_string(),
            )),
        })
    }
}

/// Longest cell accepted, in bytes: a lost reason or a name is short; a longer cell is a broken
/// export (an unclosed quote swallowing the rest of the file), and its row is refused.
pub const MAX_CELL_BYTES: usize = 64 << 10;

/// Tab, CR and LF are ordinary text inside an RFC 4180 quoted cell (a `lost_reason` written on
/// two lines); NUL, the other C0 controls, DEL and the C1 controls are not text.
fn is_forbidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// Checks rules that span cells of one row (after every cell passed).
pub fn check_row(entity: Entity, values: &[Value]) -> Result<(), CellError> {
    if entity == Entity::Plans {
        if let (Value::Text(Some(start)), Value::Text(Some(end))) = (&values[1], &values[2]) {
            // Both are normalised YYYY-MM-DD, so text order is date order.
            if end < start {
                return Err(CellError::new(
                    "period_end",
                    Problem::EndBeforeStart,
                    format!("period_end {end} is before period_start {start}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_name_entities() {
        assert_eq!(
            Entity::from_path(Path::new("x/Deal_Stages.CSV")),
            Some(Entity::DealStages)
        );
        assert_eq!(Entity::from_path(Path::new("x/deals.txt")), None);
        assert_eq!(Entity::from_path(Path::new("x/notes.csv")), None);
    }

    #[test]
    fn timestamps_with_offsets_become_utc_ms() {
        assert_eq!(
            parse_instant("2026-03-01T02:30:00+03:00"),
            parse_instant("2026-02-28T23:30:00Z")
        );
        assert!(parse_instant("2026-03-01 10:00").is_err());
    }

    #[test]
    fn cells_are_checked_by_kind() {
        let managers = HashSet::from(["m1".to_string()]);
        let status = DEALS[3];
        assert_eq!(
            status.check(Some("Won"), &managers),
            Ok(Value::Text(Some("won".into())))
        );
        assert!(status.check(Some("maybe"), &managers).is_err());
        assert!(status.check(Some(" "), &managers).is_err());
        let manager = DEALS[1];
        assert!(manager.check(Some("m2"), &managers).is_err());
        assert_eq!(
            DEALS[7].check(None, &managers),
            Ok(Value::Real(None)),
            "an optional column missing from the file is NULL"
        );
    }
}
