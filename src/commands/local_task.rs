//! `repro --repo DIR --issue FILE`: a task made from a local git repository and an issue text
//! instead of a dataset row. The repository is baked into an image on top of the base image, so
//! the agent and the grader each get a fresh copy at the same commit.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cwm_datasets::Instance;
use cwm_env::Docker;

#[derive(clap::Args, Debug, Default)]
pub struct LocalTask {
    /// A local git repository to work on instead of a dataset instance (its HEAD is the base).
    #[arg(long, requires = "issue")]
    pub repo: Option<PathBuf>,
    /// The issue text the agent is to resolve (with --repo).
    #[arg(long, requires = "repo")]
    pub issue: Option<PathBuf>,
    /// Image to build on (with --repo; default: the cwm-bench base image).
    #[arg(long, requires = "repo")]
    pub image: Option<String>,
    /// Test command whose results grade the patch (with --repo), e.g. `pytest -rA tests`.
    #[arg(long, requires = "repo", default_value = "pytest -rA")]
    pub test_cmd: String,
}

/// The instance for a local repository. Its image is built by [`build_image`].
pub fn local_instance(task: &LocalTask) -> anyhow::Result<Instance> {
    let (repo, issue) = match (&task.repo, &task.issue) {
        (Some(repo), Some(issue)) => (repo, issue),
        _ => anyhow::bail!("--repo and --issue go together"),
    };
    let problem = std::fs::read_to_string(issue)
        .with_context(|| format!("reading the issue text {}", issue.display()))?;
    let base_commit = git_head(repo)?;
    let name = repo_name(repo);
    let row = serde_json::json!({
        "instance_id": format!("local__{name}-1"),
        "repo": format!("local/{name}"),
        "base_commit": base_commit,
        "problem_statement": problem,
        "image": format!("cwm-bench/local.{name}:{}", &base_commit[..12]),
        "log_parser": "parse_log_pytest",
        "eval_script": eval_script(&task.test_cmd),
    });
    Ok(serde_json::from_value(row)?)
}

/// Bakes the repository (with its history) into the instance's image at `/testbed`.
pub async fn build_image(
    docker: &Docker,
    task: &LocalTask,
    instance: &Instance,
) -> anyhow::Result<()> {
    let repo = task.repo.as_deref().context("--repo is required")?;
    let base = match &task.image {
        Some(image) => image.clone(),
        None => cwm_env::build_base_image(docker).await?,
    };
    cwm_env::build_repo_image(docker, &base, repo, &instance.image_name()).await?;
    Ok(())
}

/// The commit HEAD names, read with libgit2. Tracked files changed since HEAD would be baked
/// into the image while the base stays HEAD, so every later diff would carry them: refused.
fn git_head(repo: &Path) -> anyhow::Result<String> {
    let not_a_repo = || {
        format!(
            "{} is not a git repository with a commit; run `git init && git add -A && git commit -m base` there first",
            repo.display()
        )
    };
    let git = git2::Repository::open(repo).with_context(not_a_repo)?;
    let head = git
        .head()
        .and_then(|h| h.peel_to_commit())
        .with_context(not_a_repo)?;
    let mut options = git2::StatusOptions::new();
    options.include_untracked(false).include_ignored(false);
    let statuses = git
        .statuses(Some(&mut options))
        .with_context(|| format!("reading the status of {}", repo.display()))?;
    let changed: Vec<String> = statuses
        .iter()
        .filter(|s| s.status() != git2::Status::CURRENT)
        .filter_map(|s| s.path().map(str::to_string))
        .take(5)
        .collect();
    anyhow::ensure!(
        changed.is_empty(),
        "{} has changes not committed to HEAD ({}); commit or stash them, so the task's base commit is what the agent sees",
        repo.display(),
        changed.join(", ")
    );
    Ok(head.id().to_string())
}

fn repo_name(repo: &Path) -> String {
    let name: String = std::fs::canonicalize(repo)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
        .unwrap_or_else(|| "repo".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "repo".into()
    } else {
        name
    }
}

/// Runs the test command between the markers the log parsers look for.
fn eval_script(test_cmd: &str) -> String {
    use cwm_eval::log::{END_TEST_OUTPUT, START_TEST_OUTPUT};
    let root = cwm_env::REPO_ROOT;
    format!(
        "#!/bin/bash\nset -uxo pipefail\ncd {root}\ngit config --global --add safe.directory {root}\n\
         : '{START_TEST_OUTPUT}'\n{test_cmd}\n: '{END_TEST_OUTPUT}'\n"
    )
}
