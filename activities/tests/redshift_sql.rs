//! The Redshift dialect's SQL, compared with golden files in `tests/golden/redshift/`.
//! Redshift cannot run here, so a reviewer reads the golden files; this test makes sure every
//! change to them is deliberate. After a deliberate change, re-create them with
//! `CLICKSTREAM_BLESS=1 cargo test -p clickstream-activities --test redshift_sql` and review the diff.

use std::path::PathBuf;

use clickstream_activities::redshift_sql::{TableLoad, delete_expired_statements, load_statements, metadata_scan_statements, refresh_reporting_statements};

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR when it runs tests")).join("tests/golden/redshift").join(name)
}

/// One statement per paragraph, each ending with `;`.
fn render(statements: &[String]) -> String {
    statements.iter().map(|statement| format!("{statement};\n")).collect::<Vec<_>>().join("\n")
}

fn assert_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var("CLICKSTREAM_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{} is missing ({error}): create it with CLICKSTREAM_BLESS=1", path.display()));
    assert!(expected == actual, "{} differs from the generated SQL:\n{actual}", path.display());
}

#[test]
fn a_load_copies_each_table_into_staging_and_merges_on_its_keys() {
    let loads: Vec<TableLoad> = ["event_v2", "item_v2", "user_v2", "session"]
        .iter()
        .map(|table| TableLoad { app_id: "shop-web".into(), table: table.to_string(), manifest_url: format!("s3://bucket/proj/load-workflow/manifests/b1/shop-web/{table}.json") })
        .collect();
    let planned = load_statements(&loads, "arn:aws:iam::123456789012:role/clickstream-copy");
    assert_golden("load.sql", &render(&planned.statements));
    let counted: Vec<(&str, &str)> = planned.counted.iter().map(|(index, table)| (planned.statements[*index as usize].split_whitespace().next().unwrap(), table.as_str())).collect();
    assert_eq!(counted, [("INSERT", "event_v2"), ("INSERT", "item_v2"), ("MERGE", "user_v2"), ("MERGE", "session")], "the row counts come from the statements that store rows");
}

#[test]
fn reporting_retention_and_metadata_scan_sql() {
    assert_golden("refresh_reporting.sql", &render(&refresh_reporting_statements("shop-web").statements));
    assert_golden("delete_expired.sql", &render(&delete_expired_statements("shop-web", 1_700_000_000_000).statements));
    let scan = metadata_scan_statements("shop-web");
    assert_eq!(scan.len(), clickstream_activities::redshift_sql::METADATA_SCAN_SETUP_STATEMENTS + 3, "setup, then the three queries the scan reads");
    assert_golden("metadata_scan.sql", &render(&scan));
}

#[test]
fn identifiers_and_literals_are_quoted() {
    let loads = [TableLoad { app_id: "a\"b".into(), table: "event_v2".into(), manifest_url: "s3://bucket/it's.json".into() }];
    let statements = load_statements(&loads, "role'x").statements.join("\n");
    assert!(statements.contains("\"a\"\"b\".\"event_v2\""), "{statements}");
    assert!(statements.contains("'s3://bucket/it''s.json'") && statements.contains("'role''x'"), "{statements}");
}
