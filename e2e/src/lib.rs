//! Test harness: starts the real servers the tests need (Temporal dev server, moto, the
//! `clickstream` binary) on free loopback ports, and stops them when dropped.
//!
//! A server that cannot be found or started fails the test with the reason; nothing is
//! skipped. Tools are looked up in `CLICKSTREAM_TOOLS_BIN` (the Python venv that
//! `local/test` installs), then on `PATH`.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Finds an executable, or panics saying how to install it.
pub fn tool_path(name: &str) -> PathBuf {
    let mut candidates = Vec::new();
    if let Ok(directory) = std::env::var("CLICKSTREAM_TOOLS_BIN") {
        candidates.push(PathBuf::from(directory).join(name));
    }
    if let Ok(path) = std::env::var("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|directory| directory.join(name)));
    }
    candidates
        .into_iter()
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{name}` not found in CLICKSTREAM_TOOLS_BIN or PATH: run the tests through local/test, which installs it"))
}

/// A free TCP port on loopback (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port").local_addr().expect("local address").port()
}

/// A child process killed (and reaped) on drop, with its output kept in a log file.
pub struct ServerProcess {
    pub name: String,
    pub child: Child,
    pub log_path: PathBuf,
}

impl ServerProcess {
    pub fn spawn(name: &str, command: &mut Command, log_directory: &Path) -> ServerProcess {
        let log_path = log_directory.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).expect("create a server log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone a log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name}: {error}"));
        ServerProcess { name: name.into(), child, log_path }
    }

    /// Waits until the server listens on `port`; panics with its log if it exits or times out.
    pub fn wait_for_port(&mut self, port: u16, patience: Duration) {
        let deadline = Instant::now() + patience;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.try_wait().expect("wait for a child") {
                panic!("{} exited ({status}) before listening on port {port}:\n{}", self.name, self.log());
            }
            assert!(Instant::now() < deadline, "{} did not open port {port} within {patience:?}:\n{}", self.name, self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's output so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, patience: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for a child") {
                return status;
            }
            assert!(Instant::now() < deadline, "{} did not stop within {patience:?} of SIGTERM:\n{}", self.name, self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `temporal server start-dev` on free ports: in memory, or in a database file that survives
/// a restart.
pub struct TemporalDevServer {
    pub process: ServerProcess,
    pub port: u16,
    pub ui_port: u16,
    database: Option<PathBuf>,
    log_directory: PathBuf,
}

impl TemporalDevServer {
    pub fn start(log_directory: &Path) -> TemporalDevServer {
        Self::launch(log_directory, None, free_port(), free_port())
    }

    /// A server whose state (workflows, schedules, task queues) is kept in `database`, so
    /// [`TemporalDevServer::restart`] comes back with every run where it was.
    pub fn start_with_database(log_directory: &Path, database: &Path) -> TemporalDevServer {
        Self::launch(log_directory, Some(database.to_path_buf()), free_port(), free_port())
    }

    fn launch(log_directory: &Path, database: Option<PathBuf>, port: u16, ui_port: u16) -> TemporalDevServer {
        let mut command = Command::new(tool_path("temporal"));
        command.args(["server", "start-dev", "--headless", "--ip", "127.0.0.1", "--log-level", "warn"]).args(["--port", &port.to_string(), "--ui-port", &ui_port.to_string()]);
        if let Some(database) = &database {
            command.arg("--db-filename").arg(database);
        }
        let mut process = ServerProcess::spawn("temporal", &mut command, log_directory);
        process.wait_for_port(port, Duration::from_secs(60));
        TemporalDevServer { process, port, ui_port, database, log_directory: log_directory.to_path_buf() }
    }

    /// Stops the server (SIGTERM) and starts it again on the same ports and database.
    pub fn restart(&mut self) {
        assert!(self.database.is_some(), "an in-memory server would come back empty: use start_with_database");
        self.process.terminate(Duration::from_secs(30));
        *self = Self::launch(&self.log_directory.clone(), self.database.clone(), self.port, self.ui_port);
    }

    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs the `temporal` CLI against this server and returns its standard output.
    pub fn cli(&self, arguments: &[&str]) -> String {
        let output = Command::new(tool_path("temporal"))
            .args(arguments)
            .args(["--address", &format!("127.0.0.1:{}", self.port)])
            .output()
            .expect("run the temporal CLI");
        assert!(output.status.success(), "temporal {arguments:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// moto's server with the Redshift Data API usable (see `moto_server.py`), embedded so the
/// harness does not depend on where the checkout is.
/// moto accepts any credentials; the AWS SDK needs some. Call it first in a test, before any
/// thread reads the environment.
pub fn use_test_aws_credentials() {
    // SAFETY: called at the start of a test, before threads that read the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
}

const MOTO_WRAPPER: &str = include_str!("moto_server.py");
/// The wrapper's fixes to moto's CloudFormation updates, written next to it.
const MOTO_CFN_FIXES: &str = include_str!("../../infra/cloudformation/moto_cfn_fixes.py");

/// `moto_server` (AWS APIs: S3, DynamoDB, Glue, Redshift Data, …) on a free port.
pub struct MotoServer {
    pub process: ServerProcess,
    pub port: u16,
}

impl MotoServer {
    pub fn start(log_directory: &Path) -> MotoServer {
        Self::start_with_environment(log_directory, &[])
    }

    /// With variables for the wrapper (e2e/src/moto_server.py), e.g.
    /// `CLICKSTREAM_MOTO_MSK_BROKERS`, the brokers its MSK clusters answer.
    pub fn start_with_environment(log_directory: &Path, environment: &[(&str, &str)]) -> MotoServer {
        let port = free_port();
        let wrapper = log_directory.join("moto_server.py");
        std::fs::create_dir_all(log_directory).expect("create the log directory");
        std::fs::write(&wrapper, MOTO_WRAPPER).expect("write the moto wrapper");
        std::fs::write(log_directory.join("moto_cfn_fixes.py"), MOTO_CFN_FIXES).expect("write the moto CloudFormation fixes");
        // The Python of moto's virtualenv: the one next to `moto_server`.
        let python = tool_path("moto_server").with_file_name("python3");
        let mut command = Command::new(python);
        command.arg(&wrapper).args(["-H", "127.0.0.1", "-p", &port.to_string()]).envs(environment.iter().copied());
        let mut process = ServerProcess::spawn("moto", &mut command, log_directory);
        process.wait_for_port(port, Duration::from_secs(60));
        MotoServer { process, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates an S3 bucket (moto accepts unsigned requests).
    pub async fn create_bucket(&self, bucket: &str) {
        let response = reqwest::Client::new().put(format!("{}/{bucket}", self.endpoint())).send().await.expect("moto answers");
        assert!(response.status().is_success(), "creating bucket {bucket}: {}", response.status());
    }

    /// Calls a Cognito user-pool API action (JSON protocol) and returns its answer.
    pub async fn cognito(&self, action: &str, body: serde_json::Value) -> serde_json::Value {
        self.json_api("cognito-idp", &format!("AWSCognitoIdentityProviderService.{action}"), body).await
    }

    /// One call of an AWS JSON API (Cognito, SSM `AmazonSSM.GetParameter`, ECS
    /// `AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition`, …) to moto, which checks no
    /// signature: tests read what moto holds without the service's SDK crate.
    pub async fn json_api(&self, service: &str, target: &str, body: serde_json::Value) -> serde_json::Value {
        let response = reqwest::Client::new()
            .post(format!("{}/", self.endpoint()))
            .header("x-amz-target", target)
            .header("content-type", "application/x-amz-json-1.1")
            .header("authorization", format!("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=x"))
            .body(body.to_string())
            .send()
            .await
            .expect("moto answers");
        let status = response.status();
        let text = response.text().await.expect("moto answers with text");
        assert!(status.is_success(), "{target} failed ({status}): {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    /// Creates a confirmed user in a Cognito pool (and in `group`, when given) and signs it in
    /// through `client_id`: its ID token, signed by the pool's key.
    pub async fn cognito_id_token(&self, pool_id: &str, client_id: &str, user: &str, group: Option<&str>) -> String {
        self.cognito("AdminCreateUser", serde_json::json!({"UserPoolId": pool_id, "Username": user, "TemporaryPassword": "Temp-pass-1!", "MessageAction": "SUPPRESS"})).await;
        self.cognito("AdminSetUserPassword", serde_json::json!({"UserPoolId": pool_id, "Username": user, "Password": "Real-pass-1!", "Permanent": true})).await;
        if let Some(group) = group {
            self.cognito("AdminAddUserToGroup", serde_json::json!({"UserPoolId": pool_id, "Username": user, "GroupName": group})).await;
        }
        let sign_in = serde_json::json!({"UserPoolId": pool_id, "ClientId": client_id, "AuthFlow": "ADMIN_USER_PASSWORD_AUTH", "AuthParameters": {"USERNAME": user, "PASSWORD": "Real-pass-1!"}});
        let authenticated = self.cognito("AdminInitiateAuth", sign_in).await;
        authenticated["AuthenticationResult"]["IdToken"].as_str().expect("an id token").to_string()
    }

    /// An S3 client of a bucket on this moto (the same `object_store` client clickstream uses).
    pub fn bucket(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .build()
            .expect("an S3 client for moto")
    }

    /// Keys of a bucket under a prefix.
    pub async fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let objects: Vec<object_store::ObjectMeta> =
            self.bucket(bucket).list(Some(&object_store::path::Path::from(prefix))).try_collect().await.expect("moto lists the bucket");
        objects.into_iter().map(|object| object.location.to_string()).collect()
    }

    /// The bytes of an object.
    pub async fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        use object_store::ObjectStore;
        let result = self.bucket(bucket).get(&object_store::path::Path::from(key)).await.expect("moto has the object");
        result.bytes().await.expect("moto sends the object").to_vec()
    }
}

/// The `clickstream` binary built next to the test executable (`cargo build --bin clickstream`).
pub fn clickstream_binary() -> PathBuf {
    let test_executable = std::env::current_exe().expect("the test knows its own path");
    let profile_directory = test_executable.parent().and_then(Path::parent).expect("tests run from target/<profile>/deps");
    let binary = profile_directory.join("clickstream");
    assert!(binary.is_file(), "{} does not exist: build it first with `cargo build --bin clickstream` (local/test does)", binary.display());
    binary
}

/// Polls `probe` every `interval` until it returns `Some`, or panics with `what` after `patience`.
pub async fn eventually<T, F, Fut>(what: &str, patience: Duration, interval: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + patience;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {patience:?} waiting for {what}");
        tokio::time::sleep(interval).await;
    }
}

/// A TCP proxy on loopback that can cut its upstream off, to simulate an unreachable endpoint
/// without losing the upstream's state (moto keeps everything in memory).
pub struct ToggleProxy {
    pub port: u16,
    reachable: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl ToggleProxy {
    pub async fn start(upstream_port: u16) -> ToggleProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let reachable = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let (accept_reachable, accept_connections) = (reachable.clone(), connections.clone());
        let accept_loop = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                if !accept_reachable.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(client); // refused: the endpoint is "down"
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
                accept_connections.lock().expect("not poisoned").push(task.abort_handle());
            }
        });
        ToggleProxy { port, reachable, connections, accept_loop }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Cuts every open connection and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.reachable.store(false, std::sync::atomic::Ordering::SeqCst);
        for connection in self.connections.lock().expect("not poisoned").drain(..) {
            connection.abort();
        }
    }

    pub fn restore(&self) {
        self.reachable.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for ToggleProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// The event ids inside every raw object under `prefix` of a moto bucket, with repeats.
pub async fn event_ids_in_raw_objects(moto: &MotoServer, bucket: &str, prefix: &str) -> Vec<String> {
    use clickstream_core::{raw_record::RawRecord, wire};
    let mut ids = Vec::new();
    for key in moto.list_keys(bucket, prefix).await {
        let bytes = moto.get(bucket, &key).await;
        let text = wire::gunzip(&bytes, usize::MAX).expect("raw objects are gzip");
        for line in String::from_utf8(text).expect("raw objects are text").lines() {
            let record: RawRecord = serde_json::from_str(line).expect("raw records are JSON");
            let data = record.data.expect("raw records carry data");
            let json = wire::decode_body(data.as_bytes(), record.compression.as_deref() == Some("gzip"), usize::MAX).expect("bodies decode");
            let events = wire::parse_events(&json).expect("an event array");
            ids.extend(events.iter().map(|event| event["event_id"].as_str().expect("event ids are strings").to_string()));
        }
    }
    ids
}

/// tansu, a Kafka-compatible broker, with in-memory storage on a free port.
pub struct TansuBroker {
    pub process: ServerProcess,
    pub port: u16,
}

impl TansuBroker {
    pub fn start(log_directory: &Path) -> TansuBroker {
        let port = free_port();
        Self::start_on(log_directory, port, port)
    }

    /// Listens on `port` but tells clients to connect to `advertised_port` (a [`ToggleProxy`]
    /// in front of it), so that every client connection goes through the proxy.
    pub fn start_on(log_directory: &Path, port: u16, advertised_port: u16) -> TansuBroker {
        let listener = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{advertised_port}");
        let mut process = ServerProcess::spawn(
            "tansu",
            Command::new(tool_path("tansu")).args(["broker", "--listener-url", &listener, "--advertised-listener-url", &advertised, "--storage-engine", "memory://tansu/"]),
            log_directory,
        );
        process.wait_for_port(port, Duration::from_secs(30));
        TansuBroker { process, port: advertised_port }
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Starts `clickstream --config <config> <role>` (with moto's dummy AWS credentials) and waits
/// until it listens on `port`.
pub fn start_clickstream(config: &Path, role: &str, port: u16, log_directory: &Path) -> ServerProcess {
    let mut process = ServerProcess::spawn(
        role,
        Command::new(clickstream_binary())
            .arg("--config")
            .arg(config)
            .arg(role)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into())),
        log_directory,
    );
    process.wait_for_port(port, Duration::from_secs(60));
    process
}

/// A JSON API over HTTP (the console's): each call gives the status and the body as JSON
/// (or as a JSON string when it is not JSON).
pub struct JsonApi {
    pub http: reqwest::Client,
    /// Prefixed to every path.
    pub base: String,
}

impl JsonApi {
    pub fn new(base: impl Into<String>) -> JsonApi {
        JsonApi { http: reqwest::Client::new(), base: base.into() }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("the API's answer is text");
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }
}

/// Panics unless the web console is built where `CLICKSTREAM_CONSOLE__WEB_DIR` says (the
/// browser tests need it; local/test builds it and exports the variable).
pub fn assert_web_console_built() {
    let web_dir = std::env::var("CLICKSTREAM_CONSOLE__WEB_DIR").expect("CLICKSTREAM_CONSOLE__WEB_DIR names the built web console: run the tests through local/test, which builds it");
    assert!(Path::new(&web_dir).join("index.html").is_file(), "{web_dir}/index.html is missing: build the console (local/test does)");
}

/// The loopback ports of a `clickstream dev`, picked before it starts (an OIDC issuer needs the
/// console's URL first).
#[derive(Debug, Clone, Copy)]
pub struct DevPorts {
    pub ingest: u16,
    pub console: u16,
    pub worker: u16,
}

impl DevPorts {
    pub fn free() -> DevPorts {
        DevPorts { ingest: free_port(), console: free_port(), worker: free_port() }
    }
}

/// `clickstream dev` (collector, worker, console in one process) on loopback, its state
/// (spool, data as files, DuckDB warehouse, SQLite control store) in `root`, projects and
/// pipelines refreshed from the store every second. `extra` is appended to the configuration:
/// more tables such as `[[projects]]` or `[console.oidc]` (values of the common tables go
/// through `CLICKSTREAM_*` variables, which the process inherits).
pub struct DevStack {
    pub process: ServerProcess,
    pub ports: DevPorts,
}

impl DevStack {
    pub fn start(root: &Path, temporal: &TemporalDevServer, ports: DevPorts, extra: &str) -> DevStack {
        let config_path = root.join("clickstream.toml");
        let DevPorts { ingest, console, worker } = ports;
        let common = format!(
            r#"
[ingest]
listen = "127.0.0.1:{ingest}"
sink_batch_max_age_ms = 300
spool_dir = "{root}/spool"
[console]
listen = "127.0.0.1:{console}"
[worker]
listen = "127.0.0.1:{worker}"
[temporal]
address = "{temporal}"
[storage]
url = "file://{root}/data"
[warehouse]
duckdb_path = "{root}/warehouse.duckdb"
[control]
embedded_path = "{root}/control.sqlite"
refresh_seconds = 1
"#,
            root = root.display(),
            temporal = temporal.address(),
        );
        std::fs::write(&config_path, format!("{common}{extra}")).expect("write the dev stack's configuration");
        let mut process = start_clickstream(&config_path, "dev", console, root);
        process.wait_for_port(ingest, Duration::from_secs(60));
        DevStack { process, ports }
    }

    pub fn console_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.console)
    }

    pub fn ingest_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.ingest)
    }
}

/// Load-generator settings that record the ids of accepted events in `accepted_ids_file`.
pub fn load_recording_accepted(port: u16, app_id: &str, duration: Duration, concurrency: usize, accepted_ids_file: &Path) -> clickstream_loadgen::LoadSettings {
    clickstream_loadgen::LoadSettings {
        url: format!("http://127.0.0.1:{port}/collect"),
        app_id: app_id.into(),
        duration,
        concurrency,
        events_per_request: 10,
        gzip: false,
        accepted_ids_file: Some(accepted_ids_file.to_path_buf()),
        show_progress: false,
        requests_per_second: None,
    }
}

pub fn read_accepted_ids(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file).expect("the load generator wrote its accepted ids").lines().filter(|line| !line.is_empty()).map(str::to_string).collect()
}

/// Waits until every accepted id is in the raw objects under `prefix`, and returns all stored
/// ids (duplicates included, which are allowed: the warehouse deduplicates). On timeout it
/// panics with how many are missing and the logs of `processes`.
pub async fn wait_until_all_stored(moto: &MotoServer, bucket: &str, prefix: &str, accepted: &[String], patience: Duration, processes: &[&ServerProcess]) -> Vec<String> {
    let deadline = Instant::now() + patience;
    loop {
        let stored = event_ids_in_raw_objects(moto, bucket, prefix).await;
        let stored_set: std::collections::HashSet<&String> = stored.iter().collect();
        let missing = accepted.iter().filter(|id| !stored_set.contains(id)).count();
        if missing == 0 {
            println!("accepted {} events, stored {} ({} duplicates)", accepted.len(), stored.len(), stored.len() - stored_set.len());
            return stored;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = processes.iter().map(|process| format!("--- {} log:\n{}", process.name, process.log())).collect();
            panic!("{missing} of {} acknowledged events never reached S3 within {patience:?}\n{}", accepted.len(), logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How many requests the collector refused because its spool was full, from `/metrics`.
pub async fn spool_full_refusals(port: u16) -> u64 {
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.expect("metrics answer").text().await.expect("metrics text");
    metrics
        .lines()
        .find(|line| line.starts_with("clickstream_ingest_requests_total") && line.contains("reason=\"spool_full\""))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// Loads the collector on `port` for 70 s, with `proxy` cutting its sink off from 5 s to 65 s,
/// then checks that the only refusals were 503s from a full spool. Accepted event ids go to
/// `accepted_ids_file`.
pub async fn load_through_a_sink_outage(port: u16, app_id: &str, proxy: &ToggleProxy, accepted_ids_file: &Path) -> clickstream_loadgen::LoadSummary {
    let outage = Duration::from_secs(60);
    let load = tokio::spawn(clickstream_loadgen::run(load_recording_accepted(port, app_id, outage + Duration::from_secs(10), 4, accepted_ids_file)));
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.cut();
    tokio::time::sleep(outage).await;
    proxy.restore();
    let summary = load.await.expect("the load task does not panic").expect("the load generator runs");
    println!("{}", serde_json::to_string(&summary).expect("summaries serialize"));
    assert_refusals_only_from_a_full_spool(&summary, port).await;
    summary
}

/// Checks a load run through an outage: some 503s, all of them from a full spool, nothing else.
pub async fn assert_refusals_only_from_a_full_spool(summary: &clickstream_loadgen::LoadSummary, collector_port: u16) {
    let refused = summary.errors_by_status.get("503").copied().unwrap_or(0);
    assert!(refused > 0, "a 2 MB spool must fill during a 60 s outage under load: {summary:?}");
    assert_eq!(summary.errors_by_status.keys().filter(|status| *status != "503").count(), 0, "{summary:?}");
    assert_eq!(spool_full_refusals(collector_port).await, refused, "every 503 must come from a full spool");
}
