//! The `oracle` policy: replays a task's gold patch through real `edit` and `create` calls,
//! writes the diff with bash and submits it. It exercises the whole loop end to end.

use std::time::Duration;

use async_trait::async_trait;
use cwm_datasets::Instance;
use cwm_tools::{ToolCall, ToolName};

use super::{ModelReply, Policy, PolicyError};
use crate::error::OracleError;
use cwm_protocol::message::{assistant_turns, Message};

/// Where the oracle writes its patch.
const PATCH_PATH: &str = "/tmp/patch.diff";

/// Solves a task from its gold patch.
#[derive(Debug, Default)]
pub struct OraclePolicy {
    turns: Vec<String>,
}

impl OraclePolicy {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Policy for OraclePolicy {
    async fn respond(
        &mut self,
        messages: &[Message],
        _max_tokens: usize,
    ) -> Result<ModelReply, PolicyError> {
        let turn = assistant_turns(messages);
        let text = self
            .turns
            .get(turn)
            .cloned()
            .ok_or(PolicyError::ReplayExhausted {
                turn: turn + 1,
                available: self.turns.len(),
            })?;
        Ok(ModelReply {
            text,
            latency: Duration::ZERO,
            ..ModelReply::default()
        })
    }

    fn name(&self) -> String {
        "oracle".into()
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({"kind": "oracle"})
    }

    async fn start_episode(&mut self, instance: &Instance) -> Result<(), PolicyError> {
        let calls = oracle_calls(&instance.patch).map_err(|source| PolicyError::Oracle {
            instance_id: instance.instance_id.clone(),
            source,
        })?;
        let mut turns: Vec<String> = calls
            .iter()
            .map(|(why, call)| format!("<think>\n{why}\n</think>\n{}", call.render()))
            .collect();
        turns.push("<think>\nThe gold patch is submitted.\n</think>\nI applied the reference fix and submitted it.".into());
        self.turns = turns;
        Ok(())
    }
}

/// The calls that reproduce `patch` (a unified diff), each with a one-line reason: edits and
/// creates, then writing the diff and submitting it.
///
/// Errors: an [`OracleError`] when the diff cannot be read, or holds something the tools
/// cannot reproduce (a rename, a hunk without old lines to anchor an edit).
pub fn oracle_calls(patch: &str) -> Result<Vec<(String, ToolCall)>, OracleError> {
    let mut calls = Vec::new();
    let mut created = Vec::new();
    for file in parse_unified_diff(patch)? {
        if let (None, Some(path)) = (&file.old_path, &file.new_path) {
            created.push(path.clone());
        }
        calls.extend(file_calls(&file)?);
    }
    if calls.is_empty() {
        return Err(OracleError::NoChanges);
    }
    calls.push((
        "Write the changes as a patch.".into(),
        ToolCall::new(ToolName::Bash, diff_command(&created)),
    ));
    calls.push((
        "Submit the patch.".into(),
        ToolCall::new(ToolName::Submit, PATCH_PATH),
    ));
    Ok(calls)
}

/// Writes the patch. Only the files the oracle created are added (intent to add): `git add
/// -N .` would also sweep in what the image already held untracked (build artefacts), and
/// the patch would then fail to apply where it is graded.
fn diff_command(created: &[String]) -> String {
    let add = if created.is_empty() {
        String::new()
    } else {
        let paths: Vec<String> = created.iter().map(|p| cwm_tools::shell_quote(p)).collect();
        format!("git add -N -- {} && ", paths.join(" "))
    };
    format!("{add}git diff > {PATCH_PATH} && git diff --stat")
}

fn file_calls(file: &FileDiff) -> Result<Vec<(String, ToolCall)>, OracleError> {
    match (&file.old_path, &file.new_path) {
        (None, Some(path)) => {
            let content = file
                .hunks
                .iter()
                .flat_map(|h| h.new.iter())
                .cloned()
                .collect::<Vec<_>>();
            let mut text = content.join("\n");
            if !content.is_empty() && !file.new_no_newline {
                text.push('\n');
            }
            Ok(vec![(
                format!("Create {path}."),
                ToolCall::new(ToolName::Create, format!("{path}\n{text}")),
            )])
        }
        (Some(path), None) => Ok(vec![(
            format!("Delete {path}."),
            ToolCall::new(
                ToolName::Bash,
                format!("rm -- {}", cwm_tools::shell_quote(path)),
            ),
        )]),
        (Some(old), Some(new)) if old != new => Err(OracleError::Rename {
            old: old.clone(),
            new: new.clone(),
        }),
        (Some(path), Some(_)) => file
            .hunks
            .iter()
            .enumerate()
            .map(|(i, h)| edit_call(path, i, h))
            .collect(),
        (None, None) => Err(OracleError::NoPaths),
    }
}

fn edit_call(path: &str, index: usize, hunk: &Hunk) -> Result<(String, ToolCall), OracleError> {
    if hunk.old.is_empty() {
        return Err(OracleError::NoAnchor {
            path: path.to_string(),
            hunk: index + 1,
        });
    }
    let body = format!(
        "{path}\n<<<<<<< SEARCH\n{}\n=======\n{}\n>>>>>>> REPLACE",
        hunk.old.join("\n"),
        hunk.new.join("\n")
    );
    Ok((
        format!("Apply hunk {} to {path}.", index + 1),
        ToolCall::new(ToolName::Edit, body),
    ))
}

/// One file's part of a unified diff.
#[derive(Debug, Default)]
struct FileDiff {
    /// None for `/dev/null` (a new file).
    old_path: Option<String>,
    /// None for `/dev/null` (a deleted file).
    new_path: Option<String>,
    hunks: Vec<Hunk>,
    new_no_newline: bool,
}

/// Old side (context and removed lines) and new side (context and added lines) of a hunk.
#[derive(Debug, Default)]
struct Hunk {
    old: Vec<String>,
    new: Vec<String>,
}

fn parse_unified_diff(patch: &str) -> Result<Vec<FileDiff>, OracleError> {
    let mut files = Vec::new();
    let mut lines = patch.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("diff --git ") {
            files.push(FileDiff::default());
        } else if let Some(p) = line.strip_prefix("--- ") {
            current(&mut files).old_path = diff_path(p);
        } else if let Some(p) = line.strip_prefix("+++ ") {
            current(&mut files).new_path = diff_path(p);
        } else if line.starts_with("@@ ") {
            let (old_len, new_len) = hunk_lengths(line)?;
            let file = current(&mut files);
            let hunk = read_hunk(&mut lines, old_len, new_len, &mut file.new_no_newline)?;
            file.hunks.push(hunk);
        }
    }
    Ok(files)
}

/// The file diff being read; a diff without a `diff --git` line starts one at its first
/// header.
fn current(files: &mut Vec<FileDiff>) -> &mut FileDiff {
    if files.is_empty() {
        files.push(FileDiff::default());
    }
    let last = files.len() - 1;
    &mut files[last]
}

fn diff_path(text: &str) -> Option<String> {
    let path = text.split('\t').next().unwrap_or(text).trim();
    if path == "/dev/null" {
        return None;
    }
    Some(
        path.strip_prefix("a/")
            .or_else(|| path.strip_prefix("b/"))
            .unwrap_or(path)
            .to_string(),
    )
}

/// `@@ -a,b +c,d @@` -> (b, d); a missing count means 1.
fn hunk_lengths(header: &str) -> Result<(usize, usize), OracleError> {
    let bad = || OracleError::BadHunkHeader {
        header: header.to_string(),
    };
    let mut parts = header.split_whitespace().skip(1);
    let mut len = |prefix: char| -> Result<usize, OracleError> {
        let range = parts
            .next()
            .and_then(|p| p.strip_prefix(prefix))
            .ok_or_else(bad)?;
        match range.split_once(',') {
            Some((_, n)) => n.parse().map_err(|_| bad()),
            None => Ok(1),
        }
    };
    Ok((len('-')?, len('+')?))
}

fn read_hunk<'a>(
    lines: &mut std::iter::Peekable<impl Iterator<Item = &'a str>>,
    mut old_left: usize,
    mut new_left: usize,
    new_no_newline: &mut bool,
) -> Result<Hunk, OracleError> {
    let mut hunk = Hunk::default();
    while old_left > 0 || new_left > 0 || lines.peek().is_some_and(|l| l.starts_with('\\')) {
        let line = lines.next().ok_or(OracleError::EndsInsideHunk)?;
        // An empty line is a context line whose trailing space was stripped.
        let tag = line.chars().next().unwrap_or(' ');
        let text = line.get(tag.len_utf8()..).unwrap_or("");
        match tag {
            '\\' => *new_no_newline = new_left == 0,
            ' ' => {
                hunk.old.push(text.to_string());
                hunk.new.push(text.to_string());
                old_left = old_left.saturating_sub(1);
                new_left = new_left.saturating_sub(1);
            }
            '-' => {
                hunk.old.push(text.to_string());
                old_left = old_left.saturating_sub(1);
            }
            '+' => {
                hunk.new.push(text.to_string());
                new_left = new_left.saturating_sub(1);
            }
            _ => {
                return Err(OracleError::UnexpectedLine {
                    line: line.to_string(),
                })
            }
        }
    }
    Ok(hunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "diff --git a/p.py b/p.py\nindex 1..2 100644\n--- a/p.py\n+++ b/p.py\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\ndiff --git a/n.py b/n.py\nnew file mode 100644\n--- /dev/null\n+++ b/n.py\n@@ -0,0 +1,2 @@\n+x\n+y\n";

    #[test]
    fn turns_a_patch_into_edit_create_bash_submit() {
        let calls = oracle_calls(PATCH).unwrap();
        let tools: Vec<ToolName> = calls.iter().map(|(_, c)| c.tool).collect();
        assert_eq!(
            tools,
            [
                ToolName::Edit,
                ToolName::Create,
                ToolName::Bash,
                ToolName::Submit
            ]
        );
        assert_eq!(
            calls[0].1.body,
            "p.py\n<<<<<<< SEARCH\na\nb\nc\n=======\na\nB\nc\n>>>>>>> REPLACE"
        );
        assert_eq!(calls[1].1.body, "n.py\nx\ny\n");
        assert_eq!(
            calls[2].1.body,
            "git add -N -- 'n.py' && git diff > /tmp/patch.diff && git diff --stat"
        );
    }

    #[test]
    fn hunk_content_may_look_like_headers() {
        let patch = "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n--- old\n+++ new\n x\n";
        let files = parse_unified_diff(patch).unwrap();
        assert_eq!(files[0].hunks[0].old, ["-- old", "x"]);
        assert_eq!(files[0].hunks[0].new, ["++ new", "x"]);
    }
}
