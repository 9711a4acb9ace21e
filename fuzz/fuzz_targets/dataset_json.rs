//! The JSONL and JSON dataset loaders (`cwm_datasets::load`). The first byte picks the mode:
//! - 0 and 1: the rest is a `.jsonl` or a `.json` file, as is;
//! - 2: instances built from the rest, written one JSON line each, must load back equal.
#![no_main]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use cwm_datasets::{load, Instance};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("cwm-fuzz-dataset-json-{}", std::process::id()));
    if let Err(err) = std::fs::create_dir_all(&dir) {
        panic!("{}: {err}", dir.display());
    }
    dir
});

fn load_bytes(
    name: &str,
    bytes: &[u8],
) -> std::result::Result<Vec<Instance>, cwm_datasets::DatasetError> {
    let path = DIR.join(name);
    if let Err(err) = std::fs::write(&path, bytes) {
        panic!("{}: {err}", path.display());
    }
    let result = load(&path);
    if let Err(err) = &result {
        let _ = err.to_string();
    }
    result
}

fn optional(u: &mut Unstructured) -> Result<Option<String>> {
    u.arbitrary()
}

fn instance(u: &mut Unstructured, index: usize) -> Result<Instance> {
    let mut extra = BTreeMap::new();
    for _ in 0..u.int_in_range(0..=2)? {
        let value = match u.int_in_range(0..=3)? {
            0 => serde_json::Value::Null,
            1 => serde_json::Value::from(u.arbitrary::<i64>()?),
            2 => serde_json::Value::from(u.arbitrary::<bool>()?),
            _ => serde_json::Value::from(u.arbitrary::<String>()?),
        };
        extra.insert(format!("x_{}", u.arbitrary::<String>()?), value);
    }
    Ok(Instance {
        instance_id: format!("{}-{index}", u.arbitrary::<String>()?),
        repo: u.arbitrary()?,
        base_commit: u.arbitrary()?,
        patch: u.arbitrary()?,
        test_patch: u.arbitrary()?,
        problem_statement: u.arbitrary()?,
        hints_text: u.arbitrary()?,
        created_at: u.arbitrary()?,
        version: u.arbitrary()?,
        environment_setup_commit: u.arbitrary()?,
        fail_to_pass: u.arbitrary()?,
        pass_to_pass: u.arbitrary()?,
        difficulty: optional(u)?,
        eval_script: optional(u)?,
        log_parser: optional(u)?,
        image: optional(u)?,
        extra,
    })
}

fn round_trip(u: &mut Unstructured) -> Result<()> {
    let rows: Vec<Instance> = (0..u.int_in_range(0..=3)?)
        .map(|i| instance(u, i))
        .collect::<Result<_>>()?;
    let mut text = String::new();
    for row in &rows {
        match serde_json::to_string(row) {
            Ok(line) => text.push_str(&line),
            Err(err) => panic!("serialise: {err}"),
        }
        text.push('\n');
    }
    match load_bytes("d.jsonl", text.as_bytes()) {
        Ok(back) => assert_eq!(back, rows),
        Err(err) => panic!("written rows do not load back: {err}"),
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let _ = load_bytes("d.jsonl", rest);
        }
        1 => {
            let _ = load_bytes("d.json", rest);
        }
        _ => {
            let _ = round_trip(&mut Unstructured::new(rest));
        }
    }
});
