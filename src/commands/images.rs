//! `cwm-bench images build-base|build-fixtures|pull|list|prune`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use cwm_bench::logging;
use cwm_env::{Docker, PullOptions, DEFAULT_PULL_ATTEMPTS};
use indicatif::HumanBytes;

use super::shared::DatasetArgs;

#[derive(clap::Subcommand, Debug)]
pub enum ImagesCommand {
    /// Build the offline base image (debootstrap minbase + conda shim); cached by recipe tag.
    BuildBase,
    /// Build one image per fixture task (building the base image first if missing).
    BuildFixtures,
    /// Make sure every selected task's image is present locally, pulling what is missing.
    Pull {
        #[command(flatten)]
        dataset: DatasetArgs,
        /// Log lines (start, retries, result) instead of a progress bar.
        #[arg(long)]
        quiet: bool,
        /// Attempts per image; transient registry failures (5xx, 429, timeouts, connection
        /// errors) are retried with backoff, a missing image or denied access never.
        #[arg(long, default_value_t = DEFAULT_PULL_ATTEMPTS)]
        attempts: u32,
    },
    /// Which of the selected tasks' images are present locally, with their sizes.
    List {
        #[command(flatten)]
        dataset: DatasetArgs,
    },
    /// Remove the selected tasks' images (only those), reporting the disk space freed.
    Prune {
        #[command(flatten)]
        dataset: DatasetArgs,
    },
}

pub fn run(cmd: ImagesCommand) -> anyhow::Result<ExitCode> {
    let quiet = matches!(cmd, ImagesCommand::Pull { quiet: true, .. });
    logging::init(None, quiet)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let docker = cwm_env::connect().await?;
        match cmd {
            ImagesCommand::BuildBase => {
                println!("{}", cwm_env::build_base_image(&docker).await?);
                Ok(ExitCode::SUCCESS)
            }
            ImagesCommand::BuildFixtures => build_fixtures(&docker).await,
            ImagesCommand::Pull {
                dataset,
                quiet,
                attempts,
            } => pull(&docker, &dataset, &PullOptions { quiet, attempts }).await,
            ImagesCommand::List { dataset } => list(&docker, &dataset).await,
            ImagesCommand::Prune { dataset } => prune(&docker, &dataset).await,
        }
    })
}

async fn build_fixtures(docker: &Docker) -> anyhow::Result<ExitCode> {
    for fixture in cwm_env::build_fixture_images_report(docker).await? {
        let state = if fixture.built { "built" } else { "up to date" };
        println!("{} {state}", fixture.image);
    }
    Ok(ExitCode::SUCCESS)
}

/// The distinct images of the selected instances, sorted.
fn selected_images(dataset: &DatasetArgs) -> anyhow::Result<BTreeSet<String>> {
    Ok(dataset.load()?.iter().map(|i| i.image_name()).collect())
}

fn exit_code(failed: usize) -> ExitCode {
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Pulls each missing image once; reports every failure, then fails if there was any.
async fn pull(
    docker: &Docker,
    dataset: &DatasetArgs,
    options: &PullOptions,
) -> anyhow::Result<ExitCode> {
    let images = selected_images(dataset)?;
    let (mut present, mut pulled, mut failed) = (0, 0, 0);
    for image in &images {
        if cwm_env::image_exists(docker, image).await? {
            println!("{image} present");
            present += 1;
            continue;
        }
        match cwm_env::pull_image(docker, image, options).await {
            Ok(report) => {
                println!(
                    "{image} pulled ({} layers, {} downloaded, {} attempt(s))",
                    report.layers,
                    HumanBytes(report.bytes),
                    report.attempts
                );
                pulled += 1;
            }
            Err(err) => {
                eprintln!("error: {}", logging::error_line(&err));
                failed += 1;
            }
        }
    }
    println!("{present} present, {pulled} pulled, {failed} failed");
    Ok(exit_code(failed))
}

/// Prints each selected image with its local size (or `missing`), then the totals.
async fn list(docker: &Docker, dataset: &DatasetArgs) -> anyhow::Result<ExitCode> {
    let images = selected_images(dataset)?;
    let (mut present, mut total) = (0usize, 0u64);
    for image in &images {
        match cwm_env::image_size(docker, image).await? {
            Some(size) => {
                println!("{image}\t{}", HumanBytes(size));
                present += 1;
                total += size;
            }
            None => println!("{image}\tmissing"),
        }
    }
    println!(
        "{present} of {} images present, {} in all (layers shared between images count once per image)",
        images.len(),
        HumanBytes(total)
    );
    Ok(ExitCode::SUCCESS)
}

/// Removes every selected image that is present; the base and fixture images go only when
/// they are the selection's own. Freed space is measured on Docker's data root.
async fn prune(docker: &Docker, dataset: &DatasetArgs) -> anyhow::Result<ExitCode> {
    let images = selected_images(dataset)?;
    let before = cwm_env::disk_space(docker).await;
    let (mut removed, mut absent, mut failed) = (0, 0, 0);
    for image in &images {
        match cwm_env::remove_image(docker, image).await {
            Ok(true) => {
                println!("{image} removed");
                removed += 1;
            }
            Ok(false) => absent += 1,
            Err(err) => {
                eprintln!("error: {}", logging::error_line(&err));
                failed += 1;
            }
        }
    }
    let freed = match (before, cwm_env::disk_space(docker).await) {
        (Ok(before), Ok(after)) => format!(
            "{} freed on {}",
            HumanBytes(after.free_bytes.saturating_sub(before.free_bytes)),
            after.path.display()
        ),
        (Err(err), _) | (_, Err(err)) => format!("freed space unknown ({err})"),
    };
    println!("{removed} removed, {absent} not present, {failed} failed; {freed}");
    Ok(exit_code(failed))
}
