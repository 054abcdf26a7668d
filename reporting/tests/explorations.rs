//! The explorations over a small dataset whose answers are worked out by hand below: the
//! DuckDB SQL is executed on a real DuckDB, and the Redshift SQL (same builder, other dialect)
//! is compared to golden files in tests/golden/ (`CLICKSTREAM_BLESS=1` rewrites them).
//!
//! The dataset (app `shop-web`, day 0 = Monday 2026-11-02, times UTC):
//!
//! | user | country | plan | events |
//! | --- | --- | --- | --- |
//! | u1 | US | pro  | d0 09:59 _first_open (s1), 10:00 pv /home (s1), 10:01 pv /product (s1), 10:02 add_to_cart price=10 (s1), 10:05 purchase value 100 (s1); d1 09:00 pv /home (s2) |
//! | u2 | DE | free | d0 11:00 pv /home (s3), 11:10 pv /product (s3), 11:20 add_to_cart price=25 (s3), 20:00 pv /product (s8); d2 12:00 purchase value 50 (s6) |
//! | u3 | US | —    | d1 07:59 _first_open (s4), 08:00 pv /home (s4), 08:30 pv /about (s4); d8 08:00 pv /home (s5) |
//! | u4 | FR | —    | d0 12:00 add_to_cart price=5 (s7), 12:30 purchase value 30 (s7) |

mod common;

use clickstream_reporting::{
    AppScope, Dialect, Exploration, ResultTable, build_exploration, check_exploration,
    query::{
        AttributionAnalysis, AttributionModel, Column, Condition, DateRange, EventAnalysis, Field, FunnelAnalysis, Granularity, Measure, Operator, PathAnalysis, PathNode, PathSplit, RetentionAnalysis,
    },
    run_on_duckdb,
};
use common::*;
use serde_json::{Value, json};

fn event_analysis(events: &[&str], measure: Measure, granularity: Granularity, group_by: Option<Field>, filters: Vec<Condition>, range: DateRange) -> Exploration {
    Exploration::Event(EventAnalysis { range, events: names(events), measure, granularity, group_by, filters })
}

#[test]
fn event_analysis_counts_sums_and_groups_by_local_day() {
    let table = answer("event_page_views_by_day", event_analysis(&["_page_view"], Measure::Count, Granularity::Day, None, vec![], range(0, 13)));
    assert_eq!(table.columns, ["period", "event_name", "group_value", "value"]);
    // UTC days: d0 e01 e02 e06 e07 e09 = 5; d1 e05 e11 e12 = 3; d8 e13 = 1.
    assert_eq!(rows(&table), [json!(["2026-11-02", "_page_view", null, 5]), json!(["2026-11-03", "_page_view", null, 3]), json!(["2026-11-10", "_page_view", null, 1])]);

    // In Shanghai (UTC+8), e09 (d0 20:00 UTC) falls on d1 at 04:00.
    let shanghai = answer_in_zone("event_page_views_by_day_shanghai", event_analysis(&["_page_view"], Measure::Count, Granularity::Day, None, vec![], range(0, 13)), "Asia/Shanghai");
    assert_eq!(rows(&shanghai), [json!(["2026-11-02", "_page_view", null, 4]), json!(["2026-11-03", "_page_view", null, 4]), json!(["2026-11-10", "_page_view", null, 1])]);

    // A one-day range keeps that day only.
    let one_day = answer("event_page_views_one_day", event_analysis(&["_page_view"], Measure::Users, Granularity::Day, None, vec![], range(1, 1)));
    assert_eq!(rows(&one_day), [json!(["2026-11-03", "_page_view", null, 2])], "u1 and u3 on d1");

    // Purchases' event_value by week: 100 + 50 + 30, all in the week of Monday 2 November.
    let revenue = answer("event_purchase_value_by_week", event_analysis(&["purchase"], Measure::Sum { event_parameter: None }, Granularity::Week, None, vec![], range(0, 13)));
    assert_eq!(rows(&revenue), [json!(["2026-11-02", "purchase", null, 180.0])]);

    // The `price` parameter summed, per country: US 10, DE 25, FR 5.
    let by_country = answer(
        "event_cart_price_by_country",
        event_analysis(&["add_to_cart"], Measure::Sum { event_parameter: Some("price".into()) }, Granularity::Month, Some(Field::Column(Column::GeoCountry)), vec![], range(0, 13)),
    );
    assert_eq!(rows(&by_country), [json!(["2026-11-01", "add_to_cart", "DE", 25.0]), json!(["2026-11-01", "add_to_cart", "FR", 5.0]), json!(["2026-11-01", "add_to_cart", "US", 10.0])]);

    // Filters: price > 6 keeps u1's and u2's carts; a user attribute filter joins user_v2.
    let expensive = answer(
        "event_carts_over_6",
        event_analysis(&["add_to_cart"], Measure::Count, Granularity::Month, None, vec![Condition { field: Field::EventParameter("price".into()), operator: Operator::GreaterThan, values: vec!["6".into()] }], range(0, 13)),
    );
    assert_eq!(rows(&expensive), [json!(["2026-11-01", "add_to_cart", null, 2])]);
    let pro_users = answer(
        "event_all_by_plan",
        event_analysis(&[], Measure::Users, Granularity::Month, Some(Field::UserAttribute("plan".into())), vec![Condition { field: Field::Column(Column::GeoCountry), operator: Operator::In, values: names(&["US", "DE"]) }], range(0, 13)),
    );
    // u3 (US) has no user_v2 row: group null. Events per name and plan, distinct users.
    assert_eq!(
        rows(&pro_users),
        [
            json!(["2026-11-01", "_first_open", null, 1]),
            json!(["2026-11-01", "_first_open", "pro", 1]),
            json!(["2026-11-01", "_page_view", null, 1]),
            json!(["2026-11-01", "_page_view", "free", 1]),
            json!(["2026-11-01", "_page_view", "pro", 1]),
            json!(["2026-11-01", "add_to_cart", "free", 1]),
            json!(["2026-11-01", "add_to_cart", "pro", 1]),
            json!(["2026-11-01", "purchase", "free", 1]),
            json!(["2026-11-01", "purchase", "pro", 1]),
        ]
    );
}

fn funnel(group_by: Option<Field>, filters: Vec<Condition>) -> Exploration {
    Exploration::Funnel(FunnelAnalysis { range: range(0, 13), steps: names(&["_page_view", "add_to_cart", "purchase"]), window_seconds: 86_400, group_by, filters })
}

#[test]
fn funnel_counts_users_through_ordered_steps_within_the_window() {
    // u1 does all three within minutes; u2's purchase comes 2 days after the first page view
    // (outside the 1-day window); u3 never adds to cart; u4 never views a page.
    let table = answer("funnel_three_steps", funnel(None, vec![]));
    assert_eq!(table.columns, ["group_value", "step", "event_name", "users"]);
    assert_eq!(rows(&table), [json!([null, 1, "_page_view", 3]), json!([null, 2, "add_to_cart", 2]), json!([null, 3, "purchase", 1])]);

    let by_country = answer("funnel_by_country", funnel(Some(Field::Column(Column::GeoCountry)), vec![]));
    assert_eq!(
        rows(&by_country),
        [json!(["DE", 1, "_page_view", 1]), json!(["DE", 2, "add_to_cart", 1]), json!(["US", 1, "_page_view", 2]), json!(["US", 2, "add_to_cart", 1]), json!(["US", 3, "purchase", 1])]
    );

    // Grouped by a value that changes between a user's step-1 events (the page path): each
    // user enters once, in the group of their first page view (/home for all three).
    let by_page = answer("funnel_by_first_page", funnel(Some(Field::Column(Column::PageViewPageUrlPath)), vec![]));
    assert_eq!(rows(&by_page), [json!(["/home", 1, "_page_view", 3]), json!(["/home", 2, "add_to_cart", 2]), json!(["/home", 3, "purchase", 1])]);

    let pro = answer("funnel_pro_users", funnel(None, vec![Condition { field: Field::UserAttribute("plan".into()), operator: Operator::Equals, values: names(&["pro"]) }]));
    assert_eq!(rows(&pro), [json!([null, 1, "_page_view", 1]), json!([null, 2, "add_to_cart", 1]), json!([null, 3, "purchase", 1])]);
}

/// DuckDB answers a funnel without breakdown or filter, and a page path by session without
/// filter, from the sequence aggregates, and a retention of page views from the session
/// aggregate; with a filter every event passes, from the events.
/// Both must agree over whole and partial ranges (sessions and windows cut by a range's ends).
#[test]
fn the_sequence_aggregates_answer_as_the_events_do() {
    let every_event = vec![Condition { field: Field::Column(Column::EventName), operator: Operator::IsNotNull, values: Vec::new() }];
    let on_duckdb = |exploration: Exploration| {
        let statement = build_exploration(&exploration, &AppScope::new(APP, "UTC").unwrap(), Dialect::DuckDb);
        (run_on_duckdb(&warehouse(), &statement).unwrap_or_else(|error| panic!("{error}\n{}", statement.sql)), statement.sql)
    };
    for (from, to) in [(0, 13), (0, 0), (1, 13), (2, 13), (0, 1)] {
        let funnel = |filters: Vec<Condition>| {
            Exploration::Funnel(FunnelAnalysis { range: range(from, to), steps: names(&["_page_view", "add_to_cart", "purchase"]), window_seconds: 86_400, group_by: None, filters })
        };
        let ((from_sequences, sequences_sql), (from_events, _)) = (on_duckdb(funnel(vec![])), on_duckdb(funnel(every_event.clone())));
        assert!(sequences_sql.contains("report_user_events"), "{sequences_sql}");
        assert_eq!(rows(&from_sequences), rows(&from_events), "funnel over days {from}..={to}");
        let path = |filters: Vec<Condition>| {
            Exploration::Path(PathAnalysis { range: range(from, to), node: PathNode::Page, split: PathSplit::Session, start: None, max_steps: 5, top_flows_per_step: 20, filters })
        };
        let ((from_sequences, sequences_sql), (from_events, _)) = (on_duckdb(path(vec![])), on_duckdb(path(every_event.clone())));
        assert!(sequences_sql.contains("report_session_pages"), "{sequences_sql}");
        assert_eq!(rows(&from_sequences), rows(&from_events), "path over days {from}..={to}");
        // A retention of page views reads the session aggregate (counts per quarter hour), in
        // any zone: a filter on the event name sends it to the events.
        for zone in ["UTC", "Asia/Kathmandu", "America/St_Johns"] {
            for granularity in [Granularity::Day, Granularity::Week] {
                let retention = |filters: Vec<Condition>| {
                    Exploration::Retention(RetentionAnalysis { range: range(from, to), start_event: "_page_view".into(), return_event: "_page_view".into(), granularity, periods: 3, filters })
                };
                let in_zone = |exploration: Exploration| {
                    let statement = build_exploration(&exploration, &AppScope::new(APP, zone).unwrap(), Dialect::DuckDb);
                    (run_on_duckdb(&warehouse(), &statement).unwrap_or_else(|error| panic!("{error}\n{}", statement.sql)), statement.sql)
                };
                let ((from_aggregate, aggregate_sql), (from_events, _)) = (in_zone(retention(vec![])), in_zone(retention(every_event.clone())));
                assert!(aggregate_sql.contains("report_session_activity"), "{aggregate_sql}");
                assert_eq!(rows(&from_aggregate), rows(&from_events), "retention over days {from}..={to} in {zone}, {granularity:?}");
            }
        }
    }
}

#[test]
fn path_counts_flows_between_consecutive_nodes() {
    // Sessions by page: s1 /home→/product, s2 /home, s3 /home→/product, s8 /product,
    // s4 /home→/about, s5 /home.
    let pages = answer(
        "path_pages_by_session",
        Exploration::Path(PathAnalysis { range: range(0, 13), node: PathNode::Page, split: PathSplit::Session, start: None, max_steps: 5, top_flows_per_step: 20, filters: vec![] }),
    );
    assert_eq!(pages.columns, ["step", "source", "target", "paths"]);
    assert_eq!(rows(&pages), [json!([1, "/home", "/product", 2]), json!([1, "/home", "/about", 1])]);

    // A 30-minute gap instead of sessions: u2's 20:00 view starts a new path, u3's d1 views
    // (30 minutes apart: not more than the gap) stay together. Same flows.
    let by_gap = answer(
        "path_pages_by_gap",
        Exploration::Path(PathAnalysis { range: range(0, 13), node: PathNode::Page, split: PathSplit::Gap { gap_seconds: 1800 }, start: None, max_steps: 5, top_flows_per_step: 1, filters: vec![] }),
    );
    assert_eq!(rows(&by_gap), [json!([1, "/home", "/product", 2])], "top 1 flow per step");

    // Event nodes from add_to_cart: u1's s1 and u4's s7 go on to purchase; u2's purchase is
    // in another session.
    let from_cart = answer(
        "path_events_from_cart",
        Exploration::Path(PathAnalysis { range: range(0, 13), node: PathNode::Event, split: PathSplit::Session, start: Some("add_to_cart".into()), max_steps: 3, top_flows_per_step: 20, filters: vec![] }),
    );
    assert_eq!(rows(&from_cart), [json!([1, "add_to_cart", "purchase", 2])]);
}

#[test]
fn retention_follows_weekly_cohorts() {
    // Cohort of the week of 2 Nov: u1, u2, u3 (first page views d0, d0, d1). Week 0: all
    // three; week 1 (9 Nov): u3 (d8). Week 2 is past the range's last week: not reported.
    let weekly = answer(
        "retention_weekly",
        Exploration::Retention(RetentionAnalysis { range: range(0, 13), start_event: "_page_view".into(), return_event: "_page_view".into(), granularity: Granularity::Week, periods: 2, filters: vec![] }),
    );
    assert_eq!(weekly.columns, ["cohort", "cohort_users", "period_offset", "returned_users"]);
    assert_eq!(rows(&weekly), [json!(["2026-11-02", 3, 0, 3]), json!(["2026-11-02", 3, 1, 1])]);

    // Daily, purchase after a page view: cohorts d0 (u1, u2) and d1 (u3). u1 buys on d0
    // (offset 0), u2 on d2 (offset 2); u3 never. Offsets up to 3 days, all reached.
    let daily = answer(
        "retention_daily_purchase",
        Exploration::Retention(RetentionAnalysis { range: range(0, 13), start_event: "_page_view".into(), return_event: "purchase".into(), granularity: Granularity::Day, periods: 3, filters: vec![] }),
    );
    assert_eq!(
        rows(&daily),
        [
            json!(["2026-11-02", 2, 0, 1]),
            json!(["2026-11-02", 2, 1, 0]),
            json!(["2026-11-02", 2, 2, 1]),
            json!(["2026-11-02", 2, 3, 0]),
            json!(["2026-11-03", 1, 0, 0]),
            json!(["2026-11-03", 1, 1, 0]),
            json!(["2026-11-03", 1, 2, 0]),
            json!(["2026-11-03", 1, 3, 0]),
        ]
    );
}

fn attribution(model: AttributionModel) -> Exploration {
    Exploration::Attribution(attribution_query(model))
}

fn attribution_query(model: AttributionModel) -> AttributionAnalysis {
    AttributionAnalysis {
        range: range(0, 13),
        conversion_event: "purchase".into(),
        touchpoints: names(&["_page_view", "add_to_cart"]),
        model,
        window_seconds: 86_400,
        value_parameter: None,
        filters: vec![],
    }
}

#[test]
fn attribution_shares_each_conversion_by_model() {
    // Conversions: u1's (touches pv 10:00, pv 10:01, cart 10:02; value 100), u4's (cart
    // 12:00; value 30), u2's (nothing in the day before: not credited). 3 conversions.
    let first = answer("attribution_first_touch", attribution(AttributionModel::FirstTouch));
    assert_eq!(first.columns, ["touchpoint", "touches", "credited_conversions", "credited_value", "total_conversions"]);
    assert_eq!(rows(&first), [json!(["_page_view", 2, 1.0, 100.0, 3]), json!(["add_to_cart", 2, 1.0, 30.0, 3])]);

    let last = answer("attribution_last_touch", attribution(AttributionModel::LastTouch));
    assert_eq!(rows(&last), [json!(["add_to_cart", 2, 2.0, 130.0, 3]), json!(["_page_view", 2, 0.0, 0.0, 3])]);

    // Linear: u1's three touches get 1/3 each.
    let linear = answer("attribution_linear", attribution(AttributionModel::Linear));
    assert_eq!(rows(&linear), [json!(["add_to_cart", 2, 1.3333, 63.3333, 3]), json!(["_page_view", 2, 0.6667, 66.6667, 3])]);

    // Position based: u1 → 0.4 first pv, 0.2 middle pv, 0.4 cart.
    let position = answer("attribution_position_based", attribution(AttributionModel::PositionBased));
    assert_eq!(rows(&position), [json!(["add_to_cart", 2, 1.4, 70.0, 3]), json!(["_page_view", 2, 0.6, 60.0, 3])]);

    // A range starting on d2 still sees the touches of the window before it: u2's purchase
    // (d2 12:00) with a 3-day window is credited to u2's d0 page views and cart.
    let from_d2 = Exploration::Attribution(AttributionAnalysis { range: range(2, 13), window_seconds: 3 * 86_400, ..attribution_query(AttributionModel::FirstTouch) });
    assert_eq!(rows(&answer("attribution_window_before_range", from_d2)), [json!(["_page_view", 3, 1.0, 50.0, 1]), json!(["add_to_cart", 1, 0.0, 0.0, 1])]);

    // Time decay, half-life 60 s: u1's touches are 300, 240 and 180 s old → weights 1/32,
    // 1/16, 1/8 → shares 1/7, 2/7, 4/7.
    let decay = answer("attribution_time_decay", attribution(AttributionModel::TimeDecay { half_life_seconds: 60 }));
    assert_eq!(rows(&decay), [json!(["add_to_cart", 2, 1.5714, 87.1429, 3]), json!(["_page_view", 2, 0.4286, 42.8571, 3])]);
}

#[test]
fn names_outside_the_catalog_and_malformed_queries_are_refused_before_any_sql() {
    let injection = "purchase'; DROP TABLE \"shop-web\".event_v2; --";
    let refused = check_exploration(&funnel(None, vec![]).clone_with_steps(&["_page_view", injection]), &catalog()).unwrap_err();
    assert!(refused.fields["steps[1]"].contains("no event"), "{refused}");
    let refused = check_exploration(
        &event_analysis(&["purchase"], Measure::Count, Granularity::Day, Some(Field::EventParameter("x') OR 1=1 --".into())), vec![Condition { field: Field::UserAttribute("nope".into()), operator: Operator::GreaterThan, values: names(&["ten"]) }], range(5, 1)),
        &catalog(),
    )
    .unwrap_err();
    for field in ["group_by", "filters[0].field", "filters[0].values", "range"] {
        assert!(refused.fields.contains_key(field), "{field} is reported: {refused}");
    }
    let refused = check_exploration(&event_analysis(&[], Measure::Count, Granularity::Day, None, vec![Condition { field: Field::Column(Column::GeoCountry), operator: Operator::Equals, values: names(&[""]) }], range(0, 13)), &catalog()).unwrap_err();
    assert!(refused.fields["filters[0].values"].contains("empty"), "{refused}");
    let refused = check_exploration(&event_analysis(&[], Measure::Count, Granularity::Day, None, vec![], range(0, 400)), &catalog()).unwrap_err();
    assert!(refused.fields.contains_key("range"), "{refused}");
}

#[test]
fn user_values_are_bound_so_quotes_and_injection_text_match_nothing_and_harm_nothing() {
    let connection = warehouse();
    let scope = AppScope::new(APP, "UTC").unwrap();
    let hostile = event_analysis(
        &[],
        Measure::Count,
        Granularity::Month,
        Some(Field::EventParameter("it's".into())),
        vec![Condition { field: Field::Column(Column::GeoCountry), operator: Operator::In, values: names(&["US' OR '1'='1", "x'); DROP TABLE \"shop-web\".event_v2; --"]) }],
        range(0, 13),
    );
    check_exploration(&hostile, &catalog()).unwrap();
    let statement = build_exploration(&hostile, &scope, Dialect::DuckDb);
    assert!(!statement.sql.contains("DROP") && !statement.sql.contains("it's"), "user text stays out of the SQL: {}", statement.sql);
    assert!(run_on_duckdb(&connection, &statement).unwrap().rows.is_empty(), "the filter values match no country");
    let count: i64 = connection.query_row("SELECT count(*) FROM \"shop-web\".event_v2", [], |row| row.get(0)).unwrap();
    assert_eq!(count, 17, "the table is intact");

    // A parameter name with a quote, bound: the carts' `it's` values are found.
    let quoted = event_analysis(&["add_to_cart"], Measure::Count, Granularity::Month, Some(Field::EventParameter("it's".into())), vec![], range(0, 13));
    assert_eq!(rows(&run_on_duckdb(&connection, &build_exploration(&quoted, &scope, Dialect::DuckDb)).unwrap()), [json!(["2026-11-01", "add_to_cart", "quoted", 3])]);
}

#[test]
fn a_result_exports_as_csv() {
    let table = ResultTable { columns: names(&["name", "value"]), rows: vec![vec![json!("a, \"b\""), json!(1.5)], vec![Value::Null, json!(-2)], vec![json!("=HYPERLINK(\"x\")"), json!("@SUM")]] };
    assert_eq!(table.to_csv().unwrap(), "name,value\n\"a, \"\"b\"\"\",1.5\n,-2\n\"'=HYPERLINK(\"\"x\"\")\",'@SUM\n", "numbers stay numbers; formula-like text is defused");
}

trait WithSteps {
    fn clone_with_steps(&self, steps: &[&str]) -> Exploration;
}

impl WithSteps for Exploration {
    fn clone_with_steps(&self, steps: &[&str]) -> Exploration {
        let Exploration::Funnel(query) = self else { panic!("a funnel") };
        Exploration::Funnel(FunnelAnalysis { steps: names(steps), ..query.clone() })
    }
}
