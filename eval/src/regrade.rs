//! Grading test logs that already exist, without containers: the official harness's
//! `--rewrite_reports`, for logs cwm-bench wrote and for the official harness's own
//! `logs/run_evaluation/<run>/<model>/<iid>/` directories.

use std::path::Path;

use cwm_datasets::Instance;

use crate::error::EvalError;
use crate::official::report_for_log;
use crate::predictions::Predictions;
use crate::summary::{RunSummary, TEST_OUTPUT_FILE};

/// What a re-grade wrote.
#[derive(Debug, Default)]
pub struct Regraded {
    /// Reports written.
    pub reports: usize,
    /// Instances with a prediction but no `test_output.txt` (not graded, as upstream).
    pub missing_logs: Vec<String>,
    /// One per log that could not be graded ([`EvalError::LogNotUtf8`] or
    /// [`EvalError::Ungradable`], each naming the log); those instances get no report.
    pub errors: Vec<EvalError>,
    pub summary: RunSummary,
}

/// Grades `logs_dir/<iid>/test_output.txt` for every instance that has a prediction, writes
/// `out_dir/<iid>/report.json` (the official schema and bytes), then `out_dir/summary.json`.
/// A log that is not UTF-8 or that the official parser fails on gets no report and an
/// entry in `errors` (5.x fails on both too). `Err` only for a failed write; reports
/// already written stay.
pub fn regrade(
    instances: &[Instance],
    predictions: &Predictions,
    logs_dir: &Path,
    out_dir: &Path,
) -> Result<Regraded, EvalError> {
    let mut done = Regraded::default();
    for instance in instances {
        let id = &instance.instance_id;
        let Some(prediction) = predictions.get(id) else {
            continue;
        };
        let log_path = logs_dir.join(id).join(TEST_OUTPUT_FILE);
        let Ok(bytes) = std::fs::read(&log_path) else {
            done.missing_logs.push(id.clone());
            continue;
        };
        let log = match String::from_utf8(bytes) {
            Ok(log) => log,
            Err(source) => {
                done.errors.push(EvalError::LogNotUtf8 {
                    path: log_path,
                    source,
                });
                continue;
            }
        };
        match report_for_log(instance, prediction, &log) {
            Ok(report) => {
                report.write(&out_dir.join(id).join(crate::summary::REPORT_FILE))?;
                done.reports += 1;
            }
            Err(err @ (EvalError::UnknownParser { .. } | EvalError::NoParser { .. })) => {
                return Err(err)
            }
            Err(err) => done.errors.push(EvalError::Ungradable {
                path: log_path,
                source: Box::new(err),
            }),
        }
    }
    let ids: Vec<String> = instances.iter().map(|i| i.instance_id.clone()).collect();
    done.summary = RunSummary::from_dirs(&ids, predictions, out_dir, logs_dir);
    done.summary.write(&out_dir.join("summary.json"))?;
    Ok(done)
}
