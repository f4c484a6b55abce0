//! The KPI queries: each filters one CRM table by a time range and a scope, and aggregates in
//! the database where a count or a sum is enough; durations come back as rows for medians.
//!
//! Placeholders: `$1` = from, `$2` = to (Unix ms), `$3` = the scope's manager or team, bound
//! only when there is a scope.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::QueryAs;
use sqlx::{Any, AnyPool, Encode, FromRow, Type};

use super::memo::Depends;
use super::{Store, StoreError, Tally};
use crate::analytics::entity::{ActivityType, DealStatus, PlanMetric};

/// Whose figures a query counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KpiScope {
    /// Everyone (leads without a manager included).
    All,
    /// One manager's leads, deals and activities.
    Manager(String),
    /// The leads, deals and activities of the managers of one team.
    Team(String),
    /// The leads, deals and activities of these managers: a team resolved by
    /// [`Store::resolve_scope`], so every probe uses the `(manager_id, time)` indexes instead of
    /// a subquery the planner may turn into a scan.
    Managers(Vec<String>),
}

impl KpiScope {
    /// `AND <column> ...` restricting `column` (a manager id) to the scope.
    pub(super) fn filter(&self, column: &str) -> String {
        match self {
            KpiScope::All => String::new(),
            KpiScope::Manager(_) => format!(" AND {column} = $3"),
            KpiScope::Team(_) => {
                format!(" AND {column} IN (SELECT manager_id FROM crm_managers WHERE team = $3)")
            }
            KpiScope::Managers(ids) if ids.is_empty() => " AND 1 = 0".to_string(),
            KpiScope::Managers(ids) => {
                let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
                format!(" AND {column} IN ({})", list.join(", "))
            }
        }
    }

    /// The scope's query: `sql` with `$1` = `from`, `$2` = `to` and the scope's values after
    /// them, each row decoded as `T`.
    fn query_as<'q, T, B>(
        &'q self,
        sql: &'q str,
        from: B,
        to: B,
    ) -> QueryAs<'q, Any, T, AnyArguments<'q>>
    where
        T: for<'r> FromRow<'r, AnyRow>,
        B: 'q + Send + Encode<'q, Any> + Type<Any>,
    {
        let q = sqlx::query_as(sql).bind(from).bind(to);
        match self {
            KpiScope::All => q,
            KpiScope::Manager(m) => q.bind(m.as_str()),
            KpiScope::Team(t) => q.bind(t.as_str()),
            KpiScope::Managers(ids) => ids.iter().fold(q, |q, m| q.bind(m.as_str())),
        }
    }

    /// Every row of the scope's query (see [`KpiScope::query_as`]): the one shape of an
    /// analytics read.
    pub(super) async fn fetch_all<'q, T, B>(
        &'q self,
        pool: &AnyPool,
        sql: &'q str,
        from: B,
        to: B,
    ) -> Result<Vec<T>, StoreError>
    where
        T: Send + Unpin + for<'r> FromRow<'r, AnyRow>,
        B: 'q + Send + Encode<'q, Any> + Type<Any>,
    {
        Ok(self.query_as(sql, from, to).fetch_all(pool).await?)
    }
}

/// How a KPI query's rows are keyed: one total for the scope, or one row (or set of rows) per
/// manager, so a page of 200 managers is a dozen grouped reads instead of 2,400 small ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KpiKey {
    /// One key, NULL, for the whole scope.
    Total,
    /// The manager of each row (calls without a manager under NULL).
    Manager,
}

impl KpiKey {
    /// The key as the first item of a select list, named `manager_id`; `column` is the row's
    /// manager.
    pub(super) fn select(self, column: &str) -> String {
        match self {
            KpiKey::Total => "CAST(NULL AS TEXT) AS manager_id".to_string(),
            KpiKey::Manager => format!("{column} AS manager_id"),
        }
    }

    /// ` GROUP BY` the key and then `rest` (empty when there is nothing to group by).
    pub(super) fn group_by(self, column: &str, rest: &[&str]) -> String {
        let mut terms: Vec<&str> = Vec::with_capacity(rest.len() + 1);
        if self == KpiKey::Manager {
            terms.push(column);
        }
        terms.extend_from_slice(rest);
        if terms.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", terms.join(", "))
        }
    }
}

/// A won deal as the KPIs need it.
#[derive(Debug, Clone, FromRow)]
pub struct WonDeal {
    /// The key (see [`KpiKey`]).
    pub manager_id: Option<String>,
    /// Created at (ms).
    pub created_at: i64,
    /// Closed at (ms).
    pub closed_at: i64,
    /// Amount, if known.
    pub amount: Option<f64>,
}

/// A lead as the KPIs need it.
#[derive(Debug, Clone, FromRow)]
pub struct LeadTimes {
    /// The key (see [`KpiKey`]).
    pub manager_id: Option<String>,
    /// Created at (ms).
    pub created_at: i64,
    /// First response (ms).
    pub first_response_at: Option<i64>,
    /// When it became an MQL.
    pub mql_at: Option<i64>,
    /// When it became an SQL.
    pub sql_at: Option<i64>,
}

/// A manager as managers.csv describes them.
#[derive(Debug, Clone, FromRow)]
pub struct CrmManager {
    /// The id calls and CRM rows carry.
    pub manager_id: String,
    /// Their name.
    pub name: String,
    /// Their team.
    pub team: Option<String>,
}

/// Activities of one type in a period.
#[derive(Debug, Clone, FromRow)]
pub struct ActivityCount {
    /// The key (see [`KpiKey`]).
    pub manager_id: Option<String>,
    /// The type.
    pub kind: ActivityType,
    /// All of them.
    pub total: i64,
    /// With outcome productive.
    pub productive: i64,
}

/// A plan row overlapping a period.
#[derive(Debug, Clone, FromRow)]
pub struct PlanRow {
    /// The manager.
    pub manager_id: String,
    /// First day (YYYY-MM-DD).
    pub period_start: String,
    /// Last day, inclusive.
    pub period_end: String,
    /// The metric.
    pub metric: PlanMetric,
    /// Target.
    pub target: f64,
}

/// SQL literal for a configured stage name.
pub(super) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Store {
    /// Per team of managers.csv over `[from, to)`: (customers with a deal of the team won in
    /// the period, those of them with two or more won deals of the team closed before `to`,
    /// activities of the team's managers on deals of the team won in the period). The same
    /// figures as [`Store::kpi_repeat_customers`] and [`Store::kpi_activities_on_won`] for
    /// each team alone, in two reads instead of two per team: each of those ranges over
    /// every won deal closed before `to`.
    ///
    /// `teams` is [`KpiScope::All`] for every team, or [`KpiScope::Team`] for one.
    pub async fn kpi_team_extras(
        &self,
        teams: &KpiScope,
        from: i64,
        to: i64,
    ) -> Result<HashMap<String, (i64, i64, i64)>, StoreError> {
        let customers = format!(
            "SELECT team, COUNT(*) AS customers, COUNT(CASE WHEN n >= 2 THEN 1 END) AS repeaters \
             FROM (SELECT m.team AS team, d.customer_id, COUNT(*) AS n \
                   FROM crm_deals d JOIN crm_managers m ON m.manager_id = d.manager_id \
                   WHERE d.status = '{won}' AND d.customer_id IS NOT NULL AND d.closed_at < $2 \
                     AND m.team IS NOT NULL{filter} \
                   GROUP BY m.team, d.customer_id HAVING MAX(d.closed_at) >= $1) t \
             GROUP BY team",
            won = DealStatus::Won,
            filter = teams.filter("d.manager_id"),
        );
        let on_won = format!(
            "SELECT ma.team AS team, COUNT(*) AS n \
             FROM crm_activities a JOIN crm_deals d ON d.deal_id = a.deal_id \
             JOIN crm_managers ma ON ma.manager_id = a.manager_id \
             JOIN crm_managers md ON md.manager_id = d.manager_id \
             WHERE a.at >= $1 AND a.at < $2 AND d.status = '{won}' \
               AND d.closed_at >= $1 AND d.closed_at < $2 AND ma.team = md.team{filter}{deals} \
             GROUP BY ma.team",
            won = DealStatus::Won,
            filter = teams.filter("a.manager_id"),
            // Implied by the same team, but it lets the planner start from the team's won deals
            // instead of every won deal of the period (SQLite: 5-33 ms -> 0.1-1.7 ms a team).
            deals = teams.filter("d.manager_id"),
        );
        let (customers, on_won) = tokio::try_join!(
            teams.fetch_all::<(String, i64, i64), _>(&self.pool, &customers, from, to),
            teams.fetch_all::<(String, i64), _>(&self.pool, &on_won, from, to),
        )?;
        let mut out: HashMap<String, (i64, i64, i64)> = HashMap::new();
        for (team, c, r) in customers {
            let e = out.entry(team).or_default();
            (e.0, e.1) = (c, r);
        }
        for (team, n) in on_won {
            out.entry(team).or_default().2 = n;
        }
        Ok(out)
    }

    /// Deals closed in `[from, to)`: (key, won, lost).
    pub async fn kpi_closed(
        &self,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<Vec<(Option<String>, i64, i64)>, StoreError> {
        let sql = format!(
            "SELECT {}, COUNT(CASE WHEN status = '{}' THEN 1 END) AS won, \
                    COUNT(CASE WHEN status = '{}' THEN 1 END) AS lost \
             FROM crm_deals d WHERE d.closed_at >= $1 AND d.closed_at < $2{}{}",
            key.select("d.manager_id"),
            DealStatus::Won,
            DealStatus::Lost,
            scope.filter("d.manager_id"),
            key.group_by("d.manager_id", &[])
        );
        scope.fetch_all(&self.pool, &sql, from, to).await
    }

    /// Deals won (closed) in `[from, to)`.
    pub async fn kpi_won_deals(
        &self,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<Vec<WonDeal>, StoreError> {
        let sql = format!(
            "SELECT {}, created_at, closed_at, amount FROM crm_deals d \
             WHERE d.status = '{}' AND d.closed_at >= $1 AND d.closed_at < $2{}",
            key.select("d.manager_id"),
            DealStatus::Won,
            scope.filter("d.manager_id")
        );
        scope.fetch_all(&self.pool, &sql, from, to).await
    }

    /// Leads created in `[from, to)`.
    pub async fn kpi_leads(
        &self,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<Vec<LeadTimes>, StoreError> {
        let sql = format!(
            "SELECT {}, created_at, first_response_at, mql_at, sql_at FROM crm_leads l \
             WHERE l.created_at >= $1 AND l.created_at < $2{}",
            key.select("l.manager_id"),
            scope.filter("l.manager_id")
        );
        scope.fetch_all(&self.pool, &sql, from, to).await
    }

    /// Customers with a deal won in `[from, to)`: (key, all of them, those with 2+ won deals
    /// closed before `to`). Per manager, only that manager's deals count.
    pub async fn kpi_repeat_customers(
        &self,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<Vec<(Option<String>, i64, i64)>, StoreError> {
        let sql = format!(
            "SELECT manager_id, COUNT(*) AS customers, COUNT(CASE WHEN n >= 2 THEN 1 END) AS repeaters \
             FROM (SELECT {}, d.customer_id, COUNT(*) AS n FROM crm_deals d \
               WHERE d.status = '{}' AND d.customer_id IS NOT NULL AND d.closed_at < $2{}{} \
               HAVING MAX(d.closed_at) >= $1) t GROUP BY manager_id",
            key.select("d.manager_id"),
            DealStatus::Won,
            scope.filter("d.manager_id"),
            key.group_by("d.manager_id", &["d.customer_id"]),
        );
        scope.fetch_all(&self.pool, &sql, from, to).await
    }

    /// Activities in `[from, to)` by type: (type, all, productive), and those linked to deals
    /// won in the period.
    ///
    /// Per manager, an activity counts on a won deal only when the deal is the same manager's.
    pub async fn kpi_activities(
        &self,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<(Vec<ActivityCount>, Vec<(Option<String>, i64)>), StoreError> {
        let by_type = self.activity_counts(scope, key, from, to).await?;
        let on_won = self.kpi_activities_on_won(scope, key, from, to).await?;
        Ok((by_type, on_won))
    }

    /// Activities in `[from, to)` on deals won in the period, per key (per manager, only on
    /// the same manager's deals).
    pub async fn kpi_activities_on_won(
        &self,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<Vec<(Option<String>, i64)>, StoreError> {
        let same = match key {
            KpiKey::Total => "",
            KpiKey::Manager => " AND d.manager_id = a.manager_id",
        };
        let sql = format!(
            "SELECT {}, COUNT(*) AS n FROM crm_activities a JOIN crm_deals d ON d.deal_id = a.deal_id \
             WHERE a.at >= $1 AND a.at < $2 AND d.status = '{}' \
               AND d.closed_at >= $1 AND d.closed_at < $2{same}{}{}{}",
            key.select("a.manager_id"),
            DealStatus::Won,
            scope.filter("a.manager_id"),
            scope.filter("d.manager_id"),
            key.group_by("a.manager_id", &[])
        );
        scope.fetch_all(&self.pool, &sql, from, to).await
    }

    /// Deals open at the end of the period: created before `to` and still open, or closed at
    /// or after `to`. (key, count, count without an amount, sum of known amounts).
    pub async fn kpi_open_pipeline(
        &self,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<Vec<(Option<String>, i64, i64, f64)>, StoreError> {
        // `$1` is bound for the scope's placeholder numbering; the condition does not need it.
        // Two index ranges (migration 0016) instead of every deal created before `to`: the
        // open deals, and the closed ones closed at or after `to`.
        let sql = format!(
            "SELECT {}, COUNT(*) AS deals, COUNT(*) - COUNT(d.amount) AS without_amount, \
                    COALESCE(SUM(d.amount), 0.0) AS value \
             FROM (SELECT manager_id, amount FROM crm_deals \
                     WHERE status = '{open}' AND created_at < $2 AND $1 <= $2{filter} \
                   UNION ALL \
                   SELECT manager_id, amount FROM crm_deals \
                     WHERE status IN ('{won}', '{lost}') AND closed_at >= $2 AND created_at < $2{filter}) d{}",
            key.select("d.manager_id"),
            key.group_by("d.manager_id", &[]),
            filter = scope.filter("manager_id"),
            open = DealStatus::Open,
            won = DealStatus::Won,
            lost = DealStatus::Lost,
        );
        scope.fetch_all(&self.pool, &sql, from, to).await
    }

    /// Deals lost in `[from, to)` by their `lost_reason` as written (NULL for none).
    pub async fn kpi_lost_reasons(
        &self,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<Vec<(Option<String>, Option<String>, i64)>, StoreError> {
        let sql = format!(
            "SELECT {}, d.lost_reason AS reason, COUNT(*) AS n FROM crm_deals d \
             WHERE d.status = '{}' AND d.closed_at >= $1 AND d.closed_at < $2{}{}",
            key.select("d.manager_id"),
            DealStatus::Lost,
            scope.filter("d.manager_id"),
            key.group_by("d.manager_id", &["d.lost_reason"])
        );
        scope.fetch_all(&self.pool, &sql, from, to).await
    }

    /// Customers whose first won deal (of anyone's) closed in `[from, to)` and belongs to the
    /// scope. Ties at the same moment go to the smaller deal id, so a customer counts once.
    pub async fn kpi_new_customers(
        &self,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<Vec<(Option<String>, i64)>, StoreError> {
        let sql = format!(
            "SELECT {key}, COUNT(*) AS n FROM crm_deals d \
             WHERE d.status = '{won}' AND d.customer_id IS NOT NULL \
               AND d.closed_at >= $1 AND d.closed_at < $2{filter} \
               AND NOT EXISTS (SELECT 1 FROM crm_deals e \
                 WHERE e.customer_id = d.customer_id AND e.status = '{won}' \
                   AND (e.closed_at < d.closed_at OR (e.closed_at = d.closed_at AND e.deal_id < d.deal_id))){group}",
            key = key.select("d.manager_id"),
            won = DealStatus::Won,
            filter = scope.filter("d.manager_id"),
            group = key.group_by("d.manager_id", &[])
        );
        scope.fetch_all(&self.pool, &sql, from, to).await
    }

    /// Plan rows whose days `[first, last]` overlap the days `[first_day, last_day]`.
    pub async fn kpi_plans(
        &self,
        scope: &KpiScope,
        first_day: &str,
        last_day: &str,
    ) -> Result<Vec<PlanRow>, StoreError> {
        // The period's days take the places of from and to, so the scope stays $3.
        let sql = format!(
            "SELECT manager_id, period_start, period_end, metric, target FROM crm_plans p \
             WHERE p.period_end >= $1 AND p.period_start <= $2{} \
             ORDER BY manager_id, period_start, metric, period_end",
            scope.filter("p.manager_id")
        );
        scope.fetch_all(&self.pool, &sql, first_day, last_day).await
    }

    /// Activities in `[from, to)` per manager and type (the actuals of activity plans).
    pub async fn kpi_plan_activities(
        &self,
        scope: &KpiScope,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, ActivityType, i64)>, StoreError> {
        let counts = self
            .activity_counts(scope, KpiKey::Manager, from, to)
            .await?;
        Ok(counts
            .into_iter()
            .filter_map(|a| Some((a.manager_id?, a.kind, a.total)))
            .collect())
    }

    /// Deals won in `[from, to)` per manager: (manager, count, sum of known amounts).
    pub async fn kpi_plan_wins(
        &self,
        scope: &KpiScope,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, i64, Option<f64>)>, StoreError> {
        let sql = format!(
            "SELECT d.manager_id AS manager_id, COUNT(*) AS n, SUM(d.amount) AS revenue \
             FROM crm_deals d WHERE d.status = '{}' AND d.closed_at >= $1 AND d.closed_at < $2{} \
             GROUP BY d.manager_id",
            DealStatus::Won,
            scope.filter("d.manager_id")
        );
        scope.fetch_all(&self.pool, &sql, from, to).await
    }

    /// The scope with a team replaced by the list of its managers (see [`KpiScope::Managers`]).
    pub async fn resolve_scope(&self, scope: &KpiScope) -> Result<KpiScope, StoreError> {
        Ok(match scope {
            KpiScope::Team(t) => KpiScope::Managers(self.crm_managers_of(Some(t)).await?),
            other => other.clone(),
        })
    }

    /// The managers of a team, or all managers (sorted by id).
    /// Kept until the next import: a dashboard asks for its team's list once per figure.
    pub async fn crm_managers_of(&self, team: Option<&str>) -> Result<Vec<String>, StoreError> {
        let kept = self
            .memo(Depends::Crm)
            .await?
            .get(format!("managers of {team:?}"), Vec::len, || async {
                let query = match team {
                    Some(t) => sqlx::query_scalar(
                        "SELECT manager_id FROM crm_managers WHERE team = $1 ORDER BY manager_id",
                    )
                    .bind(t),
                    None => sqlx::query_scalar(
                        "SELECT manager_id FROM crm_managers ORDER BY manager_id",
                    ),
                };
                Ok(query.fetch_all(&self.pool).await?)
            })
            .await?;
        Ok((*kept).clone())
    }

    /// Scored calls per manager and week over days `[first, end)` (week 0 starts on `first`),
    /// summed in the database from the daily rollups, for the managers of `scope`.
    pub async fn weekly_quality_rows(
        &self,
        scope: &KpiScope,
        first: i64,
        end: i64,
    ) -> Result<Vec<(String, i64, Tally)>, StoreError> {
        let sql = format!(
            "SELECT manager_id, (day - $1) / 7 AS week, CAST(SUM(calls) AS BIGINT) AS calls, \
                    CAST(SUM(rated) AS BIGINT) AS rated, SUM(total) AS total \
             FROM quality_daily WHERE criterion_id = '' AND day >= $1 AND day < $2{} \
             GROUP BY 1, 2",
            scope.filter("manager_id")
        );
        let key = format!("weekly quality {scope:?} {first} {end}");
        let kept = self
            .memo(Depends::Quality)
            .await?
            .get(key, Vec::len, || async {
                let rows: Vec<(String, i64, i64, i64, f64)> =
                    scope.fetch_all(&self.pool, &sql, first, end).await?;
                Ok(rows
                    .into_iter()
                    .map(|(m, week, calls, rated, total)| {
                        let tally = Tally {
                            calls,
                            rated,
                            total,
                            met: 0,
                        };
                        (m, week, tally)
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        Ok((*kept).clone())
    }

    /// Deals of `scope` closed in `[from, to)` per manager and week (week 0 starts at `from`):
    /// (manager, week, won, closed). CRM rows only: kept until the next import.
    pub async fn weekly_closed_rows(
        &self,
        scope: &KpiScope,
        from: i64,
        to: i64,
    ) -> Result<Arc<Vec<(String, i64, i64, i64)>>, StoreError> {
        const WEEK_MS: i64 = 7 * super::DAY_MS;
        let sql = format!(
            "SELECT manager_id, (closed_at - $1) / {WEEK_MS} AS week, \
                    COUNT(CASE WHEN status = 'won' THEN 1 END) AS won, COUNT(*) AS closed \
             FROM crm_deals \
             WHERE closed_at >= $1 AND closed_at < $2 AND status IN ('won', 'lost'){} \
             GROUP BY 1, 2",
            scope.filter("manager_id")
        );
        let key = format!("weekly closed {from} {to} {scope:?}");
        self.memo(Depends::Crm)
            .await?
            .get(key, Vec::len, || async {
                scope.fetch_all(&self.pool, &sql, from, to).await
            })
            .await
    }

    /// Every manager of managers.csv with name and team (sorted by id).
    pub async fn crm_manager_directory(&self) -> Result<Vec<CrmManager>, StoreError> {
        let kept = self
            .memo(Depends::Crm)
            .await?
            .get("manager directory".to_string(), Vec::len, || async {
                Ok(sqlx::query_as(
                    "SELECT manager_id, name, team FROM crm_managers ORDER BY manager_id",
                )
                .fetch_all(&self.pool)
                .await?)
            })
            .await?;
        Ok((*kept).clone())
    }

    /// Every team named in managers.csv (sorted).
    pub async fn crm_teams(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT team FROM crm_managers WHERE team IS NOT NULL ORDER BY team",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// A manager's name from managers.csv, when the manager is there (the roles rule of a
    /// separated mono call listens for it).
    pub async fn crm_manager_name(&self, manager: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT name FROM crm_managers WHERE manager_id = $1")
                .bind(manager)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Whether a manager is in managers.csv, and its team.
    pub async fn crm_manager_team(
        &self,
        manager: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT team FROM crm_managers WHERE manager_id = $1")
                .bind(manager)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
