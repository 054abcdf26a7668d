//! The dashboard pages over the dataset of explorations.rs (tests/common), figures worked out
//! by hand: DuckDB executed, Redshift SQL compared to golden files.

mod common;

use clickstream_reporting::{
    AppScope, Dialect, ResultTable,
    dashboards::{Chart, DashboardPage, DashboardRequest, PanelSource, build_dashboard, check_dashboard},
    query::{Column, Condition, Field, Operator},
    run_on_duckdb,
};
use common::*;
use serde_json::json;

/// Every panel of a page: its Redshift SQL compared to `dashboard_<golden>_<panel>` (and to
/// `dashboard_<golden>_<panel>.from_events` when reading `event_v2` differs), its DuckDB answer
/// returned by id (metadata panels are left out: the console fills them). The DuckDB answers
/// from the reporting aggregates must equal those from the events.
fn page(golden: &str, page: DashboardPage, request: &DashboardRequest) -> Vec<(&'static str, Chart, ResultTable)> {
    check_dashboard(request, &catalog()).unwrap();
    let scope = AppScope::new(APP, "UTC").unwrap();
    let connection = warehouse();
    let from_events = DashboardRequest { use_aggregates: false, ..request.clone() };
    let redshift_from_events = build_dashboard(page, &from_events, &scope, Dialect::Redshift);
    let redshift = build_dashboard(page, request, &scope, Dialect::Redshift);
    for (panel, panel_from_events) in redshift.iter().zip(&redshift_from_events) {
        let (Some(statement), Some(statement_from_events)) = (panel.source.statement(), panel_from_events.source.statement()) else { continue };
        compare_golden(&format!("dashboard_{golden}_{}", panel.id), &golden_text(statement));
        if statement != statement_from_events {
            compare_golden(&format!("dashboard_{golden}_{}.from_events", panel.id), &golden_text(statement_from_events));
        }
    }
    let answers = duckdb_answers(&connection, page, request, &scope);
    assert_eq!(answers, duckdb_answers(&connection, page, &from_events, &scope), "{golden}: the aggregates' answers differ from the events'");
    answers
}

fn golden_text(statement: &clickstream_reporting::Statement) -> String {
    format!("{}\n-- parameters: {}\n", statement.sql, serde_json::to_string(&statement.parameters).unwrap())
}

fn duckdb_answers(connection: &duckdb::Connection, page: DashboardPage, request: &DashboardRequest, scope: &AppScope) -> Vec<(&'static str, Chart, ResultTable)> {
    let mut answers = Vec::new();
    for panel in build_dashboard(page, request, scope, Dialect::DuckDb) {
        let Some(statement) = panel.source.statement() else { continue };
        let answer = run_on_duckdb(connection, statement).unwrap_or_else(|error| panic!("{}: {error}\n{}", panel.id, statement.sql));
        answers.push((panel.id, panel.chart, panel.source.panel_table(answer)));
    }
    answers
}

fn panel<'a>(answers: &'a [(&'static str, Chart, ResultTable)], id: &str) -> &'a ResultTable {
    &answers.iter().find(|(panel, ..)| *panel == id).unwrap_or_else(|| panic!("no panel {id}")).2
}

fn two_weeks() -> DashboardRequest {
    DashboardRequest { range: range(0, 13), filters: Vec::new(), now_millis: 0, use_aggregates: true }
}

#[test]
fn overview_counts_users_sessions_and_events() {
    let answers = page("overview", DashboardPage::Overview, &two_weeks());
    let kpis = panel(&answers, "kpis");
    assert_eq!(kpis.columns, ["active_users", "new_users", "sessions", "events", "page_views"]);
    // u1–u4; _first_open of u1 and u3; sessions s1–s8; 17 events of which 9 page views.
    assert_eq!(rows(kpis), [json!([4, 2, 8, 17, 9])]);
    assert_eq!(
        rows(panel(&answers, "active_users")),
        [
            json!(["2026-11-02", "active_users", 3]),
            json!(["2026-11-02", "new_users", 1]),
            json!(["2026-11-03", "active_users", 2]),
            json!(["2026-11-03", "new_users", 1]),
            json!(["2026-11-04", "active_users", 1]),
            json!(["2026-11-04", "new_users", 0]),
            json!(["2026-11-10", "active_users", 1]),
            json!(["2026-11-10", "new_users", 0]),
        ]
    );
    assert_eq!(rows(panel(&answers, "top_events")), [json!(["_page_view", 9]), json!(["add_to_cart", 3]), json!(["purchase", 3]), json!(["_first_open", 2])]);

    // A filter applies to every panel: US users are u1 and u3.
    let us = DashboardRequest { filters: vec![Condition { field: Field::Column(Column::GeoCountry), operator: Operator::Equals, values: vec!["US".into()] }], ..two_weeks() };
    let answers = page("overview_us", DashboardPage::Overview, &us);
    assert_eq!(rows(panel(&answers, "kpis")), [json!([2, 2, 4, 10, 6])], "u1 (s1, s2: 6 events) and u3 (s4, s5: 4 events)");
}

#[test]
fn engagement_ranks_pages_and_finds_entry_and_exit_pages() {
    let answers = page("engagement", DashboardPage::Engagement, &two_weeks());
    assert_eq!(panel(&answers, "top_pages").columns, ["page", "views", "users"]);
    assert_eq!(rows(panel(&answers, "top_pages")), [json!(["/home", 5, 3]), json!(["/product", 3, 2]), json!(["/about", 1, 1])]);
    assert!(panel(&answers, "top_screens").rows.is_empty(), "no screen views");
    // Sessions: s1 /home→/product, s2 /home, s3 /home→/product, s8 /product, s4 /home→/about, s5 /home.
    assert_eq!(rows(panel(&answers, "entry_pages")), [json!(["/home", 5]), json!(["/product", 1])]);
    assert_eq!(rows(panel(&answers, "exit_pages")), [json!(["/product", 3]), json!(["/home", 2]), json!(["/about", 1])]);
}

#[test]
fn retention_page_has_cohorts_rolling_active_users_and_stickiness() {
    let answers = page("retention", DashboardPage::Retention, &two_weeks());
    // Any event: all four users start in the week of 2 November; u3 comes back the next week.
    assert_eq!(rows(panel(&answers, "cohorts")), [json!(["2026-11-02", 4, 0, 4]), json!(["2026-11-02", 4, 1, 1])]);
    assert_eq!(
        rows(panel(&answers, "new_vs_returning")),
        [
            json!(["2026-11-02", "new", 1]),
            json!(["2026-11-02", "returning", 2]),
            json!(["2026-11-03", "new", 1]),
            json!(["2026-11-03", "returning", 1]),
            json!(["2026-11-04", "new", 0]),
            json!(["2026-11-04", "returning", 1]),
            json!(["2026-11-10", "new", 0]),
            json!(["2026-11-10", "returning", 1]),
        ]
    );
    // d0: u1 u2 u4; d1: u1 u3 (week: all four); d2: u2; d8: u3 (week of 4–10 Nov: u2, u3).
    assert_eq!(
        rows(panel(&answers, "active_users_rolling")),
        [
            json!(["2026-11-02", "dau", 3]),
            json!(["2026-11-02", "mau", 3]),
            json!(["2026-11-02", "wau", 3]),
            json!(["2026-11-03", "dau", 2]),
            json!(["2026-11-03", "mau", 4]),
            json!(["2026-11-03", "wau", 4]),
            json!(["2026-11-04", "dau", 1]),
            json!(["2026-11-04", "mau", 4]),
            json!(["2026-11-04", "wau", 4]),
            json!(["2026-11-10", "dau", 1]),
            json!(["2026-11-10", "mau", 4]),
            json!(["2026-11-10", "wau", 2]),
        ]
    );
    let stickiness = rows(panel(&answers, "stickiness"));
    assert_eq!(stickiness[0], json!(["2026-11-02", "dau_over_mau", 1.0]));
    assert_eq!(stickiness[6], json!(["2026-11-10", "dau_over_mau", 0.25]));
    assert_eq!(stickiness[7], json!(["2026-11-10", "dau_over_wau", 0.5]));
}

#[test]
fn device_acquisition_and_realtime_pages() {
    let device = page("device", DashboardPage::Device, &two_weeks());
    assert_eq!(rows(panel(&device, "platform")), [json!(["Web", 4])]);
    assert_eq!(rows(panel(&device, "resolution")), [json!(["1280x800", 4])]);
    assert_eq!(rows(panel(&device, "browser")), [json!(["(not set)", 4])]);

    let acquisition = page("acquisition", DashboardPage::Acquisition, &two_weeks());
    assert_eq!(rows(panel(&acquisition, "users_by_country")), [json!(["US", 2]), json!(["DE", 1]), json!(["FR", 1])]);
    assert_eq!(rows(panel(&acquisition, "new_users_by_source")), [json!(["(not set)", 2])], "the two _first_open users");

    // Now = d8 08:10: only u3's 08:00 page view is in the last 30 minutes.
    let realtime = page("realtime", DashboardPage::Realtime, &DashboardRequest { now_millis: DAY_ZERO_MILLIS + ((8 * 24 + 8) * 60 + 10) * 60_000, ..two_weeks() });
    assert_eq!(rows(panel(&realtime, "kpis")), [json!([1, 1])]);
    assert_eq!(rows(panel(&realtime, "events_per_minute")), [json!(["08:00", "events", 1])]);
}

#[test]
fn details_come_from_the_metadata_scan() {
    let scope = AppScope::new(APP, "UTC").unwrap();
    let panels = build_dashboard(DashboardPage::Details, &two_weeks(), &scope, Dialect::DuckDb);
    assert_eq!(panels.iter().map(|panel| (panel.id, panel.source.clone())).collect::<Vec<_>>(), [("user_attributes", PanelSource::ScannedUserAttributes), ("event_parameters", PanelSource::ScannedEventParameters)]);
}

/// The aggregates are kept per UTC quarter hour, so that any time zone's local days are whole
/// quarter hours: events either side of the local midnights of zones offset by half and
/// quarter hours (and a DST zone) are counted on the same days from either table.
#[test]
fn aggregates_answer_as_the_events_do_in_every_time_zone() {
    let connection = warehouse();
    // 18:14 / 18:15 UTC: midnight in Kathmandu (+5:45); 18:29 / 18:30: in Kolkata (+5:30);
    // 03:29 / 03:30: in St John's (-3:30); 04:59 / 05:00: in New York (-5:00).
    let minutes_of_day = [18 * 60 + 14, 18 * 60 + 15, 18 * 60 + 29, 18 * 60 + 30, 3 * 60 + 29, 3 * 60 + 30, 4 * 60 + 59, 5 * 60];
    for (index, minute) in minutes_of_day.into_iter().enumerate() {
        let millis = DAY_ZERO_MILLIS + (3 * 24 * 60 + minute) * 60_000;
        connection
            .execute_batch(&format!(
                "INSERT INTO \"shop-web\".event_v2 (event_id, event_name, user_pseudo_id, session_id, event_time_msec, platform, geo_country)
                 VALUES ('edge-{index}', '_page_view', 'edge-user-{index}', 'edge-session-{index}', {millis}, 'Web', 'NP');"
            ))
            .unwrap();
    }
    for statement in clickstream_reporting::aggregates::refresh_statements(APP, Dialect::DuckDb) {
        connection.execute_batch(&statement).unwrap();
    }
    for zone in ["Asia/Kathmandu", "Asia/Kolkata", "America/St_Johns", "America/New_York", "Australia/Lord_Howe"] {
        let scope = AppScope::new(APP, zone).unwrap();
        let request = two_weeks();
        let from_events = DashboardRequest { use_aggregates: false, ..two_weeks() };
        let overview = build_dashboard(DashboardPage::Overview, &request, &scope, Dialect::DuckDb);
        assert!(overview[0].source.statement().unwrap().sql.contains("report_session_activity"), "the overview reads the aggregates");
        for page in DashboardPage::ALL {
            let answers = duckdb_answers(&connection, page, &request, &scope);
            assert_eq!(answers, duckdb_answers(&connection, page, &from_events, &scope), "{zone}, {}", page.name());
        }
    }
    // Ranges that cut users' views of a page (the top pages read each user's view times).
    let scope = AppScope::new(APP, "UTC").unwrap();
    for (from, to) in [(1, 13), (2, 5), (0, 0), (3, 3)] {
        let request = DashboardRequest { range: range(from, to), ..two_weeks() };
        let from_events = DashboardRequest { use_aggregates: false, ..request.clone() };
        let answers = duckdb_answers(&connection, DashboardPage::Engagement, &request, &scope);
        assert_eq!(answers, duckdb_answers(&connection, DashboardPage::Engagement, &from_events, &scope), "engagement over days {from}..={to}");
    }
}
