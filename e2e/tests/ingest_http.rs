//! The collector's HTTP edge over a real socket (hyper, not an in-process router): limits a
//! client can hit with headers, methods and compressed bodies.

use std::{io::Write, time::Duration};

use clickstream_e2e::{free_port, start_clickstream};

#[tokio::test(flavor = "multi_thread")]
async fn abusive_requests_get_clear_4xx_and_the_collector_keeps_serving() {
    let directory = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = directory.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[ingest]\nlisten = \"127.0.0.1:{port}\"\nspool_dir = \"{spool}\"\nmax_body_bytes = 100000\n[storage]\nurl = \"file://{data}\"\n[[projects]]\nid = \"p\"\napps = [\"app\"]\n",
            spool = directory.path().join("spool").display(),
            data = directory.path().join("data").display()
        ),
    )
    .unwrap();
    let mut collector = start_clickstream(&config, "ingest", port, directory.path());
    let url = format!("http://127.0.0.1:{port}/collect?appId=app");
    let http = reqwest::Client::new();
    let events = r#"[{"event_type":"e","event_id":"1","app_id":"app","timestamp":1}]"#;

    // Headers far beyond what any SDK sends.
    let huge = "x".repeat(200_000);
    let status = http.post(&url).header("x-padding", &huge).body(events).send().await.map(|response| response.status().as_u16());
    assert_eq!(status.ok(), Some(431), "oversized headers");

    // A gzip bomb: about 50 kB on the wire, 50 MB inflated.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![b'['; 50 * 1024 * 1024]).unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 100_000);
    let response = http.post(&url).header("content-encoding", "gzip").body(bomb).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("exceeds"));

    // Wrong method and unknown path.
    assert_eq!(http.get(&url).send().await.unwrap().status().as_u16(), 405);
    assert_eq!(http.post(format!("http://127.0.0.1:{port}/other")).body(events).send().await.unwrap().status().as_u16(), 403);

    // Still serving.
    assert_eq!(http.post(&url).body(events).send().await.unwrap().status().as_u16(), 200);
    assert!(collector.terminate(Duration::from_secs(30)).success(), "{}", collector.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_app_added_to_the_configuration_file_is_accepted_without_a_restart() {
    let directory = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = directory.path().join("c.toml");
    let write = |apps: &str| {
        std::fs::write(
            &config,
            format!(
                "[ingest]\nlisten = \"127.0.0.1:{port}\"\nspool_dir = \"{spool}\"\napp_refresh_seconds = 1\n[storage]\nurl = \"file://{data}\"\n[[projects]]\nid = \"p\"\napps = {apps}\n",
                spool = directory.path().join("spool").display(),
                data = directory.path().join("data").display()
            ),
        )
        .unwrap()
    };
    write(r#"["app"]"#);
    let mut collector = start_clickstream(&config, "ingest", port, directory.path());
    let http = reqwest::Client::new();
    let events = r#"[{"event_type":"e","event_id":"1","app_id":"late","timestamp":1}]"#;
    let send = || http.post(format!("http://127.0.0.1:{port}/collect?appId=late")).body(events).send();
    assert_eq!(send().await.unwrap().status().as_u16(), 403);

    write(r#"["app", "late"]"#);
    let mut status = 0;
    for _ in 0..50 {
        status = send().await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200, "the new app was not picked up:\n{}", collector.log());
    assert!(collector.terminate(Duration::from_secs(30)).success());
}
