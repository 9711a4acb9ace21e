//! Loading instances from JSONL, JSON and parquet files, or a directory holding one.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use parquet::errors::ParquetError;
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::{DatasetError, Instance, RowProblem};

/// Loads every instance in `path`, picking the format from the file extension.
///
/// A directory is accepted when it holds exactly one dataset file (or one of them is
/// named like a split: `test.*`).
pub fn load(path: &Path) -> Result<Vec<Instance>, DatasetError> {
    let file = if path.is_dir() {
        dataset_file_in(path)?
    } else {
        path.to_path_buf()
    };
    if !file.exists() {
        return Err(DatasetError::NotFound(file));
    }
    let instances = match extension(&file).as_str() {
        "jsonl" | "ndjson" => load_jsonl(&file)?,
        "json" => load_json(&file)?,
        "parquet" => load_parquet(&file)?,
        _ => return Err(DatasetError::UnknownFormat(file)),
    };
    check_unique_ids(&file, &instances)?;
    Ok(instances)
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn dataset_file_in(dir: &Path) -> Result<PathBuf, DatasetError> {
    let io = |source| DatasetError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                extension(p).as_str(),
                "jsonl" | "ndjson" | "json" | "parquet"
            )
        })
        .collect();
    candidates.sort();
    if candidates.len() > 1 {
        let split = candidates.iter().find(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| s == "test" || s.starts_with("test-"))
        });
        if let Some(split) = split {
            return Ok(split.clone());
        }
    }
    match candidates.len() {
        1 => Ok(candidates.remove(0)),
        0 => Err(DatasetError::EmptyDir(dir.to_path_buf())),
        _ => Err(DatasetError::AmbiguousDir(dir.to_path_buf(), candidates)),
    }
}

fn parse_row(file: &Path, row: usize, value: serde_json::Value) -> Result<Instance, DatasetError> {
    serde_path_to_error::deserialize(value).map_err(|e| DatasetError::BadRow {
        file: file.to_path_buf(),
        row,
        field: e.path().to_string(),
        problem: RowProblem::Field(e.into_inner()),
    })
}

fn load_jsonl(file: &Path) -> Result<Vec<Instance>, DatasetError> {
    let reader = BufReader::new(File::open(file).map_err(|source| DatasetError::Io {
        path: file.to_path_buf(),
        source,
    })?);
    let mut instances = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line_no = index + 1;
        let line = line.map_err(|source| DatasetError::Io {
            path: file.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| DatasetError::BadRow {
                file: file.to_path_buf(),
                row: line_no,
                field: "(whole line)".into(),
                problem: RowProblem::InvalidJson(e),
            })?;
        instances.push(parse_row(file, line_no, value)?);
    }
    Ok(instances)
}

fn load_json(file: &Path) -> Result<Vec<Instance>, DatasetError> {
    let text = std::fs::read_to_string(file).map_err(|source| DatasetError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| DatasetError::BadRow {
            file: file.to_path_buf(),
            row: e.line(),
            field: "(document)".into(),
            problem: RowProblem::InvalidJson(e),
        })?;
    match value {
        serde_json::Value::Array(rows) => rows
            .into_iter()
            .enumerate()
            .map(|(i, row)| parse_row(file, i + 1, row))
            .collect(),
        // A dict keyed by instance id; the key fills in a missing `instance_id`.
        serde_json::Value::Object(map) => map
            .into_iter()
            .enumerate()
            .map(|(i, (id, mut row))| {
                if let Some(obj) = row.as_object_mut() {
                    obj.entry("instance_id").or_insert(id.into());
                }
                parse_row(file, i + 1, row)
            })
            .collect(),
        _ => Err(DatasetError::BadRow {
            file: file.to_path_buf(),
            row: 1,
            field: "(document)".into(),
            problem: RowProblem::NotAList,
        }),
    }
}

fn load_parquet(file: &Path) -> Result<Vec<Instance>, DatasetError> {
    // The parquet crate panics on some corrupt files (asserts and `expect`s on what a footer
    // or a page claims, dates outside chrono's range); that is this file's error.
    std::panic::catch_unwind(AssertUnwindSafe(|| read_parquet(file))).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(DatasetError::Parquet {
            path: file.to_path_buf(),
            source: ParquetError::General(format!("the reader failed on the file: {message}")),
        })
    })
}

fn read_parquet(file: &Path) -> Result<Vec<Instance>, DatasetError> {
    let bad = |source: ParquetError| DatasetError::Parquet {
        path: file.to_path_buf(),
        source,
    };
    let handle = File::open(file).map_err(|source| DatasetError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let reader = SerializedFileReader::new(handle).map_err(bad)?;
    // The footer's row count is not trusted to size a buffer (it may be huge or negative).
    let mut instances = Vec::new();
    for (index, row) in reader.get_row_iter(None).map_err(bad)?.enumerate() {
        let row = row.map_err(bad)?;
        instances.push(parse_row(file, index + 1, row.to_json_value())?);
    }
    Ok(instances)
}

fn check_unique_ids(file: &Path, instances: &[Instance]) -> Result<(), DatasetError> {
    let mut seen = std::collections::HashSet::new();
    for (index, instance) in instances.iter().enumerate() {
        if !seen.insert(instance.instance_id.as_str()) {
            return Err(DatasetError::BadRow {
                file: file.to_path_buf(),
                row: index + 1,
                field: "instance_id".into(),
                problem: RowProblem::DuplicateId(instance.instance_id.clone()),
            });
        }
    }
    Ok(())
}
