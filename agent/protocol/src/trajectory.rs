//! Trajectories: one JSONL file per episode, a header, one record per turn, a footer.
//! The schema is documented in `docs/trajectory.md`; bump [`SCHEMA_VERSION`] on any
//! incompatible change.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::budgets::{Budgets, ExitStatus, OnBudget};
pub use crate::error::{BadRecord, TrajectoryError};
use crate::message::Message;
use crate::tool::ToolName;

/// Version of the record layout below.
pub const SCHEMA_VERSION: u32 = 1;
/// The harness version written into every header.
pub const HARNESS_VERSION: &str = env!("CARGO_PKG_VERSION");

/// First line: what ran, on what, under which limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub schema_version: u32,
    pub harness_version: String,
    pub instance_id: String,
    pub repo: String,
    pub base_commit: String,
    pub image: String,
    /// The policy's name (`model_name_or_path`).
    pub model: String,
    /// The policy's own settings (URL, sampling, ...).
    pub policy: serde_json::Value,
    pub budgets: Budgets,
    /// `on_budget` is `autosubmit` (kept for readers of older trajectories).
    pub autosubmit: bool,
    /// What a budget that ran out left as the patch (older trajectories: `fail`, or
    /// `autosubmit` when that flag is set).
    #[serde(default)]
    pub on_budget: OnBudget,
    /// The tools the model could call (trajectories from before the `test` tool had the
    /// four of CWM's set).
    #[serde(default = "cwm_tool_set")]
    pub tools: Vec<ToolName>,
    /// The system and user prompts the episode starts from.
    pub messages: Vec<Message>,
    /// RFC 3339.
    pub started_at: String,
}

fn cwm_tool_set() -> Vec<ToolName> {
    ToolName::CWM.to_vec()
}

/// One assistant turn and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// 1-based.
    pub turn: u64,
    pub started_at: String,
    pub finished_at: String,
    /// The assistant message exactly as it entered the conversation.
    pub raw: String,
    /// Text before `</think>` (without the tags); None when the reply had no reasoning block.
    pub thinking: Option<String>,
    /// Text after `</think>` (the whole reply when there was none).
    pub answer: String,
    /// The parsed call; None on a format error or a final reply.
    pub call: Option<crate::tool::ToolCall>,
    /// The message the model got back: a `tool: NAME` observation or a `FormatError:` user
    /// message. None when the turn ended the episode.
    pub observation: Option<Message>,
    /// The tool's exit code (bash: the command's; others: 0 or 1).
    pub exit_code: Option<i64>,
    /// The tool did what was asked.
    pub success: Option<bool>,
    pub format_error: Option<String>,
    /// The bash session was restarted during this turn.
    pub restarted: bool,
    /// The tool output was cut to fit the observation limit.
    pub truncated: bool,
    /// The patch, when this turn was a successful submit.
    pub submission: Option<String>,
    /// Prompt tokens of this model call (reported by the backend, else estimated).
    pub tokens_in: usize,
    /// Tokens generated in this turn.
    pub tokens_out: usize,
    /// Context used after this turn's observation.
    pub context_tokens: usize,
    pub finish_reason: Option<String>,
    pub model_latency_ms: u64,
    pub tool_latency_ms: u64,
}

/// Last line: how the episode ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Footer {
    pub status: ExitStatus,
    /// The final patch: the last successful submission, or with autosubmit the working-tree
    /// diff when a budget ran out.
    pub patch: Option<String>,
    /// What went wrong, for model_error and env_error.
    pub error: Option<String>,
    /// A `model_error` whose cause is the serving infrastructure (the server unreachable,
    /// failing or answering garbage), not the model: the run does not score the episode.
    /// Written only when true; absent in older trajectories.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub infrastructure: bool,
    pub turns: u64,
    pub format_errors: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub context_tokens: usize,
    pub model_time_ms: u64,
    pub tool_time_ms: u64,
    pub wall_time_ms: u64,
    pub finished_at: String,
}

/// One line of a trajectory file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    Header(Box<Header>),
    Turn(Box<Turn>),
    Footer(Box<Footer>),
}

/// Where the loop sends its records.
pub trait TrajectorySink: Send {
    fn write(&mut self, record: &Record) -> Result<(), TrajectoryError>;
}

/// Discards everything.
#[derive(Debug, Default)]
pub struct NullSink;

impl TrajectorySink for NullSink {
    fn write(&mut self, _record: &Record) -> Result<(), TrajectoryError> {
        Ok(())
    }
}

/// Keeps records in memory.
impl TrajectorySink for Vec<Record> {
    fn write(&mut self, record: &Record) -> Result<(), TrajectoryError> {
        self.push(record.clone());
        Ok(())
    }
}

/// Appends one JSON line per record and flushes it at once, so a crash loses at most the
/// turn in flight. The file is created by the first record (the header), not before: a crash
/// while the episode's container starts leaves no empty, header-less file behind.
pub struct JsonlTrajectoryWriter {
    path: PathBuf,
    file: Option<File>,
    fsync: bool,
}

impl JsonlTrajectoryWriter {
    /// A writer that will create (truncate) `path`, and its parent directories, with its
    /// first record. Creates the parent directories now, so that an unwritable place is an
    /// error before the episode starts.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, TrajectoryError> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| TrajectoryError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(Self {
            path,
            file: None,
            fsync: false,
        })
    }

    /// Also fsync after every record (survives power loss, costs a disk flush per turn).
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            self.file = Some(File::create(&self.path)?);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the trajectory file is not open"))
    }
}

impl TrajectorySink for JsonlTrajectoryWriter {
    fn write(&mut self, record: &Record) -> Result<(), TrajectoryError> {
        let path = self.path.clone();
        let io = |source| TrajectoryError::Io {
            path: path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(record).map_err(|e| io(e.into()))?;
        line.push(b'\n');
        let fsync = self.fsync;
        match self.file().and_then(|file| append_line(file, &line, fsync)) {
            Ok(()) => Ok(()),
            Err(err) => {
                // A trajectory that never got its header is no trajectory at all.
                if std::fs::metadata(&self.path).is_ok_and(|m| m.len() == 0) {
                    let _ = std::fs::remove_file(&self.path);
                    self.file = None;
                }
                Err(io(err))
            }
        }
    }
}

/// Appends `line` with one write (so concurrent readers do not see half a record), and
/// syncs when asked. A failed append (a full disk) cuts the file back to its length before,
/// so no torn line is left.
pub fn append_line(file: &mut File, line: &[u8], sync: bool) -> std::io::Result<()> {
    let before = file.metadata()?.len();
    let written = file
        .write_all(line)
        .and_then(|()| file.flush())
        .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
    if written.is_err() {
        let _ = file.set_len(before);
    }
    written
}

/// A trajectory read back from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    pub header: Header,
    pub turns: Vec<Turn>,
    /// None when the episode did not finish (a crash).
    pub footer: Option<Footer>,
}

/// Reads a trajectory file. A torn last line (a crash mid-write) is ignored; any other bad
/// line is an error naming the line.
pub fn read_trajectory(path: &Path) -> Result<Trajectory, TrajectoryError> {
    let file = File::open(path).map_err(|source| TrajectoryError::Io {
        path: path.into(),
        source,
    })?;
    let io = |source| TrajectoryError::Io {
        path: path.into(),
        source,
    };
    // Split on bytes: a torn last line may end inside a UTF-8 sequence.
    let lines: Vec<Vec<u8>> = BufReader::new(file)
        .split(b'\n')
        .collect::<Result<_, _>>()
        .map_err(io)?;
    let bad = |line: usize, problem: BadRecord| TrajectoryError::Malformed {
        path: path.into(),
        line,
        problem,
    };
    let mut header = None;
    let mut turns = Vec::new();
    let mut footer = None;
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        let line = match std::str::from_utf8(line) {
            Ok(line) => line.strip_suffix('\r').unwrap_or(line),
            Err(_) if last && header.is_some() => break,
            Err(e) => return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))),
        };
        if line.trim().is_empty() {
            continue;
        }
        let record = match serde_json::from_str::<Record>(line) {
            Ok(record) => record,
            Err(_) if last && header.is_some() => break,
            Err(e) => return Err(bad(i + 1, e.into())),
        };
        match record {
            Record::Header(h) if h.schema_version != SCHEMA_VERSION => {
                return Err(bad(
                    i + 1,
                    BadRecord::UnsupportedSchema {
                        found: h.schema_version,
                    },
                ))
            }
            Record::Header(h) => header = Some(*h),
            Record::Turn(t) => turns.push(*t),
            Record::Footer(f) => footer = Some(*f),
        }
    }
    let header = header.ok_or_else(|| bad(1, BadRecord::NoHeader))?;
    Ok(Trajectory {
        header,
        turns,
        footer,
    })
}

/// The current time, RFC 3339 with milliseconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
