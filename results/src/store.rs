//! Crash-safe append-only JSONL: one record per `write` call, fsynced, and torn tails repaired
//! on open, so a run killed at any moment can be resumed without losing or duplicating lines.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ResultsError;

/// An append-only JSONL file of records of type `T`.
pub struct JsonlStore {
    path: PathBuf,
    file: File,
}

impl JsonlStore {
    /// Opens (creating if needed) and repairs the file: a last line cut short by a crash, or
    /// one that is not valid JSON, is dropped.
    pub fn open(path: &Path) -> Result<Self, ResultsError> {
        let io = |source| ResultsError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let valid_len = valid_prefix_len(&mut file).map_err(io)?;
        if valid_len < file.metadata().map_err(io)?.len() {
            file.set_len(valid_len).map_err(io)?;
            tracing::warn!(path = %path.display(), "dropped a torn last line left by a crash");
        }
        Ok(JsonlStore {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one record as a single `write` and syncs it to disk.
    pub fn append<T: Serialize>(&mut self, record: &T) -> Result<(), ResultsError> {
        let mut line = serde_json::to_vec(record).map_err(|source| ResultsError::Encode {
            path: self.path.clone(),
            source,
        })?;
        line.push(b'\n');
        let io = |source| ResultsError::Io {
            path: self.path.clone(),
            source,
        };
        cwm_protocol::append_line(&mut self.file, &line, true).map_err(io)
    }

    /// Every record in the file, in order.
    pub fn read_all<T: DeserializeOwned>(&self) -> Result<Vec<T>, ResultsError> {
        read_jsonl(&self.path)
    }
}

/// Reads a JSONL file, naming the line of the first bad record.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, ResultsError> {
    let file = File::open(path).map_err(|source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut records = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| ResultsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|source| ResultsError::BadLine {
            path: path.to_path_buf(),
            line: index + 1,
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}

/// Byte length of the leading run of complete, valid JSON lines.
fn valid_prefix_len(file: &mut File) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&*file);
    let mut valid = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 || line.last() != Some(&b'\n') {
            break;
        }
        let body = &line[..line.len() - 1];
        let blank = body.iter().all(u8::is_ascii_whitespace);
        if !blank && serde_json::from_slice::<serde_json::Value>(body).is_err() {
            break;
        }
        valid += read as u64;
    }
    Ok(valid)
}

/// Writes `bytes` to `path` through a temporary file and a rename (the grader's helper), so
/// readers never see a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    cwm_eval::write_atomic(path, bytes).map_err(|e| match e {
        cwm_eval::EvalError::Write { path, source } => ResultsError::Io { path, source },
        other => ResultsError::Eval {
            path: path.to_path_buf(),
            source: Box::new(other),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_tail_is_dropped_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("preds.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n{\"a\":").unwrap();
        let mut store = JsonlStore::open(&path).unwrap();
        store.append(&serde_json::json!({"a": 3})).unwrap();
        let records: Vec<serde_json::Value> = store.read_all().unwrap();
        assert_eq!(
            records,
            vec![
                serde_json::json!({"a": 1}),
                serde_json::json!({"a": 2}),
                serde_json::json!({"a": 3}),
            ]
        );
    }

    #[test]
    fn complete_but_invalid_last_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"a\"\n").unwrap();
        JsonlStore::open(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/report.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }
}
