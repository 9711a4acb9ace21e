//! The `submit` tool: records a patch file as the submission once it is known to apply.
//!
//! The patch is cleaned first ([`clean_patch`]: a final newline added, file parts that cannot
//! be carried left out with a note), then checked with `git apply --cached --check` against
//! the base commit in a scratch index, so a patch that would fail to apply where it is graded
//! is refused while the model can still fix it. The model's working tree and index are never
//! touched.

use std::time::Duration;

use crate::exec::{submission_message, ToolOutcome};
use crate::patch::{clean_patch, CleanPatch};
use crate::workspace::{resolve_in_session, shell_quote, EnvFailure, PathKind, Workspace};

/// Where a cleaned patch is written for the check when it differs from the model's file.
const CHECK_PATCH: &str = "/tmp/.cwm-bench-submit.diff";
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);
/// The check script's status when it could not build the scratch index.
const UNCHECKED: i64 = 90;
/// At most this many lines of git's complaint are shown.
const ERROR_LINES: usize = 20;

/// What the apply check found.
enum ApplyCheck {
    Applies,
    /// git's complaint, and the base commit it was checked against.
    Fails {
        errors: String,
        base: String,
    },
    /// The scratch index could not be built (e.g. the model removed `.git`).
    Unchecked,
}

/// Runs `submit` with `body` (the patch path). Every mistake of the model is an
/// unsuccessful outcome saying what to fix.
pub(crate) async fn submit(ws: &mut dyn Workspace, body: &str) -> Result<ToolOutcome, EnvFailure> {
    let path = resolve_in_session(ws, body.lines().next().unwrap_or("")).await?;
    let fail = |why: &str| ToolOutcome::done(false, format!("Submission failed: {path} {why}"));
    match ws.path_kind(&path).await? {
        PathKind::File => {}
        PathKind::Missing => {
            return Ok(fail(
                "does not exist. Write the patch there first, e.g. `git diff > /tmp/patch.diff`.",
            ))
        }
        _ => return Ok(fail("is not a regular file.")),
    }
    let bytes = ws.read_file(&path).await?;
    if bytes.trim_ascii().is_empty() {
        return Ok(fail(
            "is empty. A submission must contain your changes as a git diff.",
        ));
    }
    if !bytes.starts_with(b"diff") {
        return Ok(fail(
            "is not a patch: it must start with `diff` (the output of `git diff`).",
        ));
    }
    let patch = clean_patch(&bytes);
    if patch.text.is_empty() {
        return Ok(fail(&nothing_left(&patch)));
    }
    let checked = if patch.text.as_bytes() == bytes.as_slice() {
        path.clone()
    } else {
        ws.write_file(CHECK_PATCH, patch.text.as_bytes()).await?;
        CHECK_PATCH.to_string()
    };
    let check = check_applies(ws, &checked).await?;
    if let ApplyCheck::Fails { errors, base } = &check {
        return Ok(fail(&does_not_apply(errors, base)));
    }
    Ok(accepted(patch, &check))
}

/// The success outcome: the echo, then any notes.
fn accepted(patch: CleanPatch, check: &ApplyCheck) -> ToolOutcome {
    let mut message = submission_message(&patch.text);
    let unchecked = matches!(check, ApplyCheck::Unchecked).then(|| {
        "Note: the patch could not be checked against the base commit, because the git repository in /testbed is not usable.".to_string()
    });
    for note in [patch.note(), unchecked].into_iter().flatten() {
        message.push_str("\n\n");
        message.push_str(&note);
    }
    let mut outcome = ToolOutcome::done(true, message);
    outcome.submission = Some(patch.text);
    outcome
}

fn nothing_left(patch: &CleanPatch) -> String {
    format!(
        "holds no change that can be submitted. {}",
        patch.note().unwrap_or_default()
    )
}

fn does_not_apply(errors: &str, base: &str) -> String {
    let mut why = format!(
        "does not apply to the base commit {base}, so it could not be graded. `git apply --check` says:\n\n{errors}\n\nWrite the patch against the base commit (`git diff {base}` in /testbed shows all your changes to tracked files, including any you committed) and submit again."
    );
    if errors.contains("already exists in index") {
        why.push_str(" A patch must not create a file that was already there when the task started, tracked or untracked (such as a build artefact): the grading environment holds it too. Leave such files out of the patch.");
    }
    why
}

/// Checks `file` with `git apply --cached --check` against the base commit in a scratch
/// index. The files that were untracked at the start stand in that index as placeholders:
/// where the patch is graded they exist too, so a patch creating one fails there.
async fn check_applies(ws: &mut dyn Workspace, file: &str) -> Result<ApplyCheck, EnvFailure> {
    let out = ws.exec(&check_script(file), CHECK_TIMEOUT).await?;
    let (base, errors) = out.output.split_once('\n').unwrap_or((&out.output, ""));
    Ok(match out.exit_code {
        Some(0) => ApplyCheck::Applies,
        Some(UNCHECKED) | None => ApplyCheck::Unchecked,
        Some(_) if out.timed_out => ApplyCheck::Unchecked,
        Some(_) => ApplyCheck::Fails {
            errors: first_lines(errors.trim(), ERROR_LINES),
            base: base.trim().to_string(),
        },
    })
}

/// Prints the base commit, then `git apply`'s complaint. The model's global git config is
/// ignored (the grader has none), and so is its repo's `apply.whitespace`.
fn check_script(file: &str) -> String {
    format!(
        r#"export GIT_CONFIG_GLOBAL=/dev/null
git() {{ command git -c safe.directory=/testbed -c apply.whitespace=nowarn "$@"; }}
index=$(mktemp) || exit {UNCHECKED}
trap 'rm -f "$index"' EXIT
export GIT_INDEX_FILE="$index"
base=$(cat {base_file} 2>/dev/null)
base=$(git rev-parse --verify -q "${{base:-HEAD}}^{{commit}}") || exit {UNCHECKED}
git read-tree "$base" || exit {UNCHECKED}
if [ -s {untracked} ]; then
    sed -z 's/^/100644 e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\t/' {untracked} \
        | git update-index -z --index-info || exit {UNCHECKED}
fi
echo "$base"
git apply --cached --check {file} 2>&1"#,
        base_file = cwm_env::START_BASE_FILE,
        untracked = cwm_env::UNTRACKED_AT_START_FILE,
        file = shell_quote(file),
    )
}

fn first_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= n {
        return text.to_string();
    }
    format!("{}\n[...]", lines[..n].join("\n"))
}
