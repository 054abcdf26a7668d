//! AWS SDK configuration shared by the clients of the activities (Glue, Redshift Data,
//! DynamoDB): a region and, for moto or another emulator, an endpoint override.

/// The SDK configuration for one service: credentials and retries from the environment as
/// usual, the region given, and the endpoint when it is not empty.
pub async fn sdk_config(region: &str, endpoint: &str) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new(region.to_string()));
    if !endpoint.is_empty() {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}
