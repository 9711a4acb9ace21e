//! `run --samples K`: K independent episodes per instance, CWM's test-time scaling.
//!
//! Sample `k` (from 0) is a run of its own, `<run>/samples/<run-id>.s<k>/`, with every
//! setting of the run but the sampling seed, which is `seed + k`, and `{sample}` in the model
//! spec replaced by `k` (e.g. `replay:script-{sample}.txt`, one scripted model per sample);
//! it resumes, grades and cleans up as any run. Once every sample is done, the run's own directory gets:
//! - `samples.jsonl`: every sample's prediction, `{instance_id, sample, model_name_or_path,
//!   model_patch, resolved}` (`resolved` null when not graded);
//! - `preds.jsonl`: one prediction per instance in the official format, chosen by majority
//!   vote over identical non-empty patches (after whitespace normalisation; ties go to the
//!   lowest sample), sample 0's when every patch is empty;
//! - `samples_summary.json` ([`SamplesSummary`]): pass@1 with its 95% interval, pass@k by
//!   the unbiased estimator, the majority vote's resolution rate and the oracle (any sample
//!   resolved).

use std::collections::BTreeMap;
use std::path::Path;

use cwm_datasets::{Instance, Prediction};
use cwm_eval::hardened::{Hardened, HARDENED_FILE};
use cwm_results::metrics::{pass_at_k, Estimate};
use cwm_results::{write_atomic, RunDir};
use serde::Serialize;

use crate::config::RunConfig;
use crate::error::PipelineError;

/// The settings of sample `k` of `config`'s run.
pub fn sample_config(config: &RunConfig, k: usize) -> RunConfig {
    let mut sample = config.clone();
    sample.run.runs_dir = config.run_dir().join("samples");
    sample.run.run_id = format!("{}.s{k}", config.run.run_id);
    sample.run.samples = 1;
    sample.sampling.seed = config.sampling.seed.wrapping_add(k as u64);
    sample.backend.model = config.backend.model.replace("{sample}", &k.to_string());
    sample
}

/// One line of `samples.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SampleRecord {
    pub instance_id: String,
    pub sample: usize,
    pub model_name_or_path: String,
    pub model_patch: Option<String>,
    /// The official verdict; `None` when the sample was not graded.
    pub resolved: Option<bool>,
}

/// `samples_summary.json`: what K samples per instance reach, over all selected instances
/// and per repository.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SamplesSummary {
    /// Samples asked for per instance.
    pub samples: usize,
    pub instances: usize,
    #[serde(flatten)]
    pub overall: Figures,
    /// The same figures per repository (`owner/name`).
    pub per_repo: BTreeMap<String, Figures>,
}

/// The figures of a set of instances. Rates are over its instances with at least one graded
/// sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Instances with at least one graded sample (the denominator of every rate).
    pub graded_instances: usize,
    /// Mean over instances of the fraction of samples resolved, with its interval.
    pub pass_at_1: Estimate,
    /// `k` → mean over instances of the unbiased pass@k, for k = 1, 2, 5, 10, ... up to K.
    pub pass_at_k: BTreeMap<usize, f64>,
    /// The majority-vote patch (`preds.jsonl`) resolved.
    pub majority: f64,
    /// Any sample resolved: the upper bound of any selection.
    pub oracle: f64,
}

impl SamplesSummary {
    /// The lines `run` prints.
    pub fn lines(&self) -> String {
        let all = &self.overall;
        let ks: Vec<String> = all
            .pass_at_k
            .iter()
            .map(|(k, v)| format!("pass@{k} {:.1}%", 100.0 * v))
            .collect();
        format!(
            "{} samples per instance, {} of {} instances graded\npass@1 {}\n{}\nmajority vote {:.1}%, oracle (any sample) {:.1}%",
            self.samples,
            all.graded_instances,
            self.instances,
            all.pass_at_1.percent(),
            ks.join(", "),
            100.0 * all.majority,
            100.0 * all.oracle
        )
    }
}

/// The ks reported: 1, 2, 5, 10, 20, 50, ... up to `samples`, and `samples` itself.
fn reported_ks(samples: usize) -> Vec<usize> {
    let mut ks: Vec<usize> = [1, 2, 5]
        .into_iter()
        .flat_map(|k| (0..6).map(move |e| k * 10usize.pow(e)))
        .filter(|k| *k <= samples)
        .collect();
    ks.push(samples);
    ks.sort_unstable();
    ks.dedup();
    ks
}

/// Writes `samples.jsonl`, `preds.jsonl` and (when graded) `samples_summary.json` into the
/// run directory from the sample runs of `config`, for the selected `instances`.
pub fn combine(
    config: &RunConfig,
    instances: &[Instance],
) -> Result<Option<SamplesSummary>, PipelineError> {
    let ids: Vec<&String> = instances.iter().map(|i| &i.instance_id).collect();
    let samples = config.run.samples;
    let root = config.run_dir();
    let mut records: BTreeMap<&str, Vec<SampleRecord>> = BTreeMap::new();
    for k in 0..samples {
        let dir = sample_config(config, k).run_dir();
        let run_dir = RunDir::open(&dir)?;
        for id in &ids {
            if let Some(p) = run_dir.finished().get(*id) {
                records.entry(id.as_str()).or_default().push(SampleRecord {
                    instance_id: (*id).clone(),
                    sample: k,
                    model_name_or_path: p.model_name_or_path.clone(),
                    model_patch: p.model_patch.clone(),
                    resolved: verdict(&run_dir.eval_dir(id)),
                });
            }
        }
    }
    let all: Vec<&SampleRecord> = records.values().flatten().collect();
    write_jsonl(&root.join("samples.jsonl"), &all)?;
    let chosen: Vec<(&SampleRecord, Prediction)> = records
        .values()
        .filter_map(|r| majority(r))
        .map(|r| (r, prediction(r)))
        .collect();
    let preds: Vec<&Prediction> = chosen.iter().map(|(_, p)| p).collect();
    write_jsonl(&root.join("preds.jsonl"), &preds)?;
    if !config.eval.evaluate {
        return Ok(None);
    }
    let repos: BTreeMap<&str, &str> = instances
        .iter()
        .map(|i| (i.instance_id.as_str(), i.repo.as_str()))
        .collect();
    let summary = summarise(samples, &repos, &records, &chosen);
    let text = serde_json::to_vec_pretty(&summary).map_err(|source| PipelineError::Json {
        what: "samples_summary.json".into(),
        source,
    })?;
    write_atomic(&root.join("samples_summary.json"), &text)?;
    Ok(Some(summary))
}

fn summarise(
    samples: usize,
    repos: &BTreeMap<&str, &str>,
    records: &BTreeMap<&str, Vec<SampleRecord>>,
    chosen: &[(&SampleRecord, Prediction)],
) -> SamplesSummary {
    let majority: BTreeMap<&str, bool> = chosen
        .iter()
        .map(|(r, _)| (r.instance_id.as_str(), r.resolved == Some(true)))
        .collect();
    let figures_of = |keep: &dyn Fn(&str) -> bool| {
        let chosen: Vec<(&Vec<SampleRecord>, bool)> = records
            .iter()
            .filter(|(id, _)| keep(id))
            .map(|(id, r)| (r, majority.get(id).copied().unwrap_or(false)))
            .collect();
        figures(samples, &chosen)
    };
    let mut per_repo = BTreeMap::new();
    for repo in repos
        .values()
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
    {
        let figures = figures_of(&|id| repos.get(id) == Some(&repo));
        per_repo.insert(repo.to_string(), figures);
    }
    SamplesSummary {
        samples,
        instances: repos.len(),
        overall: figures_of(&|_| true),
        per_repo,
    }
}

/// The figures of some instances: their samples, and whether their majority vote resolved.
fn figures(samples: usize, instances: &[(&Vec<SampleRecord>, bool)]) -> Figures {
    // (n, c, majority resolved) per instance with a graded sample.
    let counts: Vec<(usize, usize, bool)> = instances
        .iter()
        .map(|(r, majority)| {
            let graded: Vec<bool> = r.iter().filter_map(|s| s.resolved).collect();
            (
                graded.len(),
                graded.iter().filter(|v| **v).count(),
                *majority,
            )
        })
        .filter(|(n, _, _)| *n > 0)
        .collect();
    let graded = counts.len().max(1) as f64;
    let rate = |f: &dyn Fn(usize, usize, bool) -> f64| {
        counts.iter().map(|(n, c, m)| f(*n, *c, *m)).sum::<f64>() / graded
    };
    let pass_at_1: Vec<f64> = counts
        .iter()
        .map(|(n, c, _)| *c as f64 / *n as f64)
        .collect();
    Figures {
        graded_instances: counts.len(),
        pass_at_1: Estimate::of(&pass_at_1),
        pass_at_k: reported_ks(samples)
            .into_iter()
            .map(|k| (k, rate(&|n, c, _| pass_at_k(n, c, k))))
            .collect(),
        majority: rate(&|_, _, m| f64::from(u8::from(m))),
        oracle: rate(&|_, c, _| f64::from(u8::from(c > 0))),
    }
}

/// The official verdict of a finished evaluation in `dir`, if any.
fn verdict(dir: &Path) -> Option<bool> {
    let text = std::fs::read_to_string(dir.join(HARDENED_FILE)).ok()?;
    serde_json::from_str::<Hardened>(&text)
        .ok()
        .map(|h| h.official_resolved)
}

/// A patch with trailing whitespace cut from every line and blank lines at both ends
/// dropped: the form identical patches are counted in.
pub fn normalise_patch(patch: &str) -> String {
    let lines: Vec<&str> = patch.lines().map(str::trim_end).collect();
    let start = lines
        .iter()
        .position(|l| !l.is_empty())
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(start, |e| e + 1);
    lines[start..end].join("\n")
}

/// The majority vote among an instance's samples: the most frequent non-empty normalised
/// patch (ties to the one whose first sample is lowest), represented by its lowest sample;
/// the lowest sample when every patch is empty.
pub fn majority(samples: &[SampleRecord]) -> Option<&SampleRecord> {
    let mut votes: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        let patch = normalise_patch(s.model_patch.as_deref().unwrap_or_default());
        if !patch.is_empty() {
            votes.entry(patch).or_insert((0, i)).0 += 1;
        }
    }
    let best = votes
        .values()
        .max_by(|(n1, i1), (n2, i2)| n1.cmp(n2).then(i2.cmp(i1)))
        .map(|(_, i)| *i);
    match best {
        Some(i) => samples.get(i),
        None => samples.iter().min_by_key(|s| s.sample),
    }
}

fn prediction(record: &SampleRecord) -> Prediction {
    Prediction {
        instance_id: record.instance_id.clone(),
        model_name_or_path: record.model_name_or_path.clone(),
        model_patch: record.model_patch.clone(),
    }
}

fn write_jsonl<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), PipelineError> {
    let mut text = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut text, row).map_err(|source| PipelineError::Json {
            what: path.display().to_string(),
            source,
        })?;
        text.push(b'\n');
    }
    Ok(write_atomic(path, &text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sample: usize, patch: &str, resolved: Option<bool>) -> SampleRecord {
        of("a__b-1", sample, patch, resolved)
    }

    fn of(id: &str, sample: usize, patch: &str, resolved: Option<bool>) -> SampleRecord {
        SampleRecord {
            instance_id: id.into(),
            sample,
            model_name_or_path: "m".into(),
            model_patch: Some(patch.into()),
            resolved,
        }
    }

    #[test]
    fn the_majority_is_the_most_frequent_patch_after_whitespace_normalisation() {
        let samples = [
            record(0, "x", None),
            record(1, "y  \n", None),
            record(2, "\ny\n\n", None),
            record(3, "", None),
        ];
        assert_eq!(majority(&samples).unwrap().sample, 1);
        let tie = [
            record(0, "", None),
            record(1, "p", None),
            record(2, "q", None),
        ];
        assert_eq!(
            majority(&tie).unwrap().sample,
            1,
            "ties go to the lowest sample"
        );
        let empty = [record(0, "", None), record(1, " ", None)];
        assert_eq!(majority(&empty).unwrap().sample, 0);
    }

    #[test]
    fn ks_are_powers_and_k() {
        assert_eq!(reported_ks(1), vec![1]);
        assert_eq!(reported_ks(4), vec![1, 2, 4]);
        assert_eq!(reported_ks(40), vec![1, 2, 5, 10, 20, 40]);
    }

    #[test]
    fn summary_rates() {
        let mut records = BTreeMap::new();
        records.insert(
            "a",
            vec![
                of("a", 0, "good", Some(true)),
                of("a", 1, "bad", Some(false)),
            ],
        );
        records.insert(
            "b",
            vec![
                of("b", 0, "bad", Some(false)),
                of("b", 1, "bad", Some(false)),
            ],
        );
        let chosen: Vec<(&SampleRecord, Prediction)> = records
            .values()
            .filter_map(|r| majority(r))
            .map(|r| (r, prediction(r)))
            .collect();
        let repos = BTreeMap::from([("a", "o/x"), ("b", "o/y")]);
        let s = summarise(2, &repos, &records, &chosen);
        assert_eq!(s.overall.pass_at_1.mean, 0.25);
        assert_eq!(s.overall.pass_at_k[&2], 0.5);
        assert_eq!(s.overall.oracle, 0.5);
        assert_eq!(
            s.overall.majority, 0.5,
            "a's tie goes to sample 0, resolved"
        );
        assert_eq!(s.per_repo["o/x"].oracle, 1.0);
        assert_eq!(s.per_repo["o/y"].pass_at_1.mean, 0.0);
    }
}
