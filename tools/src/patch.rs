//! Patches as they are recorded (submissions and the patches the harness builds).
//!
//! A patch travels as UTF-8 text: in the trajectory, the predictions and the observation. Each
//! file's part of a git diff is therefore kept whole or left out, never decoded lossily. A part
//! that is not valid UTF-8 (a text file in another encoding, or binary content diffed with
//! `--text`) cannot be carried; a binary file that `git diff` shows only as `Binary files ...
//! differ` cannot be applied. `git diff --binary` writes binary files as base85 text, which
//! travels whole and applies.

use minijinja::context;

use crate::profile::Profile;

/// A patch cut to what can be recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanPatch {
    /// The kept file parts, ending with a newline; empty when nothing could be kept.
    pub text: String,
    /// The file parts left out, in patch order.
    pub left_out: Vec<LeftOut>,
}

/// One file's part of a patch that was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The file, as the part's `diff` header names it.
    pub file: String,
    pub reason: LeftOutReason,
}

/// Why a file's part was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOutReason {
    /// Shown only as `Binary files ... differ`: there is nothing to apply.
    BinaryWithoutData,
    /// Not valid UTF-8, so it cannot be carried as text.
    NotUtf8,
}

impl LeftOutReason {
    /// Its text in the profile.
    fn key(self) -> &'static str {
        match self {
            Self::BinaryWithoutData => "submit.reason_binary",
            Self::NotUtf8 => "submit.reason_not_utf8",
        }
    }
}

impl CleanPatch {
    /// What was left out and how to include it (the profile's `submit.left_out`), or None
    /// when nothing was.
    pub fn note(&self, profile: &Profile) -> Option<String> {
        if self.left_out.is_empty() {
            return None;
        }
        let lines: Vec<String> = self
            .left_out
            .iter()
            .map(|l| {
                let reason = profile.text(l.reason.key());
                profile.render("submit.left_out_file", context! { file => &l.file, reason })
            })
            .collect();
        let files = lines.join("\n");
        Some(profile.render("submit.left_out", context! { files }))
    }
}

/// Keeps the file parts of `patch` that can be carried as text and applied, and ends the
/// result with a newline (`git apply` rejects a last line without one).
pub fn clean_patch(patch: &[u8]) -> CleanPatch {
    let mut clean = CleanPatch::default();
    for part in file_parts(patch) {
        match classify(part) {
            Ok(text) => clean.text.push_str(text),
            Err(reason) => clean.left_out.push(LeftOut {
                file: part_name(part),
                reason,
            }),
        }
    }
    if !clean.text.is_empty() && !clean.text.ends_with('\n') {
        clean.text.push('\n');
    }
    clean
}

/// The part as text, or why it cannot be kept.
fn classify(part: &[u8]) -> Result<&str, LeftOutReason> {
    let text = std::str::from_utf8(part).map_err(|_| LeftOutReason::NotUtf8)?;
    // Hunk lines start with ' ', '+', '-' or '\', and base85 lines never hold a space, so
    // these can only be git's own lines.
    let placeholder = text.lines().any(|l| l.starts_with("Binary files "));
    if placeholder && !text.lines().any(|l| l == "GIT binary patch") {
        return Err(LeftOutReason::BinaryWithoutData);
    }
    Ok(text)
}

/// Splits a patch before each line that starts with `diff ` (the first part may be text
/// before any such line).
fn file_parts(patch: &[u8]) -> Vec<&[u8]> {
    let mut starts: Vec<usize> = (1..patch.len())
        .filter(|&i| patch[i - 1] == b'\n' && patch[i..].starts_with(b"diff "))
        .collect();
    starts.insert(0, 0);
    starts.push(patch.len());
    starts
        .windows(2)
        .map(|w| &patch[w[0]..w[1]])
        .filter(|part| !part.is_empty())
        .collect()
}

/// The file a part is about: `P` for `diff --git a/P b/P`, else the header after `diff `.
fn part_name(part: &[u8]) -> String {
    let end = part.iter().position(|&b| b == b'\n').unwrap_or(part.len());
    let header = String::from_utf8_lossy(&part[..end]);
    let names = header
        .strip_prefix("diff --git ")
        .or_else(|| header.strip_prefix("diff "))
        .unwrap_or(&header);
    same_path(names).unwrap_or(names).to_string()
}

/// `a/P b/P` -> `P`.
fn same_path(names: &str) -> Option<&str> {
    let half = names.len().checked_sub(1)? / 2;
    let (old, new) = (names.get(..half)?, names.get(half + 1..)?);
    let path = old.strip_prefix("a/")?;
    (names.as_bytes()[half] == b' ' && new.strip_prefix("b/")? == path).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "diff --git a/p.py b/p.py\n--- a/p.py\n+++ b/p.py\n@@ -1 +1 @@\n-a\n+b\n";
    const PLACEHOLDER: &str =
        "diff --git a/d.bin b/d.bin\nindex 1..2 100644\nBinary files a/d.bin and b/d.bin differ\n";
    const BASE85: &str = "diff --git a/d.bin b/d.bin\nindex 1111111111111111111111111111111111111111..2222222222222222222222222222222222222222 100644\nGIT binary patch\nliteral 4\nLcmZQzWMT#Y01f~L\n\nliteral 0\nHcmV?d00001\n\n";

    #[test]
    fn a_missing_final_newline_is_added() {
        let clean = clean_patch(TEXT.trim_end().as_bytes());
        assert_eq!(clean.text, TEXT);
        assert_eq!(clean_patch(TEXT.as_bytes()).text, TEXT);
        assert!(clean.note(&Profile::builtin()).is_none());
    }

    #[test]
    fn binary_placeholders_are_left_out_and_base85_is_kept() {
        let clean = clean_patch(format!("{PLACEHOLDER}{TEXT}").as_bytes());
        assert_eq!(clean.text, TEXT);
        assert_eq!(
            clean.left_out,
            [LeftOut {
                file: "d.bin".into(),
                reason: LeftOutReason::BinaryWithoutData
            }]
        );
        assert!(clean
            .note(&Profile::builtin())
            .unwrap()
            .contains("- d.bin: a binary file"));
        let both = format!("{TEXT}{BASE85}");
        assert_eq!(clean_patch(both.as_bytes()).text, both);
    }

    #[test]
    fn parts_that_are_not_utf8_are_left_out_whole() {
        let mut patch = TEXT.as_bytes().to_vec();
        patch.extend_from_slice(
            b"diff --git a/l.txt b/l.txt\n--- /dev/null\n+++ b/l.txt\n@@ -0,0 +1 @@\n+caf\xe9\n",
        );
        patch.extend_from_slice(PLACEHOLDER.as_bytes());
        let clean = clean_patch(&patch);
        assert_eq!(clean.text, TEXT);
        let left_out: Vec<_> = clean
            .left_out
            .iter()
            .map(|l| (l.file.as_str(), l.reason))
            .collect();
        assert_eq!(
            left_out,
            [
                ("l.txt", LeftOutReason::NotUtf8),
                ("d.bin", LeftOutReason::BinaryWithoutData)
            ]
        );
    }

    #[test]
    fn lines_inside_hunks_do_not_split_parts() {
        let patch = "diff --git a/x b/x\n@@ -1 +1 @@\n-diff a\n+diff b\n diff c\n";
        assert_eq!(file_parts(patch.as_bytes()).len(), 1);
        assert_eq!(part_name(b"diff --git a/a b/c b/a b/c\n"), "a b/c");
        assert_eq!(part_name(b"diff -u old new\n"), "-u old new");
    }
}
