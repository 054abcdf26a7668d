//! The out-of-the-box dashboards (CAoA's QuickSight analyses, in the console): a page is a
//! list of panels, each one statement over the same `base` CTE as the explorations (so the
//! page's date range and filters apply to every panel alike) and a chart kind that says how
//! the console draws its table. Shapes per chart kind are in docs/reporting.md.
//!
//! A panel reads the reporting aggregates (`crate::aggregates`) instead of `event_v2` when they
//! hold what it counts and the page's filters read only their dimensions; the figures are the
//! same either way (the tests compare both), the aggregates are just far fewer rows.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    aggregates::{EVENT_ACTIVITY_TABLE, SESSION_ACTIVITY_TABLE, USER_VIEWS_TABLE, session_activity_answers},
    build::{AppScope, Base, EVENT_TABLE, RetentionMarks, base_cte_between, column_expression, retention_of_events},
    check::{Catalog, InvalidQuery, check_exploration},
    query::{Column, Condition, DateRange, EventAnalysis, Exploration, Granularity, RetentionAnalysis},
    sql::{Binder, Dialect, Statement},
    table::ResultTable,
};

/// The event every SDK sends once per new user (web and mobile).
const FIRST_OPEN: &str = "_first_open";
const PAGE_VIEW: &str = "_page_view";
const SCREEN_VIEW: &str = "_screen_view";
/// Rows of a ranking (bar) panel.
const TOP: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DashboardPage {
    Overview,
    Acquisition,
    Engagement,
    Retention,
    Device,
    Details,
    Realtime,
}

impl DashboardPage {
    pub const ALL: [DashboardPage; 7] =
        [DashboardPage::Overview, DashboardPage::Acquisition, DashboardPage::Engagement, DashboardPage::Retention, DashboardPage::Device, DashboardPage::Details, DashboardPage::Realtime];

    pub fn name(self) -> &'static str {
        match self {
            DashboardPage::Overview => "overview",
            DashboardPage::Acquisition => "acquisition",
            DashboardPage::Engagement => "engagement",
            DashboardPage::Retention => "retention",
            DashboardPage::Device => "device",
            DashboardPage::Details => "details",
            DashboardPage::Realtime => "realtime",
        }
    }

    pub fn from_name(name: &str) -> Option<DashboardPage> {
        DashboardPage::ALL.into_iter().find(|page| page.name() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Chart {
    Kpi,
    Line,
    Bar,
    Table,
    Cohort,
}

/// Where a panel's table comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum PanelSource {
    Sql(Statement),
    /// One dimension of a statement shared by several panels (columns `dimension`, `label`,
    /// `value`), so that they cost one scan: the panel keeps the rows of its dimension.
    Part { statement: Statement, dimension: &'static str },
    /// The metadata scan's top values of user attributes (`attribute`, `value`, `users`).
    ScannedUserAttributes,
    /// The metadata scan's top values of event parameters (`event_name`, `parameter`,
    /// `value`, `events`).
    ScannedEventParameters,
}

impl PanelSource {
    /// The statement to run for this panel (the same one for every part of a shared one).
    pub fn statement(&self) -> Option<&Statement> {
        match self {
            PanelSource::Sql(statement) | PanelSource::Part { statement, .. } => Some(statement),
            PanelSource::ScannedUserAttributes | PanelSource::ScannedEventParameters => None,
        }
    }

    /// The panel's table from its statement's answer: a part keeps its dimension's rows, as
    /// `label`, `value`.
    pub fn panel_table(&self, answer: ResultTable) -> ResultTable {
        let PanelSource::Part { dimension, .. } = self else { return answer };
        let rows = answer.rows.into_iter().filter(|row| row.first().and_then(|value| value.as_str()) == Some(*dimension)).map(|row| row.into_iter().skip(1).collect()).collect();
        ResultTable { columns: answer.columns.into_iter().skip(1).collect(), rows }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PanelQuery {
    pub id: &'static str,
    pub title: &'static str,
    pub chart: Chart,
    pub source: PanelSource,
}

/// What a dashboard page is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardRequest {
    pub range: DateRange,
    pub filters: Vec<Condition>,
    /// The realtime page's "now" (the last 30 minutes end here).
    pub now_millis: i64,
    /// Whether panels may read the reporting aggregates (false: every panel reads `event_v2`,
    /// as the tests do to compare both).
    pub use_aggregates: bool,
}

/// Checks the range and the filters as an exploration's would be.
pub fn check_dashboard(request: &DashboardRequest, catalog: &Catalog) -> Result<(), InvalidQuery> {
    let stand_in = Exploration::Event(EventAnalysis { range: request.range, events: Vec::new(), measure: Default::default(), granularity: Granularity::Day, group_by: None, filters: request.filters.clone() });
    check_exploration(&stand_in, catalog)
}

/// One page's panels, in display order.
pub fn build_dashboard(page: DashboardPage, request: &DashboardRequest, scope: &AppScope, dialect: Dialect) -> Vec<PanelQuery> {
    let filters_on_dimensions = request.filters.iter().all(|condition| session_activity_answers(&condition.field));
    let panels = Panels {
        request,
        scope,
        dialect,
        range_millis: scope.range_millis(&request.range),
        session_source: if request.use_aggregates && filters_on_dimensions { Source::SessionActivity } else { Source::Events },
        event_name_source: if request.use_aggregates && request.filters.is_empty() { Source::EventActivity } else { Source::Events },
        views_from_aggregate: request.use_aggregates && request.filters.is_empty() && dialect == Dialect::DuckDb,
    };
    match page {
        DashboardPage::Overview => vec![
            panels.kpis("Overview", panels.range_millis, &[("active_users", Figure::Users), ("new_users", Figure::NewUsers), ("sessions", Figure::Sessions), ("events", Figure::Events), ("page_views", Figure::PageViews)]),
            panels.daily("active_users", "Active and new users", &[("active_users", Figure::Users), ("new_users", Figure::NewUsers)]),
            panels.daily("events", "Events and sessions", &[("events", Figure::Events), ("sessions", Figure::Sessions)]),
            panels.ranking("top_events", "Top events", "e.event_name", Figure::Events, None, panels.range_millis, panels.event_name_source),
        ],
        DashboardPage::Acquisition => vec![
            panels.ranking("new_users_by_source", "New users by traffic source", &column_expression(Column::TrafficSourceSource), Figure::Users, Some(FirstOpens), panels.range_millis, panels.session_source),
            panels.ranking("users_by_channel", "Users by channel group", &column_expression(Column::TrafficSourceChannelGroup), Figure::Users, None, panels.range_millis, panels.session_source),
            panels.ranking("users_by_country", "Users by country", &column_expression(Column::GeoCountry), Figure::Users, None, panels.range_millis, panels.session_source),
            panels.daily("new_users", "New users", &[("new_users", Figure::NewUsers)]),
        ],
        DashboardPage::Engagement => vec![
            panels.daily("views", "Events and views", &[("events", Figure::Events), ("page_views", Figure::PageViews), ("screen_views", Figure::ScreenViews)]),
            panels.top_views("top_pages", "Top pages", "page", PAGE_VIEW, Column::PageViewPageUrlPath),
            panels.top_views("top_screens", "Top screens", "screen", SCREEN_VIEW, Column::ScreenViewScreenName),
            panels.session_edge_pages("entry_pages", "Entry pages", "ASC"),
            panels.session_edge_pages("exit_pages", "Exit pages", "DESC"),
        ],
        DashboardPage::Retention => vec![panels.cohorts(), panels.daily("new_vs_returning", "New and returning users", &[("new", Figure::NewUsers), ("returning", Figure::ReturningUsers)]), panels.rolling_active_users(false), panels.rolling_active_users(true)],
        DashboardPage::Device => panels.breakdowns(&[
            ("platform", "Platform", Column::Platform),
            ("operating_system", "Operating system", Column::DeviceOperatingSystem),
            ("browser", "Browser", Column::DeviceUaBrowser),
            ("model", "Device model", Column::DeviceMobileModelName),
            ("resolution", "Screen resolution", Column::ScreenResolution),
            ("app_version", "App version", Column::AppVersion),
        ]),
        DashboardPage::Details => vec![
            PanelQuery { id: "user_attributes", title: "User attributes", chart: Chart::Table, source: PanelSource::ScannedUserAttributes },
            PanelQuery { id: "event_parameters", title: "Event parameters", chart: Chart::Table, source: PanelSource::ScannedEventParameters },
        ],
        DashboardPage::Realtime => {
            let last_half_hour = (request.now_millis - 30 * 60_000, request.now_millis + 1);
            // The last half hour is newer than the last refresh: read the events.
            let panels = Panels { session_source: Source::Events, event_name_source: Source::Events, ..panels };
            vec![
                panels.kpis("Last 30 minutes", last_half_hour, &[("active_users", Figure::Users), ("events", Figure::Events)]),
                panels.per_minute(last_half_hour),
                panels.ranking("top_events", "Top events (last 30 minutes)", "e.event_name", Figure::Events, None, last_half_hour, Source::Events),
            ]
        }
    }
}

/// Which table a panel reads. The aggregates' columns are named as `event_v2`'s.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Events,
    SessionActivity,
    EventActivity,
}

impl Source {
    fn table(self) -> &'static str {
        match self {
            Source::Events => EVENT_TABLE,
            Source::SessionActivity => SESSION_ACTIVITY_TABLE,
            Source::EventActivity => EVENT_ACTIVITY_TABLE,
        }
    }

    /// The columns of `base` that [`Figure::aggregate`] reads.
    fn figure_columns(self) -> Vec<String> {
        let columns: &[&str] = match self {
            Source::Events => &["e.event_name", "e.user_pseudo_id", "e.session_id"],
            Source::SessionActivity => &["e.user_pseudo_id", "e.session_id", "e.events", "e.page_views", "e.screen_views", "e.first_opens"],
            Source::EventActivity => &["e.events"],
        };
        columns.iter().map(|column| column.to_string()).collect()
    }
}

/// A ranking of new users only: the rows of `_first_open` events.
struct FirstOpens;

/// A figure over a set of `base` rows (with the source's [`Source::figure_columns`]).
#[derive(Clone, Copy)]
enum Figure {
    Events,
    Users,
    NewUsers,
    ReturningUsers,
    Sessions,
    PageViews,
    ScreenViews,
}

impl Figure {
    fn aggregate(self, binder: &mut Binder, source: Source) -> String {
        if source != Source::Events {
            // Sums of the aggregates' counts, as BIGINT in both dialects (Redshift sums a
            // BIGINT into a NUMERIC, DuckDB into a HUGEINT).
            return match self {
                Figure::Events => "CAST(SUM(events) AS BIGINT)".into(),
                Figure::Users => "COUNT(DISTINCT user_pseudo_id)".into(),
                Figure::NewUsers => "COUNT(DISTINCT CASE WHEN first_opens > 0 THEN user_pseudo_id END)".into(),
                Figure::ReturningUsers => "COUNT(DISTINCT user_pseudo_id) - COUNT(DISTINCT CASE WHEN first_opens > 0 THEN user_pseudo_id END)".into(),
                Figure::Sessions => "COUNT(DISTINCT session_id)".into(),
                Figure::PageViews => "CAST(SUM(page_views) AS BIGINT)".into(),
                Figure::ScreenViews => "CAST(SUM(screen_views) AS BIGINT)".into(),
            };
        }
        let mut is = |name: &str| format!("event_name = {}", binder.bind(name));
        match self {
            Figure::Events => "COUNT(*)".into(),
            Figure::Users => "COUNT(DISTINCT user_pseudo_id)".into(),
            Figure::NewUsers => format!("COUNT(DISTINCT CASE WHEN {} THEN user_pseudo_id END)", is(FIRST_OPEN)),
            Figure::ReturningUsers => format!("COUNT(DISTINCT user_pseudo_id) - COUNT(DISTINCT CASE WHEN {} THEN user_pseudo_id END)", is(FIRST_OPEN)),
            Figure::Sessions => "COUNT(DISTINCT session_id)".into(),
            Figure::PageViews => format!("SUM(CASE WHEN {} THEN 1 ELSE 0 END)", is(PAGE_VIEW)),
            Figure::ScreenViews => format!("SUM(CASE WHEN {} THEN 1 ELSE 0 END)", is(SCREEN_VIEW)),
        }
    }
}

struct Panels<'a> {
    request: &'a DashboardRequest,
    scope: &'a AppScope,
    dialect: Dialect,
    range_millis: (i64, i64),
    /// What panels of users, sessions and views read.
    session_source: Source,
    /// What panels by event name read.
    event_name_source: Source,
    /// Whether the top pages and screens read `report_user_views` (DuckDB, no filter).
    views_from_aggregate: bool,
}

impl Panels<'_> {
    /// The `base` CTE over `between` of `source` with the page's filters, selecting `columns`.
    fn base(&self, binder: &mut Binder, source: Source, between: (i64, i64), columns: Vec<String>, conditions: Vec<String>) -> String {
        base_cte_between(binder, self.scope, source.table(), between, Base { columns, conditions, filters: &self.request.filters, fields_read: Vec::new() })
    }

    fn local_day(&self) -> String {
        self.dialect.period_start(Granularity::Day, &self.dialect.local_time("e.event_time_msec", self.scope.zone_name()))
    }

    fn panel(id: &'static str, title: &'static str, chart: Chart, binder: Binder, sql: String) -> PanelQuery {
        PanelQuery { id, title, chart, source: PanelSource::Sql(binder.finish(sql)) }
    }

    fn kpis(&self, title: &'static str, between: (i64, i64), figures: &[(&str, Figure)]) -> PanelQuery {
        let mut binder = Binder::new(self.dialect);
        let source = self.session_source;
        let base = self.base(&mut binder, source, between, source.figure_columns(), Vec::new());
        let selected: Vec<String> = figures.iter().map(|(name, figure)| format!("COALESCE({}, 0) AS {name}", figure.aggregate(&mut binder, source))).collect();
        Self::panel("kpis", title, Chart::Kpi, binder, format!("WITH {base} SELECT {} FROM base", selected.join(", ")))
    }

    /// One line per figure, by local day.
    fn daily(&self, id: &'static str, title: &'static str, series: &[(&'static str, Figure)]) -> PanelQuery {
        let mut binder = Binder::new(self.dialect);
        let source = self.session_source;
        let mut columns = source.figure_columns();
        columns.push(format!("{} AS period", self.local_day()));
        let base = self.base(&mut binder, source, self.range_millis, columns, Vec::new());
        let day = self.dialect.date_text("period");
        let selects: Vec<String> =
            series.iter().map(|(name, figure)| format!("SELECT {day} AS period, '{name}' AS series, COALESCE({}, 0) AS value FROM base GROUP BY period", figure.aggregate(&mut binder, source))).collect();
        Self::panel(id, title, Chart::Line, binder, format!("WITH {base} {} ORDER BY 1, 2", selects.join(" UNION ALL ")))
    }

    /// `label`, `value`: the largest `TOP` values of an expression (null shown as `(not set)`),
    /// over every row or only over new users' `_first_open`s.
    fn ranking(&self, id: &'static str, title: &'static str, expression: &str, figure: Figure, only: Option<FirstOpens>, between: (i64, i64), source: Source) -> PanelQuery {
        let mut binder = Binder::new(self.dialect);
        let mut columns = source.figure_columns();
        columns.push(format!("COALESCE(CAST({expression} AS {}), '(not set)') AS label", self.dialect.text_type()));
        let conditions = match (only, source) {
            (None, _) => Vec::new(),
            (Some(FirstOpens), Source::Events) => vec![format!("e.event_name = {}", binder.bind(FIRST_OPEN))],
            (Some(FirstOpens), _) => vec!["e.first_opens > 0".to_string()],
        };
        let base = self.base(&mut binder, source, between, columns, conditions);
        let value = figure.aggregate(&mut binder, source);
        Self::panel(id, title, Chart::Bar, binder, format!("WITH {base} SELECT label, {value} AS value FROM base GROUP BY label ORDER BY 2 DESC, 1 LIMIT {TOP}"))
    }

    /// Users by each of several columns, one bar panel per column, from one scan: the
    /// columns are grouped by GROUPING SETS and each panel keeps its own rows (the largest
    /// `TOP` values). A column's null is `(not set)`, so in a grouping set's rows exactly one
    /// of the columns is not null, which names the set.
    fn breakdowns(&self, columns: &[(&'static str, &'static str, Column)]) -> Vec<PanelQuery> {
        let mut binder = Binder::new(self.dialect);
        let text = self.dialect.text_type();
        let mut selected = vec!["e.user_pseudo_id".to_string()];
        selected.extend(columns.iter().map(|(id, _, column)| format!("COALESCE(CAST({} AS {text}), '(not set)') AS {id}", column_expression(*column))));
        let base = self.base(&mut binder, self.session_source, self.range_millis, selected, Vec::new());
        let ids: Vec<&str> = columns.iter().map(|(id, ..)| *id).collect();
        let sets: Vec<String> = ids.iter().map(|id| format!("({id})")).collect();
        let dimension: Vec<String> = ids.iter().map(|id| format!("WHEN {id} IS NOT NULL THEN '{id}'")).collect();
        let sql = format!(
            "WITH {base}, \
             grouped AS (SELECT {}, COUNT(DISTINCT user_pseudo_id) AS value FROM base GROUP BY GROUPING SETS ({})), \
             labelled AS (SELECT CASE {} END AS dimension, COALESCE({}) AS label, value FROM grouped), \
             ranked AS (SELECT dimension, label, value, ROW_NUMBER() OVER (PARTITION BY dimension ORDER BY value DESC, label) AS position FROM labelled) \
             SELECT dimension, label, value FROM ranked WHERE position <= {TOP} ORDER BY dimension, value DESC, label",
            ids.join(", "),
            sets.join(", "),
            dimension.join(" "),
            ids.join(", "),
        );
        let statement = binder.finish(sql);
        columns.iter().map(|(id, title, _)| PanelQuery { id, title, chart: Chart::Bar, source: PanelSource::Part { statement: statement.clone(), dimension: id } }).collect()
    }

    /// `<label>`, `views`, `users` of one view event's page or screen.
    fn top_views(&self, id: &'static str, title: &'static str, label: &str, event: &str, column: Column) -> PanelQuery {
        let mut binder = Binder::new(self.dialect);
        if self.views_from_aggregate {
            // Each row: one user's views of one node; the views in the range are its times in
            // the range (all of them when the row lies inside).
            let schema = crate::sql::quote_identifier(&self.scope.app_id);
            let (from, to) = (binder.bind(self.range_millis.0), binder.bind(self.range_millis.1));
            let event = binder.bind(event);
            let sql = format!(
                "WITH counted AS (SELECT node, CASE WHEN view_times[1] >= {from} AND view_times[-1] < {to} THEN len(view_times) \
                 ELSE len(list_filter(view_times, lambda t: t >= {from} AND t < {to})) END AS views \
                 FROM {schema}.{USER_VIEWS_TABLE} WHERE view_event = {event} AND view_times[-1] >= {from} AND view_times[1] < {to}) \
                 SELECT node AS {label}, CAST(SUM(views) AS BIGINT) AS views, COUNT(*) FILTER (WHERE views > 0) AS users FROM counted \
                 GROUP BY node HAVING SUM(views) > 0 ORDER BY 2 DESC, 1 LIMIT 20"
            );
            return Self::panel(id, title, Chart::Table, binder, sql);
        }
        let mut columns = Source::Events.figure_columns();
        columns.push(format!("{} AS node", column_expression(column)));
        let conditions = vec![format!("e.event_name = {}", binder.bind(event)), format!("{} IS NOT NULL", column_expression(column))];
        let base = self.base(&mut binder, Source::Events, self.range_millis, columns, conditions);
        Self::panel(id, title, Chart::Table, binder, format!("WITH {base} SELECT node AS {label}, COUNT(*) AS views, COUNT(DISTINCT user_pseudo_id) AS users FROM base GROUP BY node ORDER BY 2 DESC, 1 LIMIT 20"))
    }

    /// The first (`ASC`) or last (`DESC`) page viewed in each session: from its page views,
    /// or from the first (last) page view of each of its aggregate rows.
    fn session_edge_pages(&self, id: &'static str, title: &'static str, direction: &str) -> PanelQuery {
        let mut binder = Binder::new(self.dialect);
        let source = self.session_source;
        let edge = if direction == "ASC" { "entry" } else { "exit" };
        let (columns, conditions) = match source {
            Source::Events => (
                ["e.user_pseudo_id", "e.session_id", "e.page_view_page_url_path AS node", "e.event_time_msec", "e.event_id"].map(String::from).to_vec(),
                vec![format!("e.event_name = {}", binder.bind(PAGE_VIEW)), "e.page_view_page_url_path IS NOT NULL".into()],
            ),
            _ => (
                vec!["e.user_pseudo_id".into(), "e.session_id".into(), format!("e.{edge}_page AS node"), format!("e.{edge}_time_msec AS event_time_msec"), format!("e.{edge}_event_id AS event_id")],
                vec![format!("e.{edge}_page IS NOT NULL")],
            ),
        };
        let base = self.base(&mut binder, source, self.range_millis, columns, conditions);
        // DuckDB takes each session's first (last) page in one grouped pass, about twice as
        // fast as numbering every page view with a window, which Redshift keeps.
        let edges = match (self.dialect, direction) {
            (Dialect::DuckDb, "ASC") => "edges AS (SELECT min_by(node, (event_time_msec, event_id)) AS node FROM base GROUP BY user_pseudo_id, session_id)".to_string(),
            (Dialect::DuckDb, _) => "edges AS (SELECT max_by(node, (event_time_msec, event_id)) AS node FROM base GROUP BY user_pseudo_id, session_id)".to_string(),
            (Dialect::Redshift, _) => format!(
                "ordered AS (SELECT node, ROW_NUMBER() OVER (PARTITION BY user_pseudo_id, session_id ORDER BY event_time_msec {direction}, event_id {direction}) AS position FROM base), \
                 edges AS (SELECT node FROM ordered WHERE position = 1)"
            ),
        };
        Self::panel(id, title, Chart::Bar, binder, format!("WITH {base}, {edges} SELECT node AS label, COUNT(*) AS value FROM edges GROUP BY node ORDER BY 2 DESC, 1 LIMIT {TOP}"))
    }

    /// Weekly cohorts of the 8 weeks up to the range's end, by any event.
    fn cohorts(&self) -> PanelQuery {
        let to = self.request.range.to;
        let monday = to - chrono::Duration::days(i64::from(chrono::Datelike::weekday(&to).num_days_from_monday()));
        let query = RetentionAnalysis {
            range: DateRange { from: monday - chrono::Duration::weeks(7), to },
            start_event: String::new(),
            return_event: String::new(),
            granularity: Granularity::Week,
            periods: 7,
            filters: self.request.filters.clone(),
        };
        let mut binder = Binder::new(self.dialect);
        let sql = retention_of_events(&mut binder, self.scope, self.session_source.table(), &query, RetentionMarks::AnyRow);
        Self::panel("cohorts", "Weekly cohorts (any event)", Chart::Cohort, binder, sql)
    }

    /// DAU / WAU / MAU by day, or their ratios (stickiness). Users active in the 7 (30) days
    /// ending on each day of the range, so the base reaches 29 days before the range.
    fn rolling_active_users(&self, ratios: bool) -> PanelQuery {
        let mut binder = Binder::new(self.dialect);
        let earliest = self.scope.range_millis(&DateRange { from: self.request.range.from - chrono::Duration::days(29), to: self.request.range.to });
        let base = self.base(&mut binder, self.session_source, earliest, vec!["e.user_pseudo_id".into(), format!("{} AS period", self.local_day())], Vec::new());
        let first_day = binder.bind(self.request.range.from.format("%Y-%m-%d").to_string().as_str());
        let first_day = self.dialect.date_parameter(&first_day);
        let float = self.dialect.float_type();
        // A user is counted on day d in the WAU (MAU) when one of their active days lies in
        // the 7 (30) days ending on d. Each active day covers the days up to 6 (29) later or
        // up to the user's next active day, whichever comes first, so every (user, day) is
        // covered once: +1 where a cover starts, -1 where it ends, and a running sum gives
        // the counts. One pass over the user-days, where joining every day with the user-days
        // of the month before it took 5× longer on 10M events.
        // Redshift has no named WINDOW clause: the frame is written out in each SUM.
        let running = "ORDER BY change_day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW";
        let rolling = format!(
            "user_days AS (SELECT DISTINCT user_pseudo_id, period FROM base), \
             covers AS (SELECT period AS day, LEAD(period) OVER (PARTITION BY user_pseudo_id ORDER BY period) AS next_day FROM user_days), \
             changes AS (SELECT day AS change_day, 1 AS dau, 1 AS wau, 1 AS mau FROM covers \
             UNION ALL SELECT day + 1, -1, 0, 0 FROM covers \
             UNION ALL SELECT LEAST(day + 7, COALESCE(next_day, day + 7)), 0, -1, 0 FROM covers \
             UNION ALL SELECT LEAST(day + 30, COALESCE(next_day, day + 30)), 0, 0, -1 FROM covers), \
             per_day AS (SELECT change_day, SUM(dau) AS dau, SUM(wau) AS wau, SUM(mau) AS mau FROM changes GROUP BY change_day), \
             running AS (SELECT change_day AS day, SUM(dau) OVER ({running}) AS dau, SUM(wau) OVER ({running}) AS wau, SUM(mau) OVER ({running}) AS mau FROM per_day), \
             rolling AS (SELECT day, dau, wau, mau FROM running WHERE day >= {first_day} AND day IN (SELECT period FROM user_days))"
        );
        let (id, title, series): (&'static str, &'static str, Vec<(&str, String)>) = if ratios {
            (
                "stickiness",
                "Stickiness",
                vec![("dau_over_wau", format!("CAST(dau AS {float}) / CAST(wau AS {float})")), ("dau_over_mau", format!("CAST(dau AS {float}) / CAST(mau AS {float})"))],
            )
        } else {
            ("active_users_rolling", "Daily, weekly and monthly active users", vec![("dau", "dau".into()), ("wau", "wau".into()), ("mau", "mau".into())])
        };
        let day = self.dialect.date_text("day");
        let selects: Vec<String> = series.iter().map(|(name, value)| format!("SELECT {day} AS period, '{name}' AS series, {value} AS value FROM rolling")).collect();
        Self::panel(id, title, Chart::Line, binder, format!("WITH {base}, {rolling} {} ORDER BY 1, 2", selects.join(" UNION ALL ")))
    }

    /// Events per local minute of the last half hour.
    fn per_minute(&self, between: (i64, i64)) -> PanelQuery {
        let mut binder = Binder::new(self.dialect);
        let minute = self.dialect.minute_text(&self.dialect.local_time("e.event_time_msec", self.scope.zone_name()));
        let base = self.base(&mut binder, Source::Events, between, vec![format!("{minute} AS period"), "e.event_time_msec".into()], Vec::new());
        Self::panel("events_per_minute", "Events per minute", Chart::Line, binder, format!("WITH {base} SELECT period, 'events' AS series, COUNT(*) AS value FROM base GROUP BY period ORDER BY MIN(event_time_msec)"))
    }
}
