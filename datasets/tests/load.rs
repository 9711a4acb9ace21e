//! Loading the real SWE-bench files and malformed inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::path::PathBuf;

use cwm_datasets::{load, Filter, Stats};

fn shared_datasets() -> PathBuf {
    cwm_datasets::fixtures::shared_datasets_dir()
}

#[test]
fn verified_parquet_and_jsonl_agree() {
    let parquet = load(&shared_datasets().join("swe-bench-verified.parquet")).unwrap();
    let jsonl = load(&shared_datasets().join("swe-bench-verified.jsonl")).unwrap();
    for instances in [&parquet, &jsonl] {
        let stats = Stats::of(instances);
        assert_eq!(stats.total, 500);
        assert_eq!(stats.per_repo["django/django"], 231);
        assert_eq!(stats.per_repo.len(), 12);
    }
    assert_eq!(parquet, jsonl);
    let first = &parquet[0];
    assert!(!first.fail_to_pass.is_empty());
    assert!(first
        .eval_script
        .as_deref()
        .unwrap()
        .contains(">>>>> Start Test Output"));
}

#[test]
fn lite_files_load() {
    for name in ["swe-bench-lite.parquet", "swe-bench-lite.jsonl"] {
        let instances = load(&shared_datasets().join(name)).unwrap();
        assert_eq!(instances.len(), 300, "{name}");
    }
}

#[test]
fn fixtures_load_and_filter() {
    let fixtures = load(&cwm_datasets::fixtures::fixtures_jsonl()).unwrap();
    assert!(fixtures.len() >= 8);
    for instance in &fixtures {
        assert!(instance.image_name().starts_with("cwm-bench/fixture."));
        assert_eq!(instance.base_commit.len(), 40);
    }
    let filter = Filter {
        repo: Some("fixtures/paginate".into()),
        ..Filter::default()
    };
    assert_eq!(filter.apply(fixtures).unwrap().len(), 1);
}

#[test]
fn json_list_dict_and_directory_forms() {
    let dir = tempfile::tempdir().unwrap();
    let row = serde_json::json!({"instance_id": "o__r-1", "repo": "o/r", "base_commit": "c",
        "FAIL_TO_PASS": "[\"t\"]", "PASS_TO_PASS": []});
    let list = dir.path().join("list.json");
    std::fs::write(&list, serde_json::to_string(&[&row]).unwrap()).unwrap();
    assert_eq!(load(&list).unwrap()[0].fail_to_pass, ["t"]);

    let mut keyed = row.clone();
    keyed.as_object_mut().unwrap().remove("instance_id");
    let dict = dir.path().join("sub");
    std::fs::create_dir(&dict).unwrap();
    std::fs::write(
        dict.join("data.json"),
        serde_json::json!({"o__r-9": keyed}).to_string(),
    )
    .unwrap();
    let from_dir = load(&dict).unwrap();
    assert_eq!(from_dir[0].instance_id, "o__r-9");
}

#[test]
fn bad_rows_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    let good = r#"{"instance_id": "o__r-1", "repo": "o/r", "base_commit": "c"}"#;
    let bad_type = r#"{"instance_id": "o__r-2", "repo": 7, "base_commit": "c"}"#;
    std::fs::write(&path, format!("{good}\n{bad_type}\n")).unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(
        err.contains("bad.jsonl") && err.contains("row 2") && err.contains("`repo`"),
        "{err}"
    );

    std::fs::write(
        &path,
        format!("{good}\n\n{{\"repo\": \"o/r\", \"base_commit\": \"c\"}}\n"),
    )
    .unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(
        err.contains("row 3") && err.contains("instance_id"),
        "{err}"
    );

    let bad_list =
        r#"{"instance_id": "o__r-3", "repo": "o/r", "base_commit": "c", "PASS_TO_PASS": "[oops"}"#;
    std::fs::write(&path, format!("{bad_list}\n")).unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(
        err.contains("PASS_TO_PASS") && err.contains("row 1"),
        "{err}"
    );

    std::fs::write(&path, format!("{good}\n{good}\n")).unwrap();
    assert!(load(&path)
        .unwrap_err()
        .to_string()
        .contains("duplicate instance id"));

    let err = load(&dir.path().join("missing.parquet"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
    let txt = dir.path().join("data.txt");
    std::fs::write(&txt, "").unwrap();
    assert!(load(&txt)
        .unwrap_err()
        .to_string()
        .contains("cannot tell the format"));
}
