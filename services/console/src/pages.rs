//! Server-rendered HTML pages: the index of apps and, per app, its events per day.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    response::Html,
};

use crate::{
    ConsoleState,
    api::{ApiError, known_app, query_warehouse},
};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · clickstream</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ padding: .3rem .6rem; text-align: left; border-bottom: 1px solid #eee; }}
.bar {{ background: #3b82f6; height: .9rem; }} a {{ color: #1d4ed8; }}
</style></head>
<body><p><a href="/">clickstream</a></p><h1>{title}</h1>
{body}
</body></html>"#,
        title = escape(title)
    ))
}

pub async fn index(State(state): State<Arc<ConsoleState>>) -> Html<String> {
    let mut rows = String::new();
    for project in &state.config.projects {
        for app in &project.apps {
            rows.push_str(&format!(
                r#"<tr><td>{project}</td><td><a href="/apps/{app}">{app}</a></td></tr>"#,
                project = escape(&project.id),
                app = escape(app)
            ));
        }
    }
    let temporal = escape(&state.config.console.temporal_ui_url);
    page(
        "Apps",
        &format!(
            r#"<table><tr><th>Project</th><th>App</th></tr>{rows}</table>
<p>Workflow runs: <a href="{temporal}/namespaces/{namespace}/workflows">Temporal UI</a></p>"#,
            namespace = escape(&state.config.temporal.namespace)
        ),
    )
}

pub async fn app_page(State(state): State<Arc<ConsoleState>>, Path(app_id): Path<String>) -> Result<Html<String>, ApiError> {
    known_app(&state, &app_id)?;
    let query_app = app_id.clone();
    let days = query_warehouse(&state, move |warehouse| warehouse.events_per_day(&query_app, i64::MIN, i64::MAX)).await?;
    let total: u64 = days.iter().map(|day| day.events).sum();
    let busiest = days.iter().map(|day| day.events).max().unwrap_or(1).max(1);
    let mut rows = String::new();
    for day in &days {
        let width = day.events * 100 / busiest;
        rows.push_str(&format!(
            r#"<tr><td>{}</td><td class="count">{}</td><td style="width:60%"><div class="bar" style="width:{width}%"></div></td></tr>"#,
            escape(&day.day),
            day.events
        ));
    }
    let table = if days.is_empty() {
        "<p>No events in the warehouse yet. Events appear after the next scheduled ETL run.</p>".to_string()
    } else {
        format!(r#"<table id="events-per-day"><tr><th>Day (UTC)</th><th>Events</th><th></th></tr>{rows}</table>"#)
    };
    Ok(page(
        &format!("Events per day: {app_id}"),
        &format!(r#"<p>Total distinct events: <strong id="total-events">{total}</strong></p>{table}"#),
    ))
}
