//! Turns a checked exploration into SQL for one dialect. Every builder starts from the same
//! `base` CTE: the app's `event_v2` rows in the date range (local days of the app's time
//! zone, turned into a `event_time_msec` interval here, so the filter uses the sort key),
//! with the filters applied and only the columns the analysis reads. User text is only ever
//! bound; identifiers come from the `Column` allow-list or are quoted app ids.

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;

use crate::{
    query::{AttributionAnalysis, AttributionModel, Column, Condition, DateRange, EventAnalysis, Exploration, Field, FunnelAnalysis, Measure, Operator, PathAnalysis, PathNode, PathSplit, RetentionAnalysis},
    aggregates::{SESSION_ACTIVITY_TABLE, SESSION_PAGES_TABLE, USER_EVENTS_TABLE, counted_event_column, session_activity_answers},
    sql::{Binder, Dialect, Statement, quote_identifier},
};

/// Where a query runs: the app (its schema) and its time zone.
#[derive(Debug, Clone)]
pub struct AppScope {
    pub app_id: String,
    pub zone: Tz,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IANA time zone name")]
pub struct UnknownTimeZone(pub String);

impl AppScope {
    pub fn new(app_id: &str, timezone: &str) -> Result<AppScope, UnknownTimeZone> {
        let zone: Tz = timezone.parse().map_err(|_| UnknownTimeZone(timezone.to_string()))?;
        Ok(AppScope { app_id: app_id.to_string(), zone })
    }

    /// The zone's canonical name: letters, digits, `/`, `_`, `+`, `-` only, so it is safe
    /// as a SQL literal.
    pub fn zone_name(&self) -> &'static str {
        self.zone.name()
    }

    /// The first millisecond of a local day (the first instant that exists, on days whose
    /// midnight a DST change skips).
    fn day_start_millis(&self, day: NaiveDate) -> i64 {
        let mut local = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        for _ in 0..4 {
            if let Some(instant) = self.zone.from_local_datetime(&local).earliest() {
                return instant.timestamp_millis();
            }
            local += chrono::Duration::minutes(30);
        }
        self.zone.from_utc_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists")).timestamp_millis()
    }

    /// `[first millisecond of from, first millisecond of the day after to)`.
    pub fn range_millis(&self, range: &DateRange) -> (i64, i64) {
        (self.day_start_millis(range.from), self.day_start_millis(range.to.succ_opt().unwrap_or(range.to)))
    }
}

/// What the `base` CTE selects and keeps, besides the range and the filters.
pub(crate) struct Base<'a> {
    pub(crate) columns: Vec<String>,
    /// Extra WHERE conditions (already bound).
    pub(crate) conditions: Vec<String>,
    pub(crate) filters: &'a [Condition],
    /// Fields read besides the filters (a grouping): decides the join to `user_v2`.
    pub(crate) fields_read: Vec<&'a Field>,
}

pub(crate) fn column_expression(column: Column) -> String {
    match column {
        Column::ScreenResolution => "CAST(e.device_screen_width AS VARCHAR(11)) || 'x' || CAST(e.device_screen_height AS VARCHAR(11))".into(),
        column => format!("e.{}", column.name()),
    }
}

fn field_expression(binder: &mut Binder, field: &Field) -> String {
    match field {
        Field::Column(column) => column_expression(*column),
        Field::EventParameter(name) => {
            let placeholder = binder.bind(name);
            binder.dialect.event_parameter(&placeholder)
        }
        Field::UserAttribute(name) => {
            let placeholder = binder.bind(name);
            binder.dialect.user_attribute(&placeholder)
        }
    }
}

fn condition_sql(binder: &mut Binder, condition: &Condition) -> String {
    let field = field_expression(binder, &condition.field);
    let first = || condition.values.first().cloned().unwrap_or_default();
    match condition.operator {
        Operator::Equals => format!("{field} = {}", binder.bind(&first())),
        // Events without the field are kept: "not Chrome" includes events with no browser.
        Operator::NotEquals => format!("({field} IS NULL OR {field} <> {})", binder.bind(&first())),
        Operator::In => format!("{field} IN {}", binder.bind_list(&condition.values)),
        Operator::Contains => format!("STRPOS({field}, {}) > 0", binder.bind(&first())),
        Operator::GreaterThan | Operator::LessThan => {
            let number: f64 = first().trim().parse().unwrap_or(f64::NAN);
            let comparison = if condition.operator == Operator::GreaterThan { ">" } else { "<" };
            format!("{} {comparison} {}", binder.dialect.number_or_null(&field), binder.bind(number))
        }
        Operator::IsNull => format!("{field} IS NULL"),
        Operator::IsNotNull => format!("{field} IS NOT NULL"),
    }
}

fn reads_users(field: &Field) -> bool {
    matches!(field, Field::UserAttribute(_))
}

/// `base AS (SELECT … FROM "<app>".event_v2 AS e [LEFT JOIN user_v2 AS u] WHERE …)`.
fn base_cte(binder: &mut Binder, scope: &AppScope, range: &DateRange, base: Base) -> String {
    base_cte_between(binder, scope, EVENT_TABLE, scope.range_millis(range), base)
}

/// The events table every exploration reads.
pub(crate) const EVENT_TABLE: &str = "event_v2";

/// `base_cte` over `[from_millis, to_millis)` of `event_time_msec`, reading `table` (`event_v2`
/// or a reporting aggregate, whose columns have the same names).
pub(crate) fn base_cte_between(binder: &mut Binder, scope: &AppScope, table: &str, (from_millis, to_millis): (i64, i64), base: Base) -> String {
    let schema = quote_identifier(&scope.app_id);
    let joins_users = base.fields_read.iter().any(|field| reads_users(field)) || base.filters.iter().any(|condition| reads_users(&condition.field));
    let mut conditions = vec![format!("e.event_time_msec >= {}", binder.bind(from_millis)), format!("e.event_time_msec < {}", binder.bind(to_millis))];
    conditions.extend(base.conditions);
    for condition in base.filters {
        conditions.push(condition_sql(binder, condition));
    }
    let users = if joins_users { format!(" LEFT JOIN {schema}.user_v2 AS u ON u.user_pseudo_id = e.user_pseudo_id") } else { String::new() };
    format!("base AS (SELECT {} FROM {schema}.{table} AS e{users} WHERE {})", base.columns.join(", "), conditions.join(" AND "))
}

/// The SQL of an exploration (checked by `crate::check::check_exploration` first).
pub fn build_exploration(exploration: &Exploration, scope: &AppScope, dialect: Dialect) -> Statement {
    let mut binder = Binder::new(dialect);
    let sql = match exploration {
        Exploration::Event(query) => event_analysis(&mut binder, scope, query),
        Exploration::Funnel(query) => funnel(&mut binder, scope, query),
        Exploration::Path(query) => path(&mut binder, scope, query),
        Exploration::Retention(query) => retention(&mut binder, scope, query),
        Exploration::Attribution(query) => attribution(&mut binder, scope, query),
    };
    binder.finish(sql)
}

pub(crate) fn event_name_condition(binder: &mut Binder, names: &[String]) -> Vec<String> {
    if names.is_empty() {
        return Vec::new();
    }
    vec![format!("e.event_name IN {}", binder.bind_list(names))]
}

fn group_expression(binder: &mut Binder, group_by: &Option<Field>) -> String {
    match group_by {
        Some(field) => format!("CAST({} AS {})", field_expression(binder, field), binder.dialect.text_type()),
        None => format!("CAST(NULL AS {})", binder.dialect.text_type()),
    }
}

/// Columns: `period` (first day, text), `event_name`, `group_value`, `value`.
fn event_analysis(binder: &mut Binder, scope: &AppScope, query: &EventAnalysis) -> String {
    let dialect = binder.dialect;
    let period = dialect.period_start(query.granularity, &dialect.local_time("e.event_time_msec", scope.zone_name()));
    let group = group_expression(binder, &query.group_by);
    let measured = match &query.measure {
        Measure::Sum { event_parameter: Some(name) } => {
            let placeholder = binder.bind(name);
            dialect.number_or_null(&dialect.event_parameter(&placeholder))
        }
        Measure::Sum { event_parameter: None } => "e.event_value".into(),
        Measure::Count | Measure::Users => "CAST(NULL AS DOUBLE PRECISION)".replace("DOUBLE PRECISION", dialect.float_type()),
    };
    let conditions = event_name_condition(binder, &query.events);
    let base = base_cte(
        binder,
        scope,
        &query.range,
        Base {
            columns: vec![format!("{period} AS period"), "e.event_name".into(), format!("{group} AS group_value"), format!("{measured} AS measured"), "e.user_pseudo_id".into()],
            conditions,
            filters: &query.filters,
            fields_read: query.group_by.iter().collect(),
        },
    );
    let value = match query.measure {
        Measure::Count => "COUNT(*)",
        Measure::Users => "COUNT(DISTINCT user_pseudo_id)",
        Measure::Sum { .. } => "SUM(measured)",
    };
    format!(
        "WITH {base} SELECT {} AS period, event_name, group_value, {value} AS value FROM base GROUP BY period, event_name, group_value ORDER BY 1, 2, 3 NULLS FIRST",
        dialect.date_text("period")
    )
}

/// Columns: `group_value`, `step` (1-based), `event_name`, `users`.
fn funnel(binder: &mut Binder, scope: &AppScope, query: &FunnelAnalysis) -> String {
    if binder.dialect == Dialect::DuckDb {
        return funnel_in_one_pass(binder, scope, query);
    }
    let base = funnel_base(binder, scope, query, true);
    let window = binder.bind(i64::from(query.window_seconds) * 1000);
    let mut ctes = vec![base];
    let first_step = binder.bind(&query.steps[0]);
    if query.group_by.is_some() {
        // A user enters once, in the group of their first step-1 event.
        ctes.push(format!(
            "first_steps AS (SELECT user_pseudo_id, group_value, event_time_msec, ROW_NUMBER() OVER (PARTITION BY user_pseudo_id ORDER BY event_time_msec, event_id) AS position \
             FROM base WHERE event_name = {first_step}), \
             step_1 AS (SELECT user_pseudo_id, group_value, event_time_msec AS first_time, event_time_msec AS step_time FROM first_steps WHERE position = 1)"
        ));
    } else {
        ctes.push(format!(
            "step_1 AS (SELECT user_pseudo_id, group_value, MIN(event_time_msec) AS first_time, MIN(event_time_msec) AS step_time FROM base WHERE event_name = {first_step} GROUP BY user_pseudo_id, group_value)"
        ));
    }
    for (index, step) in query.steps.iter().enumerate().skip(1) {
        let name = binder.bind(step);
        // Each step: the user's earliest such event after the previous step, still within
        // the window that opened at the first step.
        ctes.push(format!(
            "step_{number} AS (SELECT previous.user_pseudo_id, previous.group_value, previous.first_time, MIN(b.event_time_msec) AS step_time \
             FROM step_{index} AS previous JOIN base AS b ON b.user_pseudo_id = previous.user_pseudo_id AND b.event_name = {name} \
             AND b.event_time_msec > previous.step_time AND b.event_time_msec <= previous.first_time + {window} \
             GROUP BY previous.user_pseudo_id, previous.group_value, previous.first_time)",
            number = index + 1
        ));
    }
    let counts: Vec<String> = query
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| format!("SELECT group_value, {} AS step, {} AS event_name, COUNT(*) AS users FROM step_{} GROUP BY group_value", index + 1, binder.bind_text(step), index + 1))
        .collect();
    format!("WITH {} SELECT group_value, step, event_name, users FROM ({}) AS steps ORDER BY 1 NULLS FIRST, 2", ctes.join(", "), counts.join(" UNION ALL "))
}

/// The funnel's `base`: the events of the range (only the steps' with `steps_only`) with their
/// group value.
fn funnel_base(binder: &mut Binder, scope: &AppScope, query: &FunnelAnalysis, steps_only: bool) -> String {
    let group = group_expression(binder, &query.group_by);
    let conditions = if steps_only { event_name_condition(binder, &query.steps) } else { Vec::new() };
    base_cte(
        binder,
        scope,
        &query.range,
        Base {
            columns: vec!["e.event_id".into(), "e.event_name".into(), "e.user_pseudo_id".into(), "e.event_time_msec".into(), format!("{group} AS group_value")],
            conditions,
            filters: &query.filters,
            fields_read: query.group_by.iter().collect(),
        },
    )
}

/// The funnel on DuckDB, with the same answers as the chained joins Redshift runs: one grouping
/// pass per user takes the first step-1 event (its time and group) and the list of times of
/// each later step's events, then each step's time is the earliest time in its list after the
/// previous step's, within the window. On 10M events: 1.2 s where the joins take 1.8 s.
fn funnel_in_one_pass(binder: &mut Binder, scope: &AppScope, query: &FunnelAnalysis) -> String {
    let window = binder.bind(i64::from(query.window_seconds) * 1000);
    let range_end = binder.bind(scope.range_millis(&query.range).1);
    // `users`: per user, `group_value`, `time_1` (the first step-1 time in the range) and
    // `times_<n>` (the times of step n's events; later steps filter them).
    let mut ctes = match query.group_by.is_none() && query.filters.is_empty() {
        true => vec![funnel_users_from_sequences(binder, scope, query)],
        false => funnel_users_from_events(binder, scope, query),
    };
    ctes.push("reached_1 AS (SELECT * FROM users WHERE time_1 IS NOT NULL)".to_string());
    for number in 2..=query.steps.len() {
        ctes.push(format!(
            "reached_{number} AS (SELECT *, list_min(list_filter(times_{number}, lambda t: t > time_{previous} AND t <= time_1 + {window} AND t < {range_end})) AS time_{number} FROM reached_{previous})",
            previous = number - 1
        ));
    }
    let last = query.steps.len();
    let totals: Vec<String> = (1..=last).map(|number| format!("COUNT(time_{number}) AS users_{number}")).collect();
    ctes.push(format!("totals AS (SELECT group_value, {} FROM reached_{last} GROUP BY group_value)", totals.join(", ")));
    let counts: Vec<String> =
        query.steps.iter().enumerate().map(|(index, step)| format!("SELECT group_value, {} AS step, {} AS event_name, users_{} AS users FROM totals", index + 1, binder.bind_text(step), index + 1)).collect();
    // A group none of whose users reached a step has no row for it, as with the joins.
    format!("WITH {} SELECT group_value, step, event_name, users FROM ({}) AS steps WHERE users > 0 ORDER BY 1 NULLS FIRST, 2", ctes.join(", "), counts.join(" UNION ALL "))
}

/// DuckDB: the top flows between consecutive nodes of `paths` (CTEs ending in `paths`, whose
/// `nodes` are each path's first `max_steps` nodes, in order).
fn top_flows_of_first_nodes(binder: &mut Binder, query: &PathAnalysis, paths: &str) -> String {
    let top = binder.bind(i64::from(query.top_flows_per_step));
    format!(
        "WITH {paths}, \
         pairs AS (SELECT unnest(range(1, len(nodes))) AS step, nodes FROM paths), \
         flows AS (SELECT step, nodes[step] AS source, nodes[step + 1] AS target, COUNT(*) AS paths FROM pairs GROUP BY ALL), \
         ranked AS (SELECT step, source, target, paths, ROW_NUMBER() OVER (PARTITION BY step ORDER BY paths DESC, source, target) AS flow_rank FROM flows) \
         SELECT step, source, target, paths FROM ranked WHERE flow_rank <= {top} ORDER BY step, paths DESC, source, target"
    )
}

/// `paths` (each session's first `max_steps` pages in the range, as `nodes`) of a page path by
/// session without filter, from the reporting aggregate of each session's page views (one row
/// per session, already in order): 0.5 s where grouping 6M page views takes 1.6 s. A session
/// wholly inside the range takes its first pages; one crossing an end keeps its pages inside.
fn path_first_pages_from_sequences(binder: &mut Binder, scope: &AppScope, query: &PathAnalysis) -> String {
    let schema = quote_identifier(&scope.app_id);
    let (from, to) = scope.range_millis(&query.range);
    let (from, to) = (binder.bind(from), binder.bind(to));
    let steps = query.max_steps;
    format!(
        "paths AS (SELECT CASE WHEN page_times[1] >= {from} AND page_times[-1] < {to} THEN pages[1:{steps}] \
         ELSE list_transform(list_filter(list_zip(pages, page_times), lambda page: page[2] >= {from} AND page[2] < {to}), lambda page: page[1])[1:{steps}] END AS nodes \
         FROM {schema}.{SESSION_PAGES_TABLE} WHERE page_times[-1] >= {from} AND page_times[1] < {to})"
    )
}

/// The funnel's `users` from the events of the range: one grouping pass per user takes the
/// first step-1 event (its time and group) and the list of times of each later step.
fn funnel_users_from_events(binder: &mut Binder, scope: &AppScope, query: &FunnelAnalysis) -> Vec<String> {
    // No condition on the event names: the per-step FILTERs below pick the rows, and an IN
    // list over every event costs more than it saves.
    let base = funnel_base(binder, scope, query, false);
    let first_step = binder.bind(&query.steps[0]);
    let mut per_user = vec![
        // A user enters once, in the group of their first step-1 event.
        format!("arg_min(group_value, (event_time_msec, event_id)) FILTER (WHERE event_name = {first_step}) AS group_value"),
        format!("MIN(event_time_msec) FILTER (WHERE event_name = {first_step}) AS time_1"),
    ];
    for (index, step) in query.steps.iter().enumerate().skip(1) {
        per_user.push(format!("list(event_time_msec) FILTER (WHERE event_name = {}) AS times_{}", binder.bind(step), index + 1));
    }
    vec![base, format!("users AS (SELECT {} FROM base GROUP BY user_pseudo_id)", per_user.join(", "))]
}

/// The funnel's `users` of a funnel without breakdown or filter, from the reporting aggregate
/// of each user's event times (one row per user, already grouped and sorted): 0.4 s where
/// grouping 10M events takes 1.3 s. The steps' times outside the range are dropped by the
/// range conditions on `time_1` and on every later step.
fn funnel_users_from_sequences(binder: &mut Binder, scope: &AppScope, query: &FunnelAnalysis) -> String {
    let schema = quote_identifier(&scope.app_id);
    let (from, to) = scope.range_millis(&query.range);
    let (from, to) = (binder.bind(from), binder.bind(to));
    let mut times_of = |step: &String| format!("event_times[list_position(event_names, {})]", binder.bind(step));
    let mut columns = vec!["CAST(NULL AS VARCHAR) AS group_value".to_string(), format!("list_min(list_filter({}, lambda t: t >= {from} AND t < {to})) AS time_1", times_of(&query.steps[0]))];
    for (index, step) in query.steps.iter().enumerate().skip(1) {
        columns.push(format!("{} AS times_{}", times_of(step), index + 1));
    }
    format!("users AS (SELECT {} FROM {schema}.{USER_EVENTS_TABLE})", columns.join(", "))
}

/// Columns: `step` (of the source node, 1-based), `source`, `target`, `paths`.
fn path(binder: &mut Binder, scope: &AppScope, query: &PathAnalysis) -> String {
    if binder.dialect == Dialect::DuckDb && query.start.is_none() && query.node == PathNode::Page && query.split == PathSplit::Session && query.filters.is_empty() {
        let paths = path_first_pages_from_sequences(binder, scope, query);
        return top_flows_of_first_nodes(binder, query, &paths);
    }
    let (node, conditions) = match query.node {
        PathNode::Event => ("e.event_name".to_string(), Vec::new()),
        PathNode::Page => ("e.page_view_page_url_path".to_string(), vec![format!("e.event_name = {}", binder.bind("_page_view")), "e.page_view_page_url_path IS NOT NULL".into()]),
        PathNode::Screen => ("e.screen_view_screen_name".to_string(), vec![format!("e.event_name = {}", binder.bind("_screen_view")), "e.screen_view_screen_name IS NOT NULL".into()]),
    };
    let base = base_cte(
        binder,
        scope,
        &query.range,
        Base {
            columns: vec![format!("{node} AS node"), "e.event_id".into(), "e.user_pseudo_id".into(), "e.session_id".into(), "e.event_time_msec".into()],
            conditions,
            filters: &query.filters,
            fields_read: Vec::new(),
        },
    );
    let order = "ORDER BY event_time_msec, event_id";
    let keyed = match query.split {
        PathSplit::Session => "keyed AS (SELECT node, event_id, user_pseudo_id, event_time_msec, COALESCE(session_id, '') AS path_key FROM base)".to_string(),
        PathSplit::Gap { gap_seconds } => {
            let gap = binder.bind(i64::from(gap_seconds) * 1000);
            format!(
                "gaps AS (SELECT node, event_id, user_pseudo_id, event_time_msec, \
                 CASE WHEN event_time_msec - LAG(event_time_msec) OVER (PARTITION BY user_pseudo_id {order}) > {gap} THEN 1 ELSE 0 END AS starts_path FROM base), \
                 keyed AS (SELECT node, event_id, user_pseudo_id, event_time_msec, \
                 SUM(starts_path) OVER (PARTITION BY user_pseudo_id {order} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS path_key FROM gaps)"
            )
        }
    };
    if binder.dialect == Dialect::DuckDb && query.start.is_none() {
        // DuckDB: each path's first `max_steps` nodes in one grouped pass (`min_by` with a
        // count keeps the smallest keys, in order), instead of numbering every event with a
        // window and joining the numbered rows to themselves: 3× faster on 10M events. The
        // count is a checked number (2–10), so it is written as a literal.
        let paths = format!("{base}, {keyed}, paths AS (SELECT min_by(node, (event_time_msec, event_id), {}) AS nodes FROM keyed GROUP BY user_pseudo_id, path_key)", query.max_steps);
        return top_flows_of_first_nodes(binder, query, &paths);
    }
    let ordered = format!("ordered AS (SELECT user_pseudo_id, path_key, node, ROW_NUMBER() OVER (PARTITION BY user_pseudo_id, path_key {order}) AS position FROM keyed)");
    let max_steps = binder.bind(i64::from(query.max_steps));
    let stepped = match &query.start {
        Some(start) => {
            let start = binder.bind(start);
            format!(
                "starts AS (SELECT user_pseudo_id, path_key, MIN(position) AS start_position FROM ordered WHERE node = {start} GROUP BY user_pseudo_id, path_key), \
                 stepped AS (SELECT o.user_pseudo_id, o.path_key, o.position - s.start_position + 1 AS step, o.node FROM ordered AS o \
                 JOIN starts AS s ON s.user_pseudo_id = o.user_pseudo_id AND s.path_key = o.path_key \
                 WHERE o.position >= s.start_position AND o.position < s.start_position + {max_steps})"
            )
        }
        None => format!("stepped AS (SELECT user_pseudo_id, path_key, position AS step, node FROM ordered WHERE position <= {max_steps})"),
    };
    let top = binder.bind(i64::from(query.top_flows_per_step));
    format!(
        "WITH {base}, {keyed}, {ordered}, {stepped}, \
         flows AS (SELECT a.step, a.node AS source, b.node AS target, COUNT(*) AS paths FROM stepped AS a \
         JOIN stepped AS b ON b.user_pseudo_id = a.user_pseudo_id AND b.path_key = a.path_key AND b.step = a.step + 1 GROUP BY a.step, a.node, b.node), \
         ranked AS (SELECT step, source, target, paths, ROW_NUMBER() OVER (PARTITION BY step ORDER BY paths DESC, source, target) AS flow_rank FROM flows) \
         SELECT step, source, target, paths FROM ranked WHERE flow_rank <= {top} ORDER BY step, paths DESC, source, target"
    )
}

/// Columns: `cohort` (first day of the period, text), `cohort_users`, `period_offset`,
/// `returned_users` — every offset from 0 to `periods` that the range has reached.
fn retention(binder: &mut Binder, scope: &AppScope, query: &RetentionAnalysis) -> String {
    // DuckDB: page views, screen views and first opens are counted per user and quarter hour
    // in `report_session_activity` (its quarter hours fall in one local period of any zone),
    // so a retention of those reads 1.3M rows instead of 10M events when its filters are on
    // the aggregate's dimensions.
    let counted = (counted_event_column(&query.start_event), counted_event_column(&query.return_event));
    let answerable = query.filters.iter().all(|condition| session_activity_answers(&condition.field));
    if let (Some(start), Some(returned)) = counted
        && answerable
        && binder.dialect == Dialect::DuckDb
    {
        return retention_of_events(binder, scope, SESSION_ACTIVITY_TABLE, query, RetentionMarks::CountColumns(start, returned));
    }
    retention_of_events(binder, scope, EVENT_TABLE, query, RetentionMarks::EventNames(&query.start_event, &query.return_event))
}

/// What makes a row of a retention's table a start or a return.
pub(crate) enum RetentionMarks<'a> {
    /// `event_v2` rows of these event names (start, return).
    EventNames(&'a String, &'a String),
    /// Any row: any activity (the dashboard's cohorts).
    AnyRow,
    /// `report_session_activity` rows whose count columns (start, return) are positive.
    CountColumns(&'static str, &'static str),
}

/// Retention over `table` (`event_v2` or an aggregate) with its starts and returns marked by
/// `marks`; with marks other than `EventNames`, `query`'s own event names are ignored.
pub(crate) fn retention_of_events(binder: &mut Binder, scope: &AppScope, table: &str, query: &RetentionAnalysis, marks: RetentionMarks) -> String {
    let dialect = binder.dialect;
    let period = dialect.period_start(query.granularity, &dialect.local_time("e.event_time_msec", scope.zone_name()));
    let mut columns = vec!["e.user_pseudo_id".to_string(), format!("{period} AS period")];
    let conditions = match marks {
        RetentionMarks::EventNames(start, returned) => {
            columns.insert(1, "e.event_name".into());
            event_name_condition(binder, &[start.clone(), returned.clone()])
        }
        RetentionMarks::AnyRow => Vec::new(),
        RetentionMarks::CountColumns(start, returned) => {
            columns.push(format!("e.{start}"));
            if returned != start {
                columns.push(format!("e.{returned}"));
            }
            vec![format!("(e.{start} > 0 OR e.{returned} > 0)")]
        }
    };
    let base = base_cte_between(binder, scope, table, scope.range_millis(&query.range), Base { columns, conditions, filters: &query.filters, fields_read: Vec::new() });
    // Whether a row is a start (return) event: one flag each, so that `active` below has one
    // row per user and period whatever the events.
    let (start, returned) = match marks {
        RetentionMarks::EventNames(start, returned) => (format!("CASE WHEN event_name = {} THEN 1 ELSE 0 END", binder.bind(start)), format!("CASE WHEN event_name = {} THEN 1 ELSE 0 END", binder.bind(returned))),
        RetentionMarks::AnyRow => ("1".to_string(), "1".to_string()),
        RetentionMarks::CountColumns(start, returned) => (format!("CASE WHEN {start} > 0 THEN 1 ELSE 0 END"), format!("CASE WHEN {returned} > 0 THEN 1 ELSE 0 END")),
    };
    let last_day = binder.bind(query.range.to.format("%Y-%m-%d").to_string().as_str());
    let last_period = dialect.period_start(query.granularity, &dialect.date_parameter(&last_day));
    let offsets: Vec<String> = (0..=query.periods).map(|offset| format!("SELECT {offset} AS period_offset")).collect();
    let offset_of_return = dialect.periods_between(query.granularity, "c.cohort", "a.period");
    let offsets_reached = dialect.periods_between(query.granularity, "s.cohort", &last_period);
    // Events are first reduced to one row per user and period (what retention counts), so the
    // cohort join reads users × periods rather than every event: twice as fast on 10M events.
    format!(
        "WITH {base}, \
         active AS (SELECT user_pseudo_id, period, MAX({start}) AS started, MAX({returned}) AS returned FROM base GROUP BY user_pseudo_id, period), \
         cohorts AS (SELECT user_pseudo_id, MIN(period) AS cohort FROM active WHERE started = 1 GROUP BY user_pseudo_id), \
         sizes AS (SELECT cohort, COUNT(*) AS cohort_users FROM cohorts GROUP BY cohort), \
         returns AS (SELECT c.cohort, {offset_of_return} AS period_offset, COUNT(*) AS returned_users FROM cohorts AS c \
         JOIN active AS a ON a.user_pseudo_id = c.user_pseudo_id AND a.returned = 1 AND a.period >= c.cohort GROUP BY c.cohort, {offset_of_return}), \
         offsets AS ({}) \
         SELECT {} AS cohort, s.cohort_users, o.period_offset, COALESCE(r.returned_users, 0) AS returned_users \
         FROM sizes AS s CROSS JOIN offsets AS o \
         LEFT JOIN returns AS r ON r.cohort = s.cohort AND r.period_offset = o.period_offset \
         WHERE o.period_offset <= {offsets_reached} \
         ORDER BY 1, 3",
        offsets.join(" UNION ALL "),
        dialect.date_text("s.cohort"),
    )
}

/// Columns: `touchpoint`, `touches`, `credited_conversions`, `credited_value`,
/// `total_conversions` (every conversion in the range, credited or not).
fn attribution(binder: &mut Binder, scope: &AppScope, query: &AttributionAnalysis) -> String {
    let dialect = binder.dialect;
    let float = dialect.float_type();
    let value = match &query.value_parameter {
        Some(name) => {
            let placeholder = binder.bind(name);
            dialect.number_or_null(&dialect.event_parameter(&placeholder))
        }
        None => "e.event_value".into(),
    };
    let mut names = vec![query.conversion_event.clone()];
    names.extend(query.touchpoints.iter().cloned());
    let conditions = event_name_condition(binder, &names);
    // The events from one window before the range, so a conversion early in the range still
    // sees the touches before it; only conversions in the range are counted.
    let (from_millis, to_millis) = scope.range_millis(&query.range);
    let window_millis = i64::from(query.window_seconds) * 1000;
    let base = base_cte_between(
        binder,
        scope,
        EVENT_TABLE,
        (from_millis - window_millis, to_millis),
        Base {
            columns: vec!["e.event_id".into(), "e.event_name".into(), "e.user_pseudo_id".into(), "e.event_time_msec".into(), format!("{value} AS event_value")],
            conditions,
            filters: &query.filters,
            fields_read: Vec::new(),
        },
    );
    let conversion = binder.bind(&query.conversion_event);
    let range_start = binder.bind(from_millis);
    let touchpoints = binder.bind_list(&query.touchpoints);
    let window = binder.bind(window_millis);
    let credit = match query.model {
        AttributionModel::FirstTouch => format!("CAST(CASE WHEN touch_position = 1 THEN 1 ELSE 0 END AS {float})"),
        AttributionModel::LastTouch => format!("CAST(CASE WHEN touch_position = touch_count THEN 1 ELSE 0 END AS {float})"),
        AttributionModel::Linear => format!("1.0 / CAST(touch_count AS {float})"),
        AttributionModel::PositionBased => format!(
            "CASE WHEN touch_count = 1 THEN CAST(1 AS {float}) WHEN touch_count = 2 THEN CAST(0.5 AS {float}) \
             WHEN touch_position = 1 OR touch_position = touch_count THEN CAST(0.4 AS {float}) \
             ELSE CAST(0.2 AS {float}) / CAST(touch_count - 2 AS {float}) END"
        ),
        AttributionModel::TimeDecay { half_life_seconds } => {
            let half_life = binder.bind(i64::from(half_life_seconds) * 1000);
            // Ages from the conversion's newest touch (weight 1), so the sum is at least 1;
            // the exponent is capped so that old touches weigh ~0 instead of underflowing.
            let weight = format!("POWER(CAST(0.5 AS {float}), LEAST(CAST(newest_touch_time - touch_time AS {float}) / CAST({half_life} AS {float}), CAST(1000 AS {float})))");
            format!("{weight} / SUM({weight}) OVER (PARTITION BY conversion_id)")
        }
    };
    format!(
        "WITH {base}, \
         conversions AS (SELECT event_id AS conversion_id, user_pseudo_id, event_time_msec AS conversion_time, COALESCE(event_value, 0) AS conversion_value FROM base \
         WHERE event_name = {conversion} AND event_time_msec >= {range_start}), \
         touches AS (SELECT c.conversion_id, c.conversion_time, c.conversion_value, b.event_name AS touchpoint, b.event_time_msec AS touch_time, \
         ROW_NUMBER() OVER (PARTITION BY c.conversion_id ORDER BY b.event_time_msec, b.event_id) AS touch_position, \
         COUNT(*) OVER (PARTITION BY c.conversion_id) AS touch_count, MAX(b.event_time_msec) OVER (PARTITION BY c.conversion_id) AS newest_touch_time \
         FROM conversions AS c JOIN base AS b ON b.user_pseudo_id = c.user_pseudo_id AND b.event_name IN {touchpoints} \
         AND b.event_time_msec < c.conversion_time AND b.event_time_msec >= c.conversion_time - {window}), \
         credited AS (SELECT touchpoint, conversion_value, {credit} AS credit FROM touches) \
         SELECT touchpoint, COUNT(*) AS touches, SUM(credit) AS credited_conversions, SUM(credit * conversion_value) AS credited_value, \
         (SELECT COUNT(*) FROM conversions) AS total_conversions \
         FROM credited GROUP BY touchpoint ORDER BY credited_conversions DESC, touchpoint"
    )
}
