//! The `clickstream` binary's command line: help that explains itself, and configuration
//! errors that name the key.

use std::process::Command;

use clickstream_e2e::clickstream_binary;

fn run(arguments: &[&str], config: Option<&str>) -> (i32, String) {
    let directory = tempfile::tempdir().unwrap();
    let mut command = Command::new(clickstream_binary());
    if let Some(text) = config {
        let path = directory.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        command.arg("--config").arg(path);
    }
    let output = command.args(arguments).env_remove("CLICKSTREAM_CONFIG").output().expect("the binary runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn help_names_every_service() {
    let (code, text) = run(&["--help"], None);
    assert_eq!(code, 0, "{text}");
    for subcommand in ["ingest", "worker", "console", "dev"] {
        assert!(text.contains(subcommand), "{text}");
    }
    let (code, text) = run(&["dev", "--help"], None);
    assert_eq!(code, 0);
    assert!(text.contains("one process"), "{text}");
}

#[test]
fn an_invalid_configuration_stops_the_start_with_the_key() {
    let (code, text) = run(&["dev"], Some("[ingest]\nlisten = \"nope\""));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("ingest.listen"), "{text}");

    let (code, text) = run(&["dev"], Some("[[projects]]\nid = \"demo\"\napps = []"));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("projects[0].apps"), "{text}");

    let (code, text) = run(&["ingest", "--config", "/no/such/file.toml"], None);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("does not exist"), "{text}");
}
