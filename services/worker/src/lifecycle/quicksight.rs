//! The reporting level's QuickSight assets, made through the QuickSight API after the
//! `reporting` stack (CloudFormation has the data source's role; moto's CloudFormation has no
//! QuickSight types, and the assets are per app, which a stack per project cannot list):
//!
//! - one Redshift data source per project (`<prefix>_redshift`), through the VPC connection
//!   when one is given, signing in with the stack's data source role;
//! - per app, two direct-query data sets over its reporting aggregates (`<prefix>_<app>_sessions`,
//!   `<prefix>_<app>_events`, with `event_time` in the app's time zone), a template whose
//!   definition draws the overview (KPIs, daily users and events, users by platform, country
//!   and traffic source, top events), and an analysis and a dashboard made from the template
//!   (`<prefix>_<app>`), all owned by the stack's QuickSight principal.
//!
//! Every call creates or, when the id exists, updates, so the step can run again (a retried
//! activity, a pipeline update, a new app). Deleting the level deletes them; missing ones are
//! fine.

use aws_sdk_quicksight::{
    Client,
    error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError},
    types::*,
};
use clickstream_activities::errors::ActivityFailure;
// QuickSight's request futures are large (a template's definition is deep): each is boxed so
// that it lives on the heap rather than on the calling task's stack, which the unboxed ones
// overflow in debug builds (tests).
use futures::FutureExt;
use clickstream_reporting::{
    AppScope, Dialect,
    aggregates::{AggregateDataSet, DataSetColumnKind, quicksight_data_sets},
};

/// Where the assets go and what they read: the reporting stack's parameters and outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct QuickSightTarget {
    /// `clickstream_<project>`: the start of every asset id.
    pub asset_id_prefix: String,
    /// The QuickSight user or group given ownership (its ARN names the account).
    pub principal_arn: String,
    pub data_source_role_arn: String,
    pub redshift_host: String,
    pub redshift_port: i32,
    pub redshift_database: String,
    pub vpc_connection_arn: Option<String>,
}

impl QuickSightTarget {
    /// The account of the principal (`arn:aws:quicksight:<region>:<account>:user/…`).
    fn account_id(&self) -> Result<&str, ActivityFailure> {
        self.principal_arn.split(':').nth(4).filter(|account| !account.is_empty()).ok_or_else(|| ActivityFailure::ProvisionFailed(format!("`{}` is not a QuickSight principal ARN", self.principal_arn)))
    }

    fn data_source_id(&self) -> String {
        format!("{}_redshift", self.asset_id_prefix)
    }

    fn app_asset_id(&self, app_id: &str) -> String {
        format!("{}_{app_id}", self.asset_id_prefix)
    }

    fn data_set_id(&self, app_id: &str, data_set: &str) -> String {
        format!("{}_{app_id}_{data_set}", self.asset_id_prefix)
    }
}

/// An app to publish: its id and time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedApp {
    pub app_id: String,
    pub timezone: String,
}

/// The ids of what [`QuickSightPublisher::publish`] made or updated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishedAssets {
    pub data_source: String,
    pub data_sets: Vec<String>,
    pub dashboards: Vec<String>,
}

pub struct QuickSightPublisher {
    pub client: Client,
}

// What the owner may do with each kind of asset (QuickSight's console grants the same).
const DATA_SOURCE_ACTIONS: [&str; 6] = [
    "quicksight:DescribeDataSource",
    "quicksight:DescribeDataSourcePermissions",
    "quicksight:PassDataSource",
    "quicksight:UpdateDataSource",
    "quicksight:DeleteDataSource",
    "quicksight:UpdateDataSourcePermissions",
];
const DATA_SET_ACTIONS: [&str; 10] = [
    "quicksight:DescribeDataSet",
    "quicksight:DescribeDataSetPermissions",
    "quicksight:PassDataSet",
    "quicksight:DescribeIngestion",
    "quicksight:ListIngestions",
    "quicksight:UpdateDataSet",
    "quicksight:DeleteDataSet",
    "quicksight:CreateIngestion",
    "quicksight:CancelIngestion",
    "quicksight:UpdateDataSetPermissions",
];
const TEMPLATE_ACTIONS: [&str; 5] = ["quicksight:DescribeTemplate", "quicksight:DescribeTemplatePermissions", "quicksight:UpdateTemplate", "quicksight:DeleteTemplate", "quicksight:UpdateTemplatePermissions"];
const ANALYSIS_ACTIONS: [&str; 7] = [
    "quicksight:DescribeAnalysis",
    "quicksight:DescribeAnalysisPermissions",
    "quicksight:QueryAnalysis",
    "quicksight:UpdateAnalysis",
    "quicksight:RestoreAnalysis",
    "quicksight:DeleteAnalysis",
    "quicksight:UpdateAnalysisPermissions",
];
const DASHBOARD_ACTIONS: [&str; 8] = [
    "quicksight:DescribeDashboard",
    "quicksight:ListDashboardVersions",
    "quicksight:QueryDashboard",
    "quicksight:UpdateDashboard",
    "quicksight:DeleteDashboard",
    "quicksight:DescribeDashboardPermissions",
    "quicksight:UpdateDashboardPermissions",
    "quicksight:UpdateDashboardPublishedVersion",
];

fn owner(target: &QuickSightTarget, actions: &[&str]) -> Result<ResourcePermission, ActivityFailure> {
    ResourcePermission::builder().principal(&target.principal_arn).set_actions(Some(actions.iter().map(|action| action.to_string()).collect())).build().map_err(invalid)
}

/// A request this code built wrongly: not worth a retry.
fn invalid(error: BuildError) -> ActivityFailure {
    ActivityFailure::ProvisionFailed(format!("a QuickSight request could not be built: {error}"))
}

/// An API error: throttling and service faults may pass (retry), anything else is a refusal.
fn api_failure<E: ProvideErrorMetadata + std::error::Error + 'static>(action: &str, error: SdkError<E>) -> ActivityFailure {
    let code = error.as_service_error().and_then(|service| service.code()).unwrap_or_default().to_string();
    let message = format!("QuickSight {action}: {}", DisplayErrorContext(&error));
    match code.as_str() {
        "ThrottlingException" | "InternalFailureException" | "ConcurrentUpdatingException" | "" => ActivityFailure::ProvisionerUnavailable(message),
        _ => ActivityFailure::ProvisionFailed(message),
    }
}

fn has_code<E: ProvideErrorMetadata>(error: &SdkError<E>, code: &str) -> bool {
    error.as_service_error().and_then(|service| service.code()) == Some(code)
}

/// A delete's answer: done, or the asset was not there (done too).
fn deleted_or_missing<T, E: ProvideErrorMetadata + std::error::Error + 'static>(action: &str, answer: Result<T, SdkError<E>>) -> Result<(), ActivityFailure> {
    match answer {
        Ok(_) => Ok(()),
        Err(error) if has_code(&error, "ResourceNotFoundException") => Ok(()),
        Err(error) => Err(api_failure(action, error)),
    }
}

/// Whether a create failed because the id is taken (then the asset is updated instead).
fn already_exists<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    has_code(error, "ResourceExistsException")
}

impl QuickSightPublisher {
    /// Creates or updates the project's data source and every app's data sets, template,
    /// analysis and dashboard.
    pub async fn publish(&self, target: &QuickSightTarget, apps: &[PublishedApp]) -> Result<PublishedAssets, ActivityFailure> {
        let account = target.account_id()?;
        let data_source_arn = self.put_data_source(account, target).await?;
        let mut published = PublishedAssets { data_source: target.data_source_id(), ..PublishedAssets::default() };
        for app in apps {
            let scope = AppScope::new(&app.app_id, &app.timezone).map_err(|error| ActivityFailure::ProvisionFailed(format!("app {}: {error}", app.app_id)))?;
            let data_sets = quicksight_data_sets(&scope, Dialect::Redshift);
            let mut references = Vec::new();
            for data_set in &data_sets {
                let id = target.data_set_id(&app.app_id, data_set.name);
                let arn = self.put_data_set(account, target, &id, &format!("{} {}", app.app_id, data_set.name), &data_source_arn, data_set).await?;
                references.push((data_set.name, arn));
                published.data_sets.push(id);
            }
            let asset_id = target.app_asset_id(&app.app_id);
            let template_arn = self.put_template(account, target, &asset_id, &app.app_id, &data_sets).await?;
            self.put_analysis(account, target, &asset_id, &app.app_id, &template_arn, &references).await?;
            self.put_dashboard(account, target, &asset_id, &app.app_id, &template_arn, &references).await?;
            published.dashboards.push(asset_id);
        }
        Ok(published)
    }

    /// Deletes what [`Self::publish`] made for these apps and the data source; missing assets
    /// are fine.
    pub async fn remove(&self, target: &QuickSightTarget, apps: &[PublishedApp]) -> Result<(), ActivityFailure> {
        let account = target.account_id()?;
        for app in apps {
            let asset_id = target.app_asset_id(&app.app_id);
            deleted_or_missing("DeleteDashboard", self.client.delete_dashboard().aws_account_id(account).dashboard_id(&asset_id).send().boxed().await)?;
            let analysis = self.client.delete_analysis().aws_account_id(account).analysis_id(&asset_id).force_delete_without_recovery(true);
            deleted_or_missing("DeleteAnalysis", analysis.send().boxed().await)?;
            deleted_or_missing("DeleteTemplate", self.client.delete_template().aws_account_id(account).template_id(&asset_id).send().boxed().await)?;
            for name in ["sessions", "events"] {
                let data_set = self.client.delete_data_set().aws_account_id(account).data_set_id(target.data_set_id(&app.app_id, name));
                deleted_or_missing("DeleteDataSet", data_set.send().boxed().await)?;
            }
        }
        deleted_or_missing("DeleteDataSource", self.client.delete_data_source().aws_account_id(account).data_source_id(target.data_source_id()).send().boxed().await)
    }

    async fn put_data_source(&self, account: &str, target: &QuickSightTarget) -> Result<String, ActivityFailure> {
        let iam = RedshiftIamParameters::builder().role_arn(&target.data_source_role_arn).auto_create_database_user(true).build().map_err(invalid)?;
        let redshift = RedshiftParameters::builder().host(&target.redshift_host).port(target.redshift_port).database(&target.redshift_database).iam_parameters(iam).build().map_err(invalid)?;
        let parameters = DataSourceParameters::RedshiftParameters(redshift);
        let vpc = target.vpc_connection_arn.as_ref().map(|arn| VpcConnectionProperties::builder().vpc_connection_arn(arn).build()).transpose().map_err(invalid)?;
        let id = target.data_source_id();
        let name = format!("{} (Redshift)", target.asset_id_prefix);
        let created = self
            .client
            .create_data_source()
            .aws_account_id(account)
            .data_source_id(&id)
            .name(&name)
            .r#type(DataSourceType::Redshift)
            .data_source_parameters(parameters.clone())
            .set_vpc_connection_properties(vpc.clone())
            .permissions(owner(target, &DATA_SOURCE_ACTIONS)?)
            .send()
            .boxed()
            .await;
        match created {
            Ok(created) => Ok(created.arn().unwrap_or_default().to_string()),
            Err(error) if already_exists(&error) => {
                let updated = self.client.update_data_source().aws_account_id(account).data_source_id(&id).name(&name).data_source_parameters(parameters).set_vpc_connection_properties(vpc).send().boxed().await;
                Ok(updated.map_err(|error| api_failure("UpdateDataSource", error))?.arn().unwrap_or_default().to_string())
            }
            Err(error) => Err(api_failure("CreateDataSource", error)),
        }
    }

    async fn put_data_set(&self, account: &str, target: &QuickSightTarget, id: &str, name: &str, data_source_arn: &str, data_set: &AggregateDataSet) -> Result<String, ActivityFailure> {
        let columns = data_set
            .columns
            .iter()
            .map(|(column, kind)| {
                let kind = match kind {
                    DataSetColumnKind::Text => InputColumnDataType::String,
                    DataSetColumnKind::Integer => InputColumnDataType::Integer,
                    DataSetColumnKind::Timestamp => InputColumnDataType::Datetime,
                };
                InputColumn::builder().name(*column).r#type(kind).build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let sql = CustomSql::builder().data_source_arn(data_source_arn).name(data_set.name).sql_query(&data_set.sql).set_columns(Some(columns)).build().map_err(invalid)?;
        let tables = std::collections::HashMap::from([(data_set.name.to_string(), PhysicalTable::CustomSql(sql))]);
        let created = self
            .client
            .create_data_set()
            .aws_account_id(account)
            .data_set_id(id)
            .name(name)
            .set_physical_table_map(Some(tables.clone()))
            .import_mode(DataSetImportMode::DirectQuery)
            .permissions(owner(target, &DATA_SET_ACTIONS)?)
            .send()
            .boxed()
            .await;
        match created {
            Ok(created) => Ok(created.arn().unwrap_or_default().to_string()),
            Err(error) if already_exists(&error) => {
                let updated = self.client.update_data_set().aws_account_id(account).data_set_id(id).name(name).set_physical_table_map(Some(tables)).import_mode(DataSetImportMode::DirectQuery).send().boxed().await;
                Ok(updated.map_err(|error| api_failure("UpdateDataSet", error))?.arn().unwrap_or_default().to_string())
            }
            Err(error) => Err(api_failure("CreateDataSet", error)),
        }
    }

    async fn put_template(&self, account: &str, target: &QuickSightTarget, id: &str, app_id: &str, data_sets: &[AggregateDataSet]) -> Result<String, ActivityFailure> {
        let definition = overview_definition(data_sets).map_err(invalid)?;
        let name = format!("clickstream {app_id}");
        let created = self.client.create_template().aws_account_id(account).template_id(id).name(&name).definition(definition.clone()).permissions(owner(target, &TEMPLATE_ACTIONS)?).send().boxed().await;
        match created {
            Ok(created) => Ok(created.arn().unwrap_or_default().to_string()),
            Err(error) if already_exists(&error) => {
                let updated = self.client.update_template().aws_account_id(account).template_id(id).name(&name).definition(definition).send().boxed().await;
                Ok(updated.map_err(|error| api_failure("UpdateTemplate", error))?.arn().unwrap_or_default().to_string())
            }
            Err(error) => Err(api_failure("CreateTemplate", error)),
        }
    }

    async fn put_analysis(&self, account: &str, target: &QuickSightTarget, id: &str, app_id: &str, template_arn: &str, references: &[(&str, String)]) -> Result<(), ActivityFailure> {
        let source = AnalysisSourceEntity::builder().source_template(AnalysisSourceTemplate::builder().arn(template_arn).set_data_set_references(Some(data_set_references(references)?)).build().map_err(invalid)?).build();
        let name = format!("clickstream {app_id}");
        let created = self.client.create_analysis().aws_account_id(account).analysis_id(id).name(&name).source_entity(source.clone()).permissions(owner(target, &ANALYSIS_ACTIONS)?).send().boxed().await;
        match created {
            Ok(_) => Ok(()),
            Err(error) if already_exists(&error) => {
                self.client.update_analysis().aws_account_id(account).analysis_id(id).name(&name).source_entity(source).send().boxed().await.map_err(|error| api_failure("UpdateAnalysis", error))?;
                Ok(())
            }
            Err(error) => Err(api_failure("CreateAnalysis", error)),
        }
    }

    async fn put_dashboard(&self, account: &str, target: &QuickSightTarget, id: &str, app_id: &str, template_arn: &str, references: &[(&str, String)]) -> Result<(), ActivityFailure> {
        let source = DashboardSourceEntity::builder().source_template(DashboardSourceTemplate::builder().arn(template_arn).set_data_set_references(Some(data_set_references(references)?)).build().map_err(invalid)?).build();
        let name = format!("clickstream {app_id}");
        let created = self.client.create_dashboard().aws_account_id(account).dashboard_id(id).name(&name).source_entity(source.clone()).permissions(owner(target, &DASHBOARD_ACTIONS)?).send().boxed().await;
        match created {
            Ok(_) => Ok(()),
            Err(error) if already_exists(&error) => {
                // An update makes a new version; readers see it once it is published.
                let updated = self.client.update_dashboard().aws_account_id(account).dashboard_id(id).name(&name).source_entity(source).send().boxed().await.map_err(|error| api_failure("UpdateDashboard", error))?;
                let version = updated.version_arn().and_then(|arn| arn.rsplit('/').next()).and_then(|number| number.parse::<i64>().ok());
                let Some(version) = version else {
                    return Err(ActivityFailure::ProvisionFailed(format!("UpdateDashboard of {id} answered no version ({:?})", updated.version_arn())));
                };
                self.client.update_dashboard_published_version().aws_account_id(account).dashboard_id(id).version_number(version).send().boxed().await.map_err(|error| api_failure("UpdateDashboardPublishedVersion", error))?;
                Ok(())
            }
            Err(error) => Err(api_failure("CreateDashboard", error)),
        }
    }
}

fn data_set_references(references: &[(&str, String)]) -> Result<Vec<DataSetReference>, ActivityFailure> {
    references.iter().map(|(placeholder, arn)| DataSetReference::builder().data_set_placeholder(*placeholder).data_set_arn(arn).build().map_err(invalid)).collect()
}

/// The template's definition: its two data sets (placeholders `sessions`, `events`) and one
/// sheet with the console's overview page.
fn overview_definition(data_sets: &[AggregateDataSet]) -> Result<TemplateVersionDefinition, BuildError> {
    let mut configurations = Vec::new();
    for data_set in data_sets {
        let columns = data_set
            .columns
            .iter()
            .map(|(column, kind)| {
                let data_type = match kind {
                    DataSetColumnKind::Text => "STRING",
                    DataSetColumnKind::Integer => "INTEGER",
                    DataSetColumnKind::Timestamp => "DATETIME",
                };
                ColumnSchema::builder().name(*column).data_type(data_type).build()
            })
            .collect();
        configurations.push(DataSetConfiguration::builder().placeholder(data_set.name).data_set_schema(DataSetSchema::builder().set_column_schema_list(Some(columns)).build()).build());
    }
    // A `Visual` is 55 KB (a field for every kind of chart): they are pushed one by one, as a
    // `vec![…]` of them would build every one on the stack first, more than a task's 2 MiB in
    // debug builds.
    let mut visuals = Vec::with_capacity(9);
    visuals.push(kpi("active_users", "Active users", distinct_count("active_users_value", "sessions", "user_pseudo_id")?)?);
    visuals.push(kpi("sessions", "Sessions", distinct_count("sessions_value", "sessions", "session_id")?)?);
    visuals.push(kpi("events", "Events", sum("events_value", "sessions", "events")?)?);
    visuals.push(daily_line("daily_users", "Active users by day", "sessions", distinct_count("daily_users_value", "sessions", "user_pseudo_id")?)?);
    visuals.push(daily_line("daily_events", "Events by day", "sessions", sum("daily_events_value", "sessions", "events")?)?);
    for (visual_id, text, data_set, dimension, measure) in [
        ("users_by_platform", "Users by platform", "sessions", "platform", "user_pseudo_id"),
        ("users_by_country", "Users by country", "sessions", "geo_country", "user_pseudo_id"),
        ("users_by_source", "Users by traffic source", "sessions", "traffic_source_source", "user_pseudo_id"),
        ("top_events", "Top events", "events", "event_name", "events"),
    ] {
        let value = if measure == "events" { sum(&format!("{visual_id}_value"), data_set, measure)? } else { distinct_count(&format!("{visual_id}_value"), data_set, measure)? };
        visuals.push(bar(visual_id, text, category(&format!("{visual_id}_category"), data_set, dimension)?, value)?);
    }
    let sheet = SheetDefinition::builder().sheet_id("overview").name("Overview").set_visuals(Some(visuals)).build()?;
    TemplateVersionDefinition::builder().set_data_set_configurations(Some(configurations)).sheets(sheet).build()
}

fn column(data_set: &str, name: &str) -> Result<ColumnIdentifier, BuildError> {
    ColumnIdentifier::builder().data_set_identifier(data_set).column_name(name).build()
}

fn distinct_count(field_id: &str, data_set: &str, name: &str) -> Result<MeasureField, BuildError> {
    let field = CategoricalMeasureField::builder().field_id(field_id).column(column(data_set, name)?).aggregation_function(CategoricalAggregationFunction::DistinctCount).build()?;
    Ok(MeasureField::builder().categorical_measure_field(field).build())
}

fn sum(field_id: &str, data_set: &str, name: &str) -> Result<MeasureField, BuildError> {
    let sum = NumericalAggregationFunction::builder().simple_numerical_aggregation(SimpleNumericalAggregationFunction::Sum).build();
    let field = NumericalMeasureField::builder().field_id(field_id).column(column(data_set, name)?).aggregation_function(sum).build()?;
    Ok(MeasureField::builder().numerical_measure_field(field).build())
}

fn category(field_id: &str, data_set: &str, name: &str) -> Result<DimensionField, BuildError> {
    let field = CategoricalDimensionField::builder().field_id(field_id).column(column(data_set, name)?).build()?;
    Ok(DimensionField::builder().categorical_dimension_field(field).build())
}

fn title(text: &str) -> VisualTitleLabelOptions {
    VisualTitleLabelOptions::builder().visibility(Visibility::Visible).format_text(ShortFormatText::builder().plain_text(text).build()).build()
}

fn kpi(visual_id: &str, text: &str, value: MeasureField) -> Result<Visual, BuildError> {
    let configuration = KpiConfiguration::builder().field_wells(KpiFieldWells::builder().values(value).build()).build();
    let visual = KpiVisual::builder().visual_id(visual_id).title(title(text)).chart_configuration(configuration).build()?;
    Ok(Visual::builder().kpi_visual(visual).build())
}

fn daily_line(visual_id: &str, text: &str, data_set: &str, value: MeasureField) -> Result<Visual, BuildError> {
    let day = DateDimensionField::builder().field_id(format!("{visual_id}_day")).column(column(data_set, "event_time")?).date_granularity(TimeGranularity::Day).build()?;
    let wells = LineChartAggregatedFieldWells::builder().category(DimensionField::builder().date_dimension_field(day).build()).values(value).build();
    let configuration = LineChartConfiguration::builder().field_wells(LineChartFieldWells::builder().line_chart_aggregated_field_wells(wells).build()).build();
    let visual = LineChartVisual::builder().visual_id(visual_id).title(title(text)).chart_configuration(configuration).build()?;
    Ok(Visual::builder().line_chart_visual(visual).build())
}

fn bar(visual_id: &str, text: &str, by: DimensionField, value: MeasureField) -> Result<Visual, BuildError> {
    let wells = BarChartAggregatedFieldWells::builder().category(by).values(value).build();
    let configuration = BarChartConfiguration::builder().field_wells(BarChartFieldWells::builder().bar_chart_aggregated_field_wells(wells).build()).orientation(BarChartOrientation::Horizontal).build();
    let visual = BarChartVisual::builder().visual_id(visual_id).title(title(text)).chart_configuration(configuration).build()?;
    Ok(Visual::builder().bar_chart_visual(visual).build())
}
