//! Reporting queries over an app's warehouse tables (DESIGN §3.4): the explorations of the
//! console's Analytics Studio (event, funnel, path, retention, attribution) as typed queries
//! (`query`), checked against the app's metadata catalog (`check`), turned into SQL for DuckDB
//! or Redshift by one builder (`build`, dialect differences in `sql`), and answered as a plain
//! table (`table`). The dashboards (`dashboards`) are pages of panels built the same way.

pub mod aggregates;
pub mod build;
pub mod check;
pub mod dashboards;
pub mod query;
pub mod sql;
pub mod table;

pub use build::{AppScope, UnknownTimeZone, build_exploration};
pub use check::{Catalog, InvalidQuery, check_exploration};
pub use query::Exploration;
pub use sql::{Dialect, SqlValue, Statement};
pub use table::{ResultTable, run_on_duckdb};
