//! The CloudFormation templates in infra/cloudformation lint clean with cfn-lint (PyPI, pinned
//! in local/requirements.txt; errors and warnings both fail), and every one of them creates,
//! updates and deletes on moto CloudFormation with its parameter variants and refuses its
//! documented failing values (infra/cloudformation/check_on_moto.py). The lifecycle workflow's
//! own use of them is tested in services/worker/tests/workflows.rs.

use std::{path::PathBuf, process::Command};

use clickstream_e2e::{MotoServer, tool_path};

fn templates_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("../infra/cloudformation")
}

#[test]
fn every_cloudformation_template_lints_clean() {
    let templates_dir = templates_dir();
    let mut templates: Vec<PathBuf> = std::fs::read_dir(&templates_dir)
        .expect("infra/cloudformation exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yaml"))
        .collect();
    templates.sort();
    assert_eq!(templates.len(), 5, "control-plane, ingestion, processing, modeling and reporting: {templates:?}");
    let output = Command::new(tool_path("cfn-lint")).args(&templates).output().expect("cfn-lint runs");
    assert!(
        output.status.success(),
        "cfn-lint found problems:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn every_cloudformation_template_creates_updates_and_deletes_on_moto() {
    let directory = tempfile::tempdir().unwrap();
    let moto = MotoServer::start(directory.path());
    let output = Command::new(tool_path("python"))
        .arg(templates_dir().join("check_on_moto.py"))
        .args(["--endpoint", &moto.endpoint(), "--variants", "--failure-modes", "--updates"])
        .output()
        .expect("python runs check_on_moto.py");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && text.contains("all stacks created and deleted as expected"), "check_on_moto.py failed:\n{text}");
}
