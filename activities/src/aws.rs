//! AWS SDK configuration shared by the clients of the activities (Glue, Redshift Data,
//! DynamoDB): one recipe with the control plane's clients.

pub use clickstream_control::dynamodb::sdk_config;
