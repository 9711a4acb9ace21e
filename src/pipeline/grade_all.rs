//! Grading a set of predictions (`eval`): every instance in a fresh container, `workers` at a
//! time, finished ones read back; with validation, each base commit too.

use std::path::Path;

use cwm_datasets::Instance;
use cwm_env::Docker;
use cwm_eval::predictions::Predictions;
use cwm_eval::{EvalOptions, Evaluation};
use futures_util::StreamExt;

use super::instance::grade;
use super::validate::validate_base;
use crate::error::PipelineError;

/// Where and how a set of predictions is graded.
pub struct Grading<'a> {
    pub docker: &'a Docker,
    pub options: &'a EvalOptions,
    /// Outputs go to `<run_dir>/eval/<iid>/` (and `validate-base/<iid>/`).
    pub run_dir: &'a Path,
    /// Instances graded at once (at least 1).
    pub workers: usize,
    /// Also run each base commit ([`validate_base`]).
    pub validate: bool,
}

/// Grades each of `instances` with its prediction. `done` is told each instance's outcome as
/// it finishes. Returns how many could not be graded.
pub async fn grade_all(
    grading: &Grading<'_>,
    instances: &[Instance],
    predictions: &Predictions,
    mut done: impl FnMut(&Instance, &Result<Evaluation, PipelineError>),
) -> usize {
    let Grading {
        docker,
        options,
        run_dir,
        workers,
        validate,
    } = *grading;
    let jobs = instances.iter().map(|instance| async move {
        let patch = predictions
            .get(&instance.instance_id)
            .and_then(|p| p.model_patch.as_deref());
        let out_dir = run_dir.join("eval").join(&instance.instance_id);
        let gold = grade(docker, instance, patch, options, &out_dir).await;
        let base = match (&gold, validate) {
            (Ok(_), true) => validate_base(docker, instance, options, run_dir)
                .await
                .err(),
            _ => None,
        };
        (instance, base.map_or(gold, Err))
    });
    let mut results = futures_util::stream::iter(jobs).buffer_unordered(workers.max(1));
    let mut failures = 0;
    while let Some((instance, result)) = results.next().await {
        failures += usize::from(result.is_err());
        done(instance, &result);
    }
    failures
}
