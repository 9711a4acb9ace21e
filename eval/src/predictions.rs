//! Predictions: `{instance_id, model_name_or_path, model_patch}` records, from a JSONL file,
//! a JSON list, a JSON dict keyed by instance id, or made up from the dataset (gold, empty).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use cwm_datasets::Instance;

use crate::error::{EvalError, PredictionsProblem};

pub use cwm_datasets::Prediction;

/// Predictions keyed by instance id; a later record for the same id replaces an earlier one.
pub type Predictions = BTreeMap<String, Prediction>;

/// The gold patches of `instances`, as upstream's `--predictions_path gold`.
pub fn gold(instances: &[Instance]) -> Predictions {
    made_up(instances, "gold", |i| i.patch.clone())
}

/// An empty patch for every instance: runs the tests on the unchanged base commit.
pub fn empty(instances: &[Instance]) -> Predictions {
    made_up(instances, "empty", |_| String::new())
}

fn made_up(
    instances: &[Instance],
    model: &str,
    patch: impl Fn(&Instance) -> String,
) -> Predictions {
    instances
        .iter()
        .map(|i| {
            let p = Prediction {
                instance_id: i.instance_id.clone(),
                model_name_or_path: model.to_string(),
                model_patch: Some(patch(i)),
            };
            (i.instance_id.clone(), p)
        })
        .collect()
}

/// Reads a predictions file in any of the three layouts.
pub fn load(path: &Path) -> Result<Predictions, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |problem: PredictionsProblem| EvalError::BadPredictions {
        path: path.to_path_buf(),
        problem,
    };
    let records = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(value) => from_value(value).map_err(bad)?,
        Err(_) => from_jsonl(&text).map_err(bad)?,
    };
    let mut out = Predictions::new();
    for record in records {
        if record.instance_id.is_empty() {
            return Err(bad(PredictionsProblem::NoInstanceId));
        }
        out.insert(record.instance_id.clone(), record);
    }
    Ok(out)
}

/// A whole-file JSON value: a list, a dict keyed by id, or a single record.
fn from_value(value: serde_json::Value) -> Result<Vec<Prediction>, PredictionsProblem> {
    let parse = |v: serde_json::Value| {
        serde_json::from_value::<Prediction>(v).map_err(PredictionsProblem::BadRecord)
    };
    match value {
        serde_json::Value::Array(items) => items.into_iter().map(parse).collect(),
        serde_json::Value::Object(map) if map.contains_key("instance_id") => {
            Ok(vec![parse(serde_json::Value::Object(map))?])
        }
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(id, v)| {
                let mut p = parse(v)?;
                if p.instance_id.is_empty() {
                    p.instance_id = id;
                }
                Ok(p)
            })
            .collect(),
        other => Err(PredictionsProblem::WrongShape {
            found: kind(&other),
        }),
    }
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

fn from_jsonl(text: &str) -> Result<Vec<Prediction>, PredictionsProblem> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str::<Prediction>(line).map_err(|source| PredictionsProblem::BadLine {
                line: n + 1,
                source,
            })
        })
        .collect()
}

/// Fails with every prediction id the dataset does not hold (sorted).
pub fn check_known(predictions: &Predictions, dataset: &[Instance]) -> Result<(), EvalError> {
    let known: HashSet<&str> = dataset.iter().map(|i| i.instance_id.as_str()).collect();
    let unknown: Vec<String> = predictions
        .keys()
        .filter(|id| !known.contains(id.as_str()))
        .cloned()
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(EvalError::UnknownPredictionIds(unknown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("preds");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    const A: &str = r#"{"instance_id": "a", "model_name_or_path": "m", "model_patch": "diff"}"#;
    const B: &str = r#"{"instance_id": "b", "model_name_or_path": "m", "model_patch": null}"#;

    #[test]
    fn reads_all_three_layouts() {
        for text in [
            format!("{A}\n\n{B}\n"),
            format!("[{A}, {B}]"),
            format!(r#"{{"a": {A}, "b": {{"model_name_or_path": "m", "model_patch": null}}}}"#),
        ] {
            let (_dir, path) = write(&text);
            let preds = load(&path).expect("load");
            assert_eq!(preds.len(), 2, "{text}");
            assert_eq!(preds["a"].model_patch.as_deref(), Some("diff"));
            assert_eq!(preds["b"].model_patch, None);
            assert_eq!(preds["b"].instance_id, "b");
        }
    }

    #[test]
    fn bad_line_is_named() {
        let (_dir, path) = write(&format!("{A}\nnot json\n"));
        let err = load(&path).expect_err("must fail");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
