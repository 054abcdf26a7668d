//! The web console in headless Chromium, against the real stack: a real OIDC issuer
//! (npm `oidc-provider`, e2e/oidc/issuer.mjs: authorization code + PKCE, `roles` in the ID
//! token), `clickstream dev` with OIDC on and the built console (CLICKSTREAM_CONSOLE__WEB_DIR),
//! and the Temporal dev server. e2e/browser/console.mjs signs in, creates a project, an app
//! and a pipeline through the UI (with a custom plugin uploaded on the Plugins page and ticked
//! in the wizard), waits for the lifecycle workflow to make it active, sends
//! events to the app's endpoint and waits for the console to count them.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use clickstream_e2e::{DevPorts, DevStack, TemporalDevServer, assert_web_console_built};

const CLIENT_ID: &str = "clickstream-console";

fn e2e_directory() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR when it runs tests"))
}

/// The test issuer, killed on drop. Its stdout carries only the `ISSUER <url>` line; its
/// logs (stderr) go to a file next to the other servers' logs.
struct OidcIssuer {
    child: Child,
    url: String,
    log_path: PathBuf,
}

impl OidcIssuer {
    fn start(console_origin: &str, log_directory: &Path) -> OidcIssuer {
        let directory = e2e_directory().join("oidc");
        assert!(directory.join("node_modules/oidc-provider").is_dir(), "run the tests through local/test, which installs e2e/oidc's npm packages");
        let log_path = log_directory.join("oidc-issuer.log");
        let mut child = Command::new("node")
            .arg(directory.join("issuer.mjs"))
            .env("PORT", "0")
            .env("CLIENT_ID", CLIENT_ID)
            .env("REDIRECT_URIS", format!("{console_origin}/auth/callback"))
            .env("POST_LOGOUT_REDIRECT_URIS", format!("{console_origin}/"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log_path).expect("create the issuer's log file"))
            .spawn()
            .expect("node starts the OIDC issuer");
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut first_line).expect("read the issuer's stdout");
        let Some(url) = first_line.trim().strip_prefix("ISSUER ").map(str::to_string) else {
            let _ = child.kill();
            panic!("the OIDC issuer did not start (stdout {first_line:?}):\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
        };
        OidcIssuer { child, url, log_path }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for OidcIssuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_user_signs_in_creates_a_pipeline_in_the_console_and_sees_its_events_counted() {
    assert_web_console_built();
    let directory = tempfile::tempdir().unwrap();
    let temporal = TemporalDevServer::start(directory.path());
    let ports = DevPorts::free();
    // 127.0.0.1, not localhost: the issuer's redirect URI must match the console's origin
    // exactly, and the SPA's PKCE needs a secure context (loopback IPs are one).
    let console_origin = format!("http://127.0.0.1:{}", ports.console);
    let issuer = OidcIssuer::start(&console_origin, directory.path());
    // The built console comes from CLICKSTREAM_CONSOLE__WEB_DIR, inherited by the process.
    let stack = DevStack::start(
        directory.path(),
        &temporal,
        ports,
        &format!("[console.oidc]\nenabled = true\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nroles_claim = \"roles\"\n", issuer.url),
    );

    // The page-category example, built into a component, for the Plugins page's upload.
    let plugin_module = clickstream_plugins::build::build_plugin_crate(&clickstream_plugins::build::plugin_crate_dir("examples/page-category")).unwrap_or_else(|error| panic!("{error}"));
    let artifacts = std::env::var("CLICKSTREAM_TEST_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|_| directory.path().join("artifacts"));
    let started = Instant::now();
    let output = Command::new("node")
        .arg(e2e_directory().join("browser/console.mjs"))
        .env("CONSOLE_URL", &console_origin)
        .env("LOGIN", "admin-user")
        .env("PROJECT_ID", "shop")
        .env("APP_ID", "shop_web")
        .env("PLUGIN_MODULE", &plugin_module)
        .env("EVENTS", "5")
        .env("TIMEOUT_SECONDS", "240")
        .env("ARTIFACTS_DIR", &artifacts)
        .output()
        .expect("node runs the browser test");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("CONSOLE E2E OK"),
        "the browser run failed after {:?}:\n{text}\n--- clickstream dev log:\n{}\n--- issuer log:\n{}",
        started.elapsed(),
        stack.process.log(),
        issuer.log()
    );
    eprintln!("{text}");
    // The issuer saw the sign-in the browser made (the console did not fall back to auth off).
    assert!(issuer.log().contains("login admin-user roles [\"admin\"]"), "{}", issuer.log());
    let mut dev = stack.process;
    assert!(dev.terminate(Duration::from_secs(30)).success(), "{}", dev.log());
}
