//! Connecting to a Temporal frontend over TLS, with a client certificate (mTLS, as Temporal
//! Cloud's namespaces require) or an API key. The frontend is a real dev server behind a
//! TLS-terminating proxy that demands a client certificate from a test CA; the certificates
//! are made with openssl for the test.

use std::{path::Path, process::Command, time::Duration};

use clickstream_core::{Config, config::TemporalConfig};
use clickstream_e2e::{ServerProcess, TemporalDevServer, free_port, tool_path};
use clickstream_worker::{WorkerError, connect, connection_options};

fn openssl(directory: &Path, arguments: &[&str]) {
    let output = Command::new("openssl").args(arguments).current_dir(directory).output().expect("openssl runs");
    assert!(output.status.success(), "openssl {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A CA, a server certificate for localhost and a client certificate, both signed by it.
fn certificates(directory: &Path) {
    openssl(directory, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=clickstream test CA"]);
    for (name, extension) in [("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")] {
        openssl(directory, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &format!("{name}.key"), "-out", &format!("{name}.csr"), "-subj", &format!("/CN={name}")]);
        std::fs::write(directory.join(format!("{name}.ext")), extension).unwrap();
        openssl(directory, &["x509", "-req", "-in", &format!("{name}.csr"), "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", &format!("{name}.pem"), "-days", "2", "-extfile", &format!("{name}.ext")]);
    }
}

fn read(directory: &Path, name: &str) -> String {
    std::fs::read_to_string(directory.join(name)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_reaches_a_tls_frontend_with_its_client_certificate() {
    let directory = tempfile::tempdir().unwrap();
    let certs = directory.path();
    certificates(certs);
    let temporal = TemporalDevServer::start(certs);
    let proxy_port = free_port();
    let proxy_script = tool_path("moto_server").parent().unwrap().join("python3");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/src/tls_proxy.py");
    let mut command = Command::new(proxy_script);
    command.arg(script).args(["--port", &proxy_port.to_string(), "--target", &temporal.port.to_string(), "--cert", "server.pem", "--key", "server.key", "--client-ca", "ca.pem"]).current_dir(certs);
    let mut proxy = ServerProcess::spawn("tls-proxy", &mut command, certs);
    proxy.wait_for_port(proxy_port, Duration::from_secs(30));

    let mut config = Config::default();
    config.temporal.address = format!("http://127.0.0.1:{proxy_port}");
    config.temporal.tls_server_ca = read(certs, "ca.pem");
    config.temporal.tls_domain = "localhost".into();

    // Without a client certificate the frontend refuses the handshake.
    let refused = connect(&config, Duration::ZERO).await.map(|_| ()).unwrap_err();
    assert!(matches!(refused, WorkerError::Connect { .. }), "{refused}");

    // With it (here from Temporal's own variables, as the control-plane template sets them),
    // the client connects and its calls go through.
    let saved = (std::env::var("TEMPORAL_TLS_CLIENT_CERT_DATA").ok(), std::env::var("TEMPORAL_TLS_CLIENT_KEY_DATA").ok());
    let with_certificate = |variable: &str| match variable {
        "TEMPORAL_TLS_CLIENT_CERT_DATA" => Some(read(certs, "client.pem")),
        "TEMPORAL_TLS_CLIENT_KEY_DATA" => Some(read(certs, "client.key")),
        _ => None,
    };
    let options = connection_options(&config.temporal, with_certificate).unwrap();
    assert!(options.tls_options.as_ref().is_some_and(|tls| tls.client_tls_options.is_some()));
    // Connecting makes the GetSystemInfo call, so success means a gRPC round trip went through.
    if let Err(error) = temporalio_client::Connection::connect(options).await {
        panic!("mTLS through the proxy failed: {error:?}\n--- proxy log:\n{}", proxy.log());
    }
    config.temporal.tls_client_cert = read(certs, "client.pem");
    config.temporal.tls_client_key = read(certs, "client.key");
    connect(&config, Duration::from_secs(10)).await.expect("connect with the configured certificate");
    assert_eq!(saved, (None, None), "the test does not depend on the machine's variables");

    // Plain gRPC to a TLS frontend fails rather than sending in the clear.
    let plain = Config { temporal: TemporalConfig { address: config.temporal.address.clone(), ..Config::default().temporal }, ..Config::default() };
    assert!(connect(&plain, Duration::ZERO).await.is_err());
    proxy.terminate(Duration::from_secs(5));
}

#[test]
fn settings_that_do_not_go_together_are_refused() {
    let no_env = |_: &str| None;
    let mut temporal = Config::default().temporal;
    let plain = connection_options(&temporal, no_env).unwrap();
    assert!(plain.tls_options.is_none() && plain.api_key.is_none(), "the dev stack connects in the clear");

    temporal.api_key = "secret".into();
    let with_key = connection_options(&temporal, no_env).unwrap();
    assert_eq!(with_key.api_key.as_deref(), Some("secret"));
    let from_env = connection_options(&Config::default().temporal, |variable: &str| (variable == "TEMPORAL_API_KEY").then(|| "from-env".to_string())).unwrap();
    assert_eq!(from_env.api_key.as_deref(), Some("from-env"));

    let mut half = Config::default().temporal;
    half.tls_client_cert = "-----BEGIN CERTIFICATE-----".into();
    let refused = connection_options(&half, no_env).map(|_| ()).unwrap_err();
    assert!(refused.to_string().contains("needs its key"), "{refused}");
    let mut path = Config::default().temporal;
    path.tls_server_ca = "/etc/ssl/ca.pem".into();
    let refused = connection_options(&path, no_env).map(|_| ()).unwrap_err();
    assert!(refused.to_string().contains("must be PEM text"), "{refused}");
    let mut tls_only = Config::default().temporal;
    tls_only.tls = true;
    let tls = connection_options(&tls_only, no_env).unwrap();
    assert!(tls.tls_options.as_ref().is_some_and(|tls| tls.client_tls_options.is_none()));
    assert_eq!(tls.target.scheme(), "https", "TLS needs an https:// target, whatever the address says");
    assert_eq!(plain.target.scheme(), "http");
}
