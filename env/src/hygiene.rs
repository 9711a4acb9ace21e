//! Repo hygiene before an episode: the model must not be able to see the fix.

use std::sync::LazyLock;
use std::time::Duration;

use crate::{Container, EnvError, REPO_ROOT};

/// How long the repo hygiene may take, whether run by [`prepare_repo`] or waited for by
/// [`hygiene_wait_script`]: a repack of a large repository takes seconds, never minutes.
pub const HYGIENE_TIMEOUT: Duration = Duration::from_secs(300);

/// Leaves only the history reachable from the checked-out commit: no remotes, no other
/// branches, no tags or other refs (stash and notes included), no reflog; unreachable
/// objects are dropped from the packs and pruned. Packs marked `.keep` (which `repack -a -d`
/// would leave whole) lose the mark first, and files that still name dropped commits go:
/// the commit graph and multi-pack index, dumb-HTTP `info/refs` and `objects/info/packs`,
/// an earlier `fsck --lost-found`'s output and rerere's recorded resolutions. Each git process costs ~10 ms, so refs go
/// in one transaction, reflogs are deleted as files, and `gc` (which also writes commit
/// graphs and packs refs) is avoided.
/// Trust comes from the command line, not ~/.gitconfig: the bash session may be starting
/// at the same time and writes that file.
static HYGIENE_SCRIPT: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"set -eu
cd {REPO_ROOT}
git() {{ command git -c safe.directory={REPO_ROOT} "$@"; }}
for remote in $(git remote); do
    git remote remove "$remote"
done
keep=$(git symbolic-ref -q HEAD || true)
git for-each-ref --format='delete %(refname)' | grep -vxF "delete $keep" \
    | git update-ref --no-deref --stdin
# All reflogs at once (what `reflog expire --expire=now --all` leaves is worth nothing).
rm -rf .git/logs .git/FETCH_HEAD .git/ORIG_HEAD .git/MERGE_HEAD .git/CHERRY_PICK_HEAD \
    .git/REVERT_HEAD
if [ -d .git/worktrees ]; then
    git worktree prune
fi
rm -rf .git/lost-found .git/rr-cache .git/info/refs .git/objects/info/packs \
    .git/objects/info/commit-graph .git/objects/info/commit-graphs \
    .git/objects/pack/multi-pack-index .git/objects/pack/*.keep
git repack -a -d -q
git prune --expire=now
# The repo as the episode finds it (see START_BASE_FILE and UNTRACKED_AT_START_FILE).
git rev-parse HEAD >{START_BASE_FILE}
git ls-files -z --others --exclude-standard >{UNTRACKED_AT_START_FILE}
"#
    )
});

/// The commit checked out when the episode started (the base commit), recorded by the
/// hygiene: `submit` checks patches against it even after the model commits.
pub const START_BASE_FILE: &str = "/tmp/.cwm-bench-base";
/// The untracked, not ignored files the repo held when the episode started (NUL-separated
/// paths), recorded by the hygiene. Images often hold build artefacts (a `build/lib` copy of
/// the package); they exist where the patch is graded too, so harness-built patches leave
/// them out and `submit` refuses patches that create them.
pub const UNTRACKED_AT_START_FILE: &str = "/tmp/.cwm-bench-untracked";

/// Where the start-up hygiene leaves its exit status (written last, by rename) and output.
const STATUS_FILE: &str = "/tmp/.cwm-bench-hygiene.status";
const LOG_FILE: &str = "/tmp/.cwm-bench-hygiene.log";

/// What the container runs first with [`crate::ContainerConfig::repo_hygiene`]: clean the
/// repo and record how it went (the status file last, by rename).
pub(crate) fn startup_command() -> String {
    format!(
        "( {} ) >{LOG_FILE} 2>&1; echo $? >{STATUS_FILE}.part && mv {STATUS_FILE}.part {STATUS_FILE}",
        *HYGIENE_SCRIPT
    )
}

/// A command for the container's bash session that waits for the start-up hygiene (up to
/// [`HYGIENE_TIMEOUT`]), prints the end of its output, and exits with its status. It runs in
/// a subshell, so the session itself is untouched; the status files are removed.
pub fn hygiene_wait_script() -> String {
    // One poll every 10 ms.
    let polls = HYGIENE_TIMEOUT.as_millis() / 10;
    format!(
        r#"(
    waited=0
    until [ -e {STATUS_FILE} ]; do
        waited=$((waited + 1))
        if [ "$waited" -gt {polls} ]; then echo "the repo hygiene did not finish"; exit 124; fi
        sleep 0.01
    done
    status=$(cat {STATUS_FILE})
    tail -n 5 {LOG_FILE}
    rm -f {STATUS_FILE} {LOG_FILE}
    exit "$status"
)"#
    )
}

/// Turns the result of [`hygiene_wait_script`] into the same error [`prepare_repo`] gives.
pub fn check_hygiene(
    exit_code: Option<i64>,
    timed_out: bool,
    output: &str,
) -> Result<(), EnvError> {
    if !timed_out && exit_code == Some(0) {
        return Ok(());
    }
    Err(EnvError::CommandFailed {
        what: format!("cleaning the git history in {REPO_ROOT}"),
        detail: format!(
            "exit code {:?}{}: {}",
            exit_code,
            if timed_out { " (timed out)" } else { "" },
            last_lines(output, 5)
        ),
    })
}

/// Cleans the repository at [`REPO_ROOT`] (`HYGIENE_SCRIPT` says what is removed), within
/// [`HYGIENE_TIMEOUT`]. Afterwards `git log --all` shows nothing newer than the base commit.
/// Safe to run while a [`crate::Shell`] opens.
pub async fn prepare_repo(container: &Container) -> Result<(), EnvError> {
    let result = container.exec(&HYGIENE_SCRIPT, HYGIENE_TIMEOUT).await?;
    check_hygiene(result.exit_code, result.timed_out, &result.output)
}

/// The last `n` lines of `text`, joined with ` | `, for one-line error messages.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hygiene_records_the_start_state_where_the_constants_say() {
        assert!(HYGIENE_SCRIPT.contains(&format!("HEAD >{START_BASE_FILE}\n")));
        assert!(
            HYGIENE_SCRIPT.contains(&format!("--exclude-standard >{UNTRACKED_AT_START_FILE}\n"))
        );
    }
}
