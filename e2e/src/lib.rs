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

/// `temporal server start-dev`, in memory, on free ports.
pub struct TemporalDevServer {
    pub process: ServerProcess,
    pub port: u16,
    pub ui_port: u16,
}

impl TemporalDevServer {
    pub fn start(log_directory: &Path) -> TemporalDevServer {
        let port = free_port();
        let ui_port = free_port();
        let mut process = ServerProcess::spawn(
            "temporal",
            Command::new(tool_path("temporal")).args(["server", "start-dev", "--headless", "--ip", "127.0.0.1", "--log-level", "warn"]).args(["--port", &port.to_string(), "--ui-port", &ui_port.to_string()]),
            log_directory,
        );
        process.wait_for_port(port, Duration::from_secs(60));
        TemporalDevServer { process, port, ui_port }
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

/// `moto_server` (AWS APIs: S3, DynamoDB, …) on a free port.
pub struct MotoServer {
    pub process: ServerProcess,
    pub port: u16,
}

impl MotoServer {
    pub fn start(log_directory: &Path) -> MotoServer {
        let port = free_port();
        let mut process = ServerProcess::spawn("moto", Command::new(tool_path("moto_server")).args(["-H", "127.0.0.1", "-p", &port.to_string()]), log_directory);
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

    /// Keys of a bucket under a prefix (unsigned ListObjectsV2).
    pub async fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let text = reqwest::Client::new()
            .get(format!("{}/{bucket}?list-type=2&prefix={prefix}&max-keys=10000", self.endpoint()))
            .send()
            .await
            .expect("moto answers")
            .text()
            .await
            .expect("moto answers with text");
        text.split("<Key>").skip(1).filter_map(|part| part.split("</Key>").next()).map(str::to_string).collect()
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
