//! The reporting aggregates: small tables rebuilt from an app's `event_v2` after each load
//! (the load workflow's last step), which the dashboards read instead of the events when a
//! page has no filter they cannot answer.
//!
//! They are kept per UTC quarter hour rather than per day so that they serve every time zone:
//! every zone's offset is a whole number of quarter hours, so each quarter hour lies in one
//! local day of any zone, and the local day of its first millisecond is the day of all its
//! events. A page's range (local midnights) therefore selects whole quarter hours, and the
//! figures equal the ones read from the events. Changing an app's time zone needs no rebuild.
//!
//! The columns keep `event_v2`'s names (`event_time_msec` is the quarter hour's first
//! millisecond), so the dashboards' `base` CTE and column expressions read either table.
//!
//! - `report_session_activity`: one row per quarter hour, user, session and the session's
//!   dimensions ([`SESSION_DIMENSIONS`]), with its events, page views, screen views and
//!   `_first_open`s, and its first and last page view (page, time, event id: a session's entry
//!   and exit pages are the first and last of its rows'). A user or session count is an exact
//!   `COUNT(DISTINCT …)` over its rows.
//! - `report_event_activity`: events per quarter hour and event name.
//!
//! On DuckDB three more keep sequences: for the explorations that follow each user or session
//! in time (funnel, path) when they have no filter and no breakdown, and for the top pages
//! and screens:
//! - `report_user_events`: one row per user, with the user's event names and, for each, the
//!   sorted list of its times. A funnel reads 300,000 rows instead of grouping 10M events.
//! - `report_session_pages`: one row per user and session (`session_id`, '' when missing)
//!   with its page views' times and pages, in (time, event id) order. A path over pages reads
//!   1M rows instead of grouping 6M page views.
//! - `report_user_views`: one row per view event (`_page_view`, `_screen_view`), page or
//!   screen (`node`) and user, with the sorted times of the user's views of it. The top pages
//!   and screens (views and users) read 5M small rows instead of counting distinct users
//!   over 6M page views.

use crate::{
    query::Column,
    sql::{Dialect, quote_identifier},
};

pub const SESSION_ACTIVITY_TABLE: &str = "report_session_activity";
pub const EVENT_ACTIVITY_TABLE: &str = "report_event_activity";
/// DuckDB only: each user's event names and the sorted times of each.
pub const USER_EVENTS_TABLE: &str = "report_user_events";
/// DuckDB only: each session's page views, in order.
pub const SESSION_PAGES_TABLE: &str = "report_session_pages";
/// DuckDB only: each user's views of each page and screen.
pub const USER_VIEWS_TABLE: &str = "report_user_views";
/// The aggregates' time step: every time zone's offset is a multiple of it.
pub const BUCKET_MILLIS: i64 = 15 * 60_000;

/// The columns of `event_v2` kept in `report_session_activity`: the dimensions of the
/// dashboards' breakdowns, which filters may use too.
pub const SESSION_DIMENSIONS: [Column; 9] = [
    Column::Platform,
    Column::DeviceOperatingSystem,
    Column::DeviceUaBrowser,
    Column::DeviceMobileModelName,
    Column::ScreenResolution,
    Column::AppVersion,
    Column::TrafficSourceSource,
    Column::TrafficSourceChannelGroup,
    Column::GeoCountry,
];

/// The events whose counts `report_session_activity` keeps, by column.
const COUNTED_EVENTS: [(&str, &str); 3] = [("page_views", "_page_view"), ("screen_views", "_screen_view"), ("first_opens", "_first_open")];

/// The page views a session's entry and exit pages come from.
const IS_PAGE_VIEW: &str = "event_name = '_page_view' AND page_view_page_url_path IS NOT NULL";

/// A row's first (`entry_…`) and last (`exit_…`) page view: page, time, event id.
const EDGE_COLUMNS: [(&str, ColumnType); 6] = [
    ("entry_page", ColumnType::Text),
    ("entry_time_msec", ColumnType::BigInt),
    ("entry_event_id", ColumnType::Text),
    ("exit_page", ColumnType::Text),
    ("exit_time_msec", ColumnType::BigInt),
    ("exit_event_id", ColumnType::Text),
];

#[derive(Clone, Copy)]
enum ColumnType {
    Text,
    Integer,
    BigInt,
    /// DuckDB lists, for the sequence tables.
    TextList,
    BigIntList,
    BigIntListList,
}

/// `report_session_activity`'s key columns as stored (the screen resolution is kept as its
/// two `event_v2` columns, which `column_expression` joins).
fn session_key_columns() -> Vec<(&'static str, ColumnType)> {
    let mut columns = vec![("event_time_msec", ColumnType::BigInt), ("user_pseudo_id", ColumnType::Text), ("session_id", ColumnType::Text)];
    for dimension in SESSION_DIMENSIONS {
        match dimension {
            Column::ScreenResolution => columns.extend([("device_screen_width", ColumnType::Integer), ("device_screen_height", ColumnType::Integer)]),
            dimension => columns.push((dimension.name(), ColumnType::Text)),
        }
    }
    columns
}

fn type_name(dialect: Dialect, column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::Text => dialect.text_type(),
        ColumnType::Integer => "INTEGER",
        ColumnType::BigInt => "BIGINT",
        ColumnType::TextList => "VARCHAR[]",
        ColumnType::BigIntList => "BIGINT[]",
        ColumnType::BigIntListList => "BIGINT[][]",
    }
}

fn create_table(dialect: Dialect, schema: &str, table: &str, columns: &[(&str, ColumnType)]) -> String {
    let columns: Vec<String> = columns.iter().map(|(name, column_type)| format!("{name} {}", type_name(dialect, *column_type))).collect();
    // Redshift keeps the rows sorted by time, so a page's range reads only its blocks.
    let sorting = match dialect {
        Dialect::DuckDb => "",
        Dialect::Redshift => " SORTKEY (event_time_msec)",
    };
    format!("CREATE TABLE IF NOT EXISTS {schema}.{table} ({}){sorting}", columns.join(", "))
}

/// The quarter hour holding `event_time_msec`, as its first millisecond.
fn bucket_start(dialect: Dialect) -> String {
    match dialect {
        Dialect::DuckDb => format!("(event_time_msec // {BUCKET_MILLIS}) * {BUCKET_MILLIS}"),
        Dialect::Redshift => format!("(event_time_msec / {BUCKET_MILLIS}) * {BUCKET_MILLIS}"),
    }
}

/// Creates an app's aggregate tables when missing (empty). The loads run these with the
/// tables they create, so the aggregates exist whenever `event_v2` does.
pub fn create_statements(app_id: &str, dialect: Dialect) -> Vec<String> {
    let schema = quote_identifier(app_id);
    let mut session_columns = session_key_columns();
    session_columns.extend([("events", ColumnType::BigInt)]);
    session_columns.extend(COUNTED_EVENTS.map(|(column, _)| (column, ColumnType::BigInt)));
    session_columns.extend(EDGE_COLUMNS);
    let mut statements = vec![
        create_table(dialect, &schema, SESSION_ACTIVITY_TABLE, &session_columns),
        create_table(dialect, &schema, EVENT_ACTIVITY_TABLE, &[("event_time_msec", ColumnType::BigInt), ("event_name", ColumnType::Text), ("events", ColumnType::BigInt)]),
    ];
    if dialect == Dialect::DuckDb {
        statements.push(create_table(dialect, &schema, USER_EVENTS_TABLE, &[("user_pseudo_id", ColumnType::Text), ("event_names", ColumnType::TextList), ("event_times", ColumnType::BigIntListList)]));
        statements.push(create_table(dialect, &schema, SESSION_PAGES_TABLE, &[("user_pseudo_id", ColumnType::Text), ("path_key", ColumnType::Text), ("page_times", ColumnType::BigIntList), ("pages", ColumnType::TextList)]));
        statements.push(create_table(dialect, &schema, USER_VIEWS_TABLE, &[("view_event", ColumnType::Text), ("node", ColumnType::Text), ("user_pseudo_id", ColumnType::Text), ("view_times", ColumnType::BigIntList)]));
    }
    statements
}

/// DuckDB: empties and refills the sequence tables (see the module's documentation).
fn sequence_refresh_statements(schema: &str) -> Vec<String> {
    vec![
        format!("DELETE FROM {schema}.{USER_EVENTS_TABLE}"),
        format!("DELETE FROM {schema}.{SESSION_PAGES_TABLE}"),
        format!("DELETE FROM {schema}.{USER_VIEWS_TABLE}"),
        // Sorted by event and node: a panel's event reads its rows' blocks only.
        format!(
            "INSERT INTO {schema}.{USER_VIEWS_TABLE} SELECT event_name, CASE WHEN event_name = '_page_view' THEN page_view_page_url_path ELSE screen_view_screen_name END AS node, \
             user_pseudo_id, list(event_time_msec ORDER BY event_time_msec) FROM {schema}.event_v2 \
             WHERE ({IS_PAGE_VIEW}) OR (event_name = '_screen_view' AND screen_view_screen_name IS NOT NULL) GROUP BY ALL ORDER BY 1, 2"
        ),
        format!(
            "INSERT INTO {schema}.{USER_EVENTS_TABLE} SELECT user_pseudo_id, list(event_name ORDER BY event_name), list(times ORDER BY event_name) \
             FROM (SELECT user_pseudo_id, event_name, list(event_time_msec ORDER BY event_time_msec) AS times FROM {schema}.event_v2 \
             WHERE user_pseudo_id IS NOT NULL AND event_name IS NOT NULL GROUP BY ALL) GROUP BY user_pseudo_id"
        ),
        format!(
            "INSERT INTO {schema}.{SESSION_PAGES_TABLE} SELECT user_pseudo_id, COALESCE(session_id, '') AS path_key, \
             list(event_time_msec ORDER BY event_time_msec, event_id), list(page_view_page_url_path ORDER BY event_time_msec, event_id) \
             FROM {schema}.event_v2 WHERE {IS_PAGE_VIEW} GROUP BY ALL"
        ),
    ]
}

/// Rebuilds an app's aggregates from its `event_v2` (which must exist): create when missing,
/// empty, refill; run them in one transaction so that readers see the old rows or the new.
/// A full rebuild is exact whatever the loads changed (late events, deleted expired rows); it
/// reads `event_v2` twice (five times on DuckDB, with the sequence tables). The row counts
/// are those of the last two statements.
pub fn refresh_statements(app_id: &str, dialect: Dialect) -> Vec<String> {
    let schema = quote_identifier(app_id);
    let bucket = bucket_start(dialect);
    let keys: Vec<&str> = session_key_columns().into_iter().skip(1).map(|(name, _)| name).collect();
    let counts: Vec<String> = COUNTED_EVENTS.iter().map(|(column, event)| format!("SUM(CASE WHEN event_name = '{event}' THEN 1 ELSE 0 END) AS {column}")).collect();
    let positions = |count: usize| (1..=count).map(|position| position.to_string()).collect::<Vec<_>>().join(", ");
    // DuckDB keeps rows in insertion order: sorted, its zone maps skip what a range excludes
    // (Redshift sorts by the table's sort key).
    let sorted = match dialect {
        Dialect::DuckDb => " ORDER BY 1",
        Dialect::Redshift => "",
    };
    // Each row's first and last page view. DuckDB takes them in the grouping pass
    // (`arg_min` / `arg_max` over the page views); Redshift, which has neither nor FILTER,
    // numbers the rows of each group both ways with page views first and keeps number 1.
    let (edges, source) = match dialect {
        Dialect::DuckDb => (
            format!(
                "arg_min(page_view_page_url_path, (event_time_msec, event_id)) FILTER (WHERE {IS_PAGE_VIEW}) AS entry_page, \
                 MIN(event_time_msec) FILTER (WHERE {IS_PAGE_VIEW}) AS entry_time_msec, \
                 arg_min(event_id, (event_time_msec, event_id)) FILTER (WHERE {IS_PAGE_VIEW}) AS entry_event_id, \
                 arg_max(page_view_page_url_path, (event_time_msec, event_id)) FILTER (WHERE {IS_PAGE_VIEW}) AS exit_page, \
                 MAX(event_time_msec) FILTER (WHERE {IS_PAGE_VIEW}) AS exit_time_msec, \
                 arg_max(event_id, (event_time_msec, event_id)) FILTER (WHERE {IS_PAGE_VIEW}) AS exit_event_id"
            ),
            format!("{schema}.event_v2"),
        ),
        Dialect::Redshift => {
            let partition = format!("PARTITION BY {bucket}, {}", keys.join(", "));
            let page_views_first = format!("CASE WHEN {IS_PAGE_VIEW} THEN 0 ELSE 1 END");
            let edge = |rank: &str, column: &str, alias: &str| format!("MAX(CASE WHEN {rank} = 1 THEN {column} END) AS {alias}");
            (
                [
                    edge("entry_rank", "page_view_page_url_path", "entry_page"),
                    edge("entry_rank", "event_time_msec", "entry_time_msec"),
                    edge("entry_rank", "event_id", "entry_event_id"),
                    edge("exit_rank", "page_view_page_url_path", "exit_page"),
                    edge("exit_rank", "event_time_msec", "exit_time_msec"),
                    edge("exit_rank", "event_id", "exit_event_id"),
                ]
                .join(", "),
                format!(
                    "(SELECT event_time_msec, event_id, event_name, page_view_page_url_path, {}, \
                     CASE WHEN {IS_PAGE_VIEW} THEN ROW_NUMBER() OVER ({partition} ORDER BY {page_views_first}, event_time_msec, event_id) END AS entry_rank, \
                     CASE WHEN {IS_PAGE_VIEW} THEN ROW_NUMBER() OVER ({partition} ORDER BY {page_views_first}, event_time_msec DESC, event_id DESC) END AS exit_rank \
                     FROM {schema}.event_v2) AS e",
                    keys.join(", ")
                ),
            )
        }
    };
    let mut statements = create_statements(app_id, dialect);
    if dialect == Dialect::DuckDb {
        statements.extend(sequence_refresh_statements(&schema));
    }
    statements.push(format!("DELETE FROM {schema}.{SESSION_ACTIVITY_TABLE}"));
    statements.push(format!("DELETE FROM {schema}.{EVENT_ACTIVITY_TABLE}"));
    statements.push(format!(
        "INSERT INTO {schema}.{SESSION_ACTIVITY_TABLE} SELECT {bucket} AS event_time_msec, {}, COUNT(*) AS events, {}, {edges} FROM {source} GROUP BY {}{sorted}",
        keys.join(", "),
        counts.join(", "),
        positions(keys.len() + 1)
    ));
    statements.push(format!(
        "INSERT INTO {schema}.{EVENT_ACTIVITY_TABLE} SELECT {bucket} AS event_time_msec, event_name, COUNT(*) AS events FROM {schema}.event_v2 WHERE event_name IS NOT NULL GROUP BY 1, 2{sorted}"
    ));
    statements
}

/// The `report_session_activity` column counting an event (`_page_view` → `page_views`, …),
/// if it keeps one.
pub fn counted_event_column(event_name: &str) -> Option<&'static str> {
    COUNTED_EVENTS.iter().find(|(_, event)| *event == event_name).map(|(column, _)| *column)
}

/// Whether a filter can be answered from `report_session_activity`: it reads one of its
/// dimensions.
pub fn session_activity_answers(field: &crate::query::Field) -> bool {
    matches!(field, crate::query::Field::Column(column) if SESSION_DIMENSIONS.contains(column))
}

/// The kind of a column QuickSight reads from a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSetColumnKind {
    Text,
    Integer,
    Timestamp,
}

/// A QuickSight data set over one aggregate: its SQL (the aggregate's rows, with `event_time`
/// the quarter hour's first instant in the app's time zone, which QuickSight groups by day,
/// week or month) and its columns.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateDataSet {
    /// `sessions` or `events`: the template's placeholder and the end of the data set's id.
    pub name: &'static str,
    pub sql: String,
    pub columns: Vec<(&'static str, DataSetColumnKind)>,
}

/// The data sets of an app's dashboards in QuickSight: one per aggregate.
pub fn quicksight_data_sets(scope: &crate::AppScope, dialect: Dialect) -> Vec<AggregateDataSet> {
    let schema = quote_identifier(&scope.app_id);
    let local_time = dialect.local_time("event_time_msec", scope.zone_name());
    let kind_of = |column_type: ColumnType| match column_type {
        ColumnType::Integer | ColumnType::BigInt => DataSetColumnKind::Integer,
        // The session columns are all scalar.
        ColumnType::Text | ColumnType::TextList | ColumnType::BigIntList | ColumnType::BigIntListList => DataSetColumnKind::Text,
    };
    let mut session_columns: Vec<(&'static str, DataSetColumnKind)> = session_key_columns().into_iter().skip(1).map(|(name, column_type)| (name, kind_of(column_type))).collect();
    session_columns.push(("events", DataSetColumnKind::Integer));
    session_columns.extend(COUNTED_EVENTS.map(|(column, _)| (column, DataSetColumnKind::Integer)));
    let event_columns = vec![("event_name", DataSetColumnKind::Text), ("events", DataSetColumnKind::Integer)];
    [("sessions", SESSION_ACTIVITY_TABLE, session_columns), ("events", EVENT_ACTIVITY_TABLE, event_columns)]
        .into_iter()
        .map(|(name, table, mut columns)| {
            let selected: Vec<&str> = columns.iter().map(|(column, _)| *column).collect();
            let sql = format!("SELECT {local_time} AS event_time, {} FROM {schema}.{table}", selected.join(", "));
            columns.insert(0, ("event_time", DataSetColumnKind::Timestamp));
            AggregateDataSet { name, sql, columns }
        })
        .collect()
}
