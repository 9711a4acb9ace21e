//! The test-time scaling table of a report: for each run made with `--samples K` (it has a
//! `samples_summary.json`), pass@1 with its interval, pass@k, the majority vote, best@k of
//! each selection made from it (a sibling run directory whose `selection.json` names it) and
//! the oracle, overall and per repository. The files are read as JSON (their writers live in
//! the run pipeline, which this crate does not depend on); fields missing read as absent.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::loaded::LoadedRun;

/// One table row: a run (or a run and a repository) and its figures as text.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsRow {
    pub run_id: String,
    /// `all`, or a repository.
    pub scope: String,
    pub samples: u64,
    pub graded: u64,
    pub pass_at_1: String,
    pub pass_at_k: String,
    pub majority: String,
    /// `strategy: x%` per selection made from the run.
    pub best_at_k: String,
    pub oracle: String,
}

/// The rows of every run with a `samples_summary.json`, overall first, then per repository.
pub fn rows(runs: &[LoadedRun]) -> Vec<TtsRow> {
    let mut rows = Vec::new();
    for run in runs {
        let Some(summary) = read(&run.root.join("samples_summary.json")) else {
            continue;
        };
        let selections = selections_of(&run.root);
        rows.push(row(
            &run.run_id,
            "all",
            &summary,
            &summary,
            &selections,
            None,
        ));
        if let Some(repos) = summary["per_repo"].as_object() {
            for (repo, figures) in repos {
                rows.push(row(
                    &run.run_id,
                    repo,
                    &summary,
                    figures,
                    &selections,
                    Some(repo),
                ));
            }
        }
    }
    rows
}

fn row(
    run_id: &str,
    scope: &str,
    summary: &Value,
    figures: &Value,
    selections: &[Value],
    repo: Option<&str>,
) -> TtsRow {
    let pct = |v: &Value| {
        v.as_f64()
            .map_or("-".to_string(), |x| format!("{:.1}%", 100.0 * x))
    };
    let p1 = &figures["pass_at_1"];
    let pass_at_1 = format!(
        "{} ({}-{})",
        pct(&p1["mean"]),
        pct(&p1["low"]),
        pct(&p1["high"])
    );
    let pass_at_k = figures["pass_at_k"]
        .as_object()
        .map(|ks| {
            let mut ks: Vec<(u64, String)> = ks
                .iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, pct(v))))
                .collect();
            ks.sort();
            ks.iter()
                .map(|(k, v)| format!("@{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let best_at_k = selections
        .iter()
        .map(|s| {
            let rates = match repo {
                Some(repo) => &s["per_repo"][repo],
                None => s,
            };
            format!(
                "{}: {}",
                s["strategy"].as_str().unwrap_or("?"),
                pct(&rates["best_at_k"])
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    TtsRow {
        run_id: run_id.to_string(),
        scope: scope.to_string(),
        samples: summary["samples"].as_u64().unwrap_or(0),
        graded: figures["graded_instances"].as_u64().unwrap_or(0),
        pass_at_1,
        pass_at_k,
        majority: pct(&figures["majority"]),
        best_at_k: if best_at_k.is_empty() {
            "-".into()
        } else {
            best_at_k
        },
        oracle: pct(&figures["oracle"]),
    }
}

/// `selection.json` of every sibling directory of `root` made by `tts select` from it.
fn selections_of(root: &Path) -> Vec<Value> {
    let Some(parent) = root.parent() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    dirs.sort();
    let same = |named: &str| {
        let named = PathBuf::from(named);
        named == root || named.canonicalize().ok() == root.canonicalize().ok()
    };
    dirs.iter()
        .filter_map(|d| read(&d.join("selection.json")))
        .filter(|s| s["run"].as_str().is_some_and(same))
        .collect()
}

fn read(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The table in Markdown (empty when no run has samples).
pub fn markdown(rows: &[TtsRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n## Test-time scaling\n\n| run | scope | samples | graded | pass@1 (95% CI) | pass@k | majority | best@k | oracle |\n|---|---|---:|---:|---|---|---:|---|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.run_id,
            r.scope,
            r.samples,
            r.graded,
            r.pass_at_1,
            r.pass_at_k,
            r.majority,
            r.best_at_k,
            r.oracle
        ));
    }
    out
}

/// The table in HTML (empty when no run has samples).
pub fn html(rows: &[TtsRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut out = String::from(
        "<h2>Test-time scaling</h2>\n<table id=\"tts\"><thead><tr><th>run</th><th>scope</th><th>samples</th><th>graded</th><th>pass@1 (95% CI)</th><th>pass@k</th><th>majority</th><th>best@k</th><th>oracle</th></tr></thead><tbody>\n",
    );
    for r in rows {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&r.run_id), esc(&r.scope), r.samples, r.graded, esc(&r.pass_at_1), esc(&r.pass_at_k), esc(&r.majority), esc(&r.best_at_k), esc(&r.oracle)
        ));
    }
    out.push_str("</tbody></table>\n");
    out
}
