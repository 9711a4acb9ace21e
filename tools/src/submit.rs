//! The `submit` tool: records a patch file as the submission once it is known to apply.
//!
//! The patch is cleaned first ([`clean_patch`]: a final newline added, file parts that cannot
//! be carried left out with a note), then checked with `git apply --cached --check` against
//! the base commit in a scratch index, so a patch that would fail to apply where it is graded
//! is refused while the model can still fix it. The model's working tree and index are never
//! touched.

use std::time::Duration;

use crate::exec::{submission_message, ToolOutcome};
use minijinja::context;

use crate::patch::{clean_patch, CleanPatch};
use crate::profile::Profile;
use crate::workspace::{
    resolve_in_session, shell_quote, EnvFailure, PathKind, Workspace, REPO_ROOT,
};

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
pub(crate) async fn submit(
    ws: &mut dyn Workspace,
    body: &str,
    profile: &Profile,
) -> Result<ToolOutcome, EnvFailure> {
    let path = resolve_in_session(ws, body.lines().next().unwrap_or("")).await?;
    let fail = |key: &str| ToolOutcome::done(false, profile.render(key, context! { path }));
    match ws.path_kind(&path).await? {
        PathKind::File => {}
        PathKind::Missing => return Ok(fail("submit.missing")),
        _ => return Ok(fail("submit.not_a_file")),
    }
    let bytes = ws.read_file(&path).await?;
    if bytes.trim_ascii().is_empty() {
        return Ok(fail("submit.empty"));
    }
    if !bytes.starts_with(b"diff") {
        return Ok(fail("submit.not_a_patch"));
    }
    let patch = clean_patch(&bytes);
    if patch.text.is_empty() {
        let note = patch.note(profile).unwrap_or_default();
        let message = profile.render("submit.nothing_left", context! { path, note });
        return Ok(ToolOutcome::done(false, message));
    }
    let checked = if patch.text.as_bytes() == bytes.as_slice() {
        path.clone()
    } else {
        ws.write_file(CHECK_PATCH, patch.text.as_bytes()).await?;
        CHECK_PATCH.to_string()
    };
    let check = check_applies(ws, &checked, profile).await?;
    if let ApplyCheck::Fails { errors, base } = &check {
        let message = does_not_apply(profile, &path, errors, base);
        return Ok(ToolOutcome::done(false, message));
    }
    Ok(accepted(profile, patch, &check))
}

/// The success outcome: the echo, then any notes.
fn accepted(profile: &Profile, patch: CleanPatch, check: &ApplyCheck) -> ToolOutcome {
    let unchecked =
        matches!(check, ApplyCheck::Unchecked).then(|| profile.text("submit.unchecked"));
    let notes: Vec<String> = [patch.note(profile), unchecked]
        .into_iter()
        .flatten()
        .collect();
    let mut outcome = ToolOutcome::done(true, submission_message(profile, &patch.text, &notes));
    outcome.submission = Some(patch.text);
    outcome
}

fn does_not_apply(profile: &Profile, path: &str, errors: &str, base: &str) -> String {
    // git names a file the patch creates that stands in the scratch index.
    let hint = if errors.contains("already exists in index") {
        profile.text("submit.hint_already_exists")
    } else {
        String::new()
    };
    profile.render(
        "submit.does_not_apply",
        context! { path, errors, base, hint },
    )
}

/// Checks `file` with `git apply --cached --check` against the base commit in a scratch
/// index. The files that were untracked at the start stand in that index as placeholders:
/// where the patch is graded they exist too, so a patch creating one fails there.
async fn check_applies(
    ws: &mut dyn Workspace,
    file: &str,
    profile: &Profile,
) -> Result<ApplyCheck, EnvFailure> {
    let out = ws.exec(&check_script(file), CHECK_TIMEOUT).await?;
    let (base, errors) = out.output.split_once('\n').unwrap_or((&out.output, ""));
    Ok(match out.exit_code {
        Some(0) => ApplyCheck::Applies,
        Some(UNCHECKED) | None => ApplyCheck::Unchecked,
        Some(_) if out.timed_out => ApplyCheck::Unchecked,
        Some(_) => ApplyCheck::Fails {
            errors: first_lines(
                errors.trim(),
                ERROR_LINES,
                &profile.text("observation.cut_marker"),
            ),
            base: base.trim().to_string(),
        },
    })
}

/// Prints the base commit, then `git apply`'s complaint. The model's global git config is
/// ignored (the grader has none), and so is its repo's `apply.whitespace`.
fn check_script(file: &str) -> String {
    format!(
        r#"export GIT_CONFIG_GLOBAL=/dev/null
git() {{ command git -c safe.directory={REPO_ROOT} -c apply.whitespace=nowarn "$@"; }}
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

fn first_lines(text: &str, n: usize, cut_marker: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= n {
        return text.to_string();
    }
    format!("{}\n{cut_marker}", lines[..n].join("\n"))
}
