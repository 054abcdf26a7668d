//! Checks a query before any SQL is built: sizes and ranges, and every name a user typed
//! (event names, event parameters, user attributes) against the app's metadata catalog. A
//! name the catalog does not know is refused here, so it never reaches a warehouse, even
//! as a bound parameter.

use std::collections::{BTreeMap, BTreeSet};

use crate::query::{AttributionModel, Condition, DateRange, Exploration, Field, MAX_RANGE_DAYS, Measure, Operator, PathSplit};

/// What the app's tables contain, from its metadata scan: the only names a query may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub events: BTreeSet<String>,
    pub event_parameters: BTreeSet<String>,
    pub user_attributes: BTreeSet<String>,
}

/// Why a query was refused, per field (JSON paths such as `steps[2]` or `filters[0].values`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid query: {}", .fields.iter().map(|(path, reason)| format!("{path}: {reason}")).collect::<Vec<_>>().join("; "))]
pub struct InvalidQuery {
    pub fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Problems(BTreeMap<String, String>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.0.entry(path.into()).or_insert_with(|| reason.into());
    }

    fn known_event(&mut self, catalog: &Catalog, path: String, name: &str) {
        if !catalog.events.contains(name) {
            self.add(path, format!("no event `{}` in this app's metadata", shorten(name)));
        }
    }

    fn known_field(&mut self, catalog: &Catalog, path: String, field: &Field) {
        match field {
            Field::Column(_) => {}
            Field::EventParameter(name) if !catalog.event_parameters.contains(name) => self.add(path, format!("no event parameter `{}` in this app's metadata", shorten(name))),
            Field::UserAttribute(name) if !catalog.user_attributes.contains(name) => self.add(path, format!("no user attribute `{}` in this app's metadata", shorten(name))),
            _ => {}
        }
    }

    fn count_between(&mut self, path: &str, count: usize, low: usize, high: usize, what: &str) {
        if count < low || count > high {
            self.add(path, format!("give {low} to {high} {what}"));
        }
    }

    fn number_between(&mut self, path: &str, value: u32, low: u32, high: u32) {
        if value < low || value > high {
            self.add(path, format!("must be between {low} and {high}"));
        }
    }
}

/// Error messages quote user text; a long or odd name is cut so the message stays readable.
fn shorten(text: &str) -> String {
    let cut: String = text.chars().take(64).collect();
    if cut.len() < text.len() { format!("{cut}…") } else { cut }
}

fn check_range(problems: &mut Problems, range: &DateRange) {
    if range.from > range.to {
        problems.add("range", "`from` is after `to`");
        return;
    }
    if (range.to - range.from).num_days() >= MAX_RANGE_DAYS {
        problems.add("range", format!("cover at most {MAX_RANGE_DAYS} days"));
    }
}

fn check_conditions(problems: &mut Problems, catalog: &Catalog, conditions: &[Condition]) {
    if conditions.len() > 20 {
        problems.add("filters", "give at most 20 filters");
    }
    for (index, condition) in conditions.iter().enumerate() {
        problems.known_field(catalog, format!("filters[{index}].field"), &condition.field);
        let values_path = format!("filters[{index}].values");
        let expected = match condition.operator {
            Operator::IsNull | Operator::IsNotNull => Some(0),
            Operator::In => None,
            _ => Some(1),
        };
        match expected {
            Some(count) if condition.values.len() != count => problems.add(values_path.clone(), format!("`{:?}` takes {count} value(s)", condition.operator).to_lowercase()),
            None if condition.values.is_empty() || condition.values.len() > 100 => problems.add(values_path.clone(), "`in` takes 1 to 100 values"),
            _ => {}
        }
        if matches!(condition.operator, Operator::GreaterThan | Operator::LessThan) && condition.values.iter().any(|value| value.trim().parse::<f64>().map_or(true, |number| !number.is_finite())) {
            problems.add(values_path.clone(), "must be a number");
        }
        if condition.values.iter().any(|value| value.len() > 1000) {
            problems.add(values_path.clone(), "values are at most 1000 bytes");
        }
        // An empty value matches nothing useful, and the Redshift Data API refuses empty
        // parameters: use is_null / is_not_null for missing values.
        if condition.values.iter().any(String::is_empty) {
            problems.add(values_path, "values must not be empty (use is_null for a missing value)");
        }
    }
}

/// Checks an exploration against the catalog; every problem is reported, not just the first.
pub fn check_exploration(exploration: &Exploration, catalog: &Catalog) -> Result<(), InvalidQuery> {
    let mut problems = Problems::default();
    check_range(&mut problems, &exploration.range());
    check_conditions(&mut problems, catalog, exploration.filters());
    match exploration {
        Exploration::Event(query) => {
            problems.count_between("events", query.events.len(), 0, 20, "events");
            for (index, name) in query.events.iter().enumerate() {
                problems.known_event(catalog, format!("events[{index}]"), name);
            }
            if let Measure::Sum { event_parameter: Some(name) } = &query.measure {
                problems.known_field(catalog, "measure.sum.event_parameter".into(), &Field::EventParameter(name.clone()));
            }
            if let Some(field) = &query.group_by {
                problems.known_field(catalog, "group_by".into(), field);
            }
        }
        Exploration::Funnel(query) => {
            problems.count_between("steps", query.steps.len(), 2, 10, "steps");
            for (index, name) in query.steps.iter().enumerate() {
                problems.known_event(catalog, format!("steps[{index}]"), name);
            }
            problems.number_between("window_seconds", query.window_seconds, 1, 90 * 86_400);
            if let Some(field) = &query.group_by {
                problems.known_field(catalog, "group_by".into(), field);
            }
        }
        Exploration::Path(query) => {
            problems.number_between("max_steps", query.max_steps, 2, 10);
            problems.number_between("top_flows_per_step", query.top_flows_per_step, 1, 100);
            if let PathSplit::Gap { gap_seconds } = query.split {
                problems.number_between("split.gap.gap_seconds", gap_seconds, 1, 86_400);
            }
            if let (crate::query::PathNode::Event, Some(start)) = (query.node, &query.start) {
                problems.known_event(catalog, "start".into(), start);
            }
            if query.start.as_ref().is_some_and(|start| start.is_empty() || start.len() > 1000) {
                problems.add("start", "give 1 to 1000 bytes, or no start");
            }
        }
        Exploration::Retention(query) => {
            problems.known_event(catalog, "start_event".into(), &query.start_event);
            problems.known_event(catalog, "return_event".into(), &query.return_event);
            problems.number_between("periods", query.periods, 1, 52);
        }
        Exploration::Attribution(query) => {
            problems.known_event(catalog, "conversion_event".into(), &query.conversion_event);
            problems.count_between("touchpoints", query.touchpoints.len(), 1, 20, "touch-point events");
            for (index, name) in query.touchpoints.iter().enumerate() {
                problems.known_event(catalog, format!("touchpoints[{index}]"), name);
            }
            problems.number_between("window_seconds", query.window_seconds, 1, 90 * 86_400);
            if let AttributionModel::TimeDecay { half_life_seconds } = query.model {
                problems.number_between("model.time_decay.half_life_seconds", half_life_seconds, 1, 90 * 86_400);
            }
            if let Some(name) = &query.value_parameter {
                problems.known_field(catalog, "value_parameter".into(), &Field::EventParameter(name.clone()));
            }
        }
    }
    if problems.0.is_empty() { Ok(()) } else { Err(InvalidQuery { fields: problems.0 }) }
}
