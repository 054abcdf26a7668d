//! Errors of the activities, each saying whether a retry can help. Temporal retries an
//! activity whose error is retryable; a non-retryable one fails the workflow with its message.

use temporalio_sdk::activities::ActivityError;

#[derive(Debug, thiserror::Error)]
pub enum ActivityFailure {
    /// The object store did not answer or failed: retry.
    #[error("object store operation `{operation}` on `{key}` failed: {source}")]
    ObjectStore { operation: &'static str, key: String, source: object_store::Error },
    /// The warehouse failed (locked file, disk): retry.
    #[error("warehouse operation failed: {0}")]
    Warehouse(#[from] duckdb::Error),
    /// Local scratch space failed: retry.
    #[error("local file operation failed: {0}")]
    LocalIo(#[from] std::io::Error),
    /// A document we wrote ourselves (plan, manifest, state) cannot be read: a bug or a
    /// hand-edited object; retrying does not help.
    #[error("object `{key}` is not a valid {what}: {reason}")]
    CorruptDocument { key: String, what: &'static str, reason: String },
    /// The input refers to something that does not exist; retrying does not help.
    #[error("{0}")]
    InvalidInput(String),
    /// The catalog (Glue) refused or did not answer: retry (throttling and outages pass).
    #[error("Glue {action} failed: {reason}")]
    Catalog { action: &'static str, reason: String },
    /// Redshift's Data API refused or did not answer: retry (throttling, a paused workgroup).
    #[error("Redshift Data API {action} failed: {reason}")]
    Redshift { action: &'static str, reason: String },
    /// The metadata store (DynamoDB) refused or did not answer: retry.
    #[error("metadata store {action} failed: {reason}")]
    MetadataStore { action: &'static str, reason: String },
    /// A pipeline stack failed to deploy (CloudFormation rolled it back, a resource was
    /// refused): retrying the same deployment does not help; the workflow rolls back.
    #[error("provisioning failed: {0}")]
    ProvisionFailed(String),
    /// The provisioner's API (CloudFormation, Kafka, Temporal) did not answer: retry.
    #[error("provisioner unavailable: {0}")]
    ProvisionerUnavailable(String),
    /// The control store refused or did not answer: retry.
    #[error("control store failed: {0}")]
    ControlStore(String),
    /// The ETL engine failed; it says itself whether a retry can help.
    #[error("ETL failed: {0}")]
    Etl(#[from] clickstream_etl::runner::RunError),
    /// The ETL engine could not set a project's job up (a plugin's module); it says itself
    /// whether a retry can help.
    #[error("ETL setup failed: {0}")]
    EtlSetup(#[from] clickstream_etl::engine::EngineError),
}

impl ActivityFailure {
    pub fn is_retryable(&self) -> bool {
        match self {
            ActivityFailure::ObjectStore { .. } | ActivityFailure::Warehouse(_) | ActivityFailure::LocalIo(_) | ActivityFailure::Catalog { .. }
            | ActivityFailure::Redshift { .. }
            | ActivityFailure::MetadataStore { .. }
            | ActivityFailure::ProvisionerUnavailable(_)
            | ActivityFailure::ControlStore(_) => true,
            ActivityFailure::Etl(error) => error.is_retryable(),
            ActivityFailure::EtlSetup(error) => error.is_retryable(),
            ActivityFailure::CorruptDocument { .. } | ActivityFailure::InvalidInput(_) | ActivityFailure::ProvisionFailed(_) => false,
        }
    }

    pub fn etl(error: clickstream_etl::runner::RunError) -> Self {
        ActivityFailure::Etl(error)
    }

    pub fn object_store(operation: &'static str, key: impl Into<String>) -> impl FnOnce(object_store::Error) -> Self {
        let key = key.into();
        move |source| ActivityFailure::ObjectStore { operation, key, source }
    }
}

impl ActivityFailure {
    /// The error handed to Temporal: retryable ones as plain errors (the retry policy applies),
    /// the others as non-retryable application failures.
    pub fn into_activity_error(self) -> ActivityError {
        tracing::warn!(error = %self, retryable = self.is_retryable(), "activity failed");
        if self.is_retryable() {
            ActivityError::from(anyhow::Error::new(self))
        } else {
            ActivityError::application(temporalio_common::error::ApplicationFailure::non_retryable(self))
        }
    }
}
