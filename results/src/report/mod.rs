//! Leaderboard reports over one or more runs: `leaderboard.md`, `leaderboard.csv`,
//! a self-contained `index.html` with SVG charts, one page per episode, and `submission/`.

pub mod charts;
pub mod html;
pub mod leaderboard;
pub mod submission;
pub mod tts;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use charts::{BarChart, Series};
use leaderboard::{Row, Tally};

use crate::loaded::LoadedRun;
use crate::{write_atomic, ResultsError};

/// Writes a published file atomically, readable by everyone (a temporary file starts 0600).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    write_atomic(path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(path, mode).map_err(|source| ResultsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// What a report wrote.
#[derive(Debug, Clone)]
pub struct ReportFiles {
    pub index: PathBuf,
    pub leaderboard_md: PathBuf,
    pub leaderboard_csv: PathBuf,
    pub trajectory_pages: usize,
    /// One `submission/<run>/` per run.
    pub submissions: Vec<PathBuf>,
}

/// Writes the whole report for `runs` into `out`.
pub fn write_report(runs: &[LoadedRun], out: &Path) -> Result<ReportFiles, ResultsError> {
    let rows = leaderboard::rows(runs);
    let tts_rows = tts::rows(runs);
    let leaderboard_md = out.join("leaderboard.md");
    let markdown = leaderboard::markdown(&rows) + &tts::markdown(&tts_rows);
    write_file(&leaderboard_md, markdown.as_bytes())?;
    let leaderboard_csv = out.join("leaderboard.csv");
    let csv = leaderboard::csv(&rows).map_err(|source| ResultsError::Csv {
        path: leaderboard_csv.clone(),
        source,
    })?;
    write_file(&leaderboard_csv, csv.as_bytes())?;
    let index_html = html::index(&html::Index {
        runs,
        rows: &rows,
        tts: &tts::html(&tts_rows),
        charts: all_charts(runs, &rows)?,
    });
    let index = out.join("index.html");
    write_file(&index, index_html.as_bytes())?;
    let mut trajectory_pages = 0;
    for run in runs {
        for episode in &run.episodes {
            let page = html::trajectory_page(run, episode);
            write_file(
                &out.join(html::trajectory_href(run, episode)),
                page.as_bytes(),
            )?;
            trajectory_pages += 1;
        }
    }
    let submissions = runs
        .iter()
        .map(|run| submission::write(run, &out.join("submission").join(html::slug(&run.run_id))))
        .collect::<Result<_, _>>()?;
    Ok(ReportFiles {
        index,
        leaderboard_md,
        leaderboard_csv,
        trajectory_pages,
        submissions,
    })
}

/// Resolved % per run, per repo, per difficulty, and the turns histogram.
fn all_charts(runs: &[LoadedRun], rows: &[Row]) -> Result<Vec<(String, String)>, ResultsError> {
    let per_run = BarChart {
        title: "Resolved % per run",
        y_label: "resolved %",
        categories: rows.iter().map(|r| r.run_id.clone()).collect(),
        series: vec![Series {
            name: "resolved %".into(),
            values: rows.iter().map(|r| r.overall.percent()).collect(),
        }],
        y_max: Some(100.0),
    };
    let per_repo = grouped(
        "Resolved % per repo",
        rows,
        |r| &r.per_repo,
        html::repo_label,
    );
    let per_difficulty = grouped(
        "Resolved % per difficulty",
        rows,
        |r| &r.per_difficulty,
        str::to_string,
    );
    let turns: Vec<(String, Vec<u64>)> = runs
        .iter()
        .map(|r| {
            let t = r.episodes.iter().map(|e| e.trajectory.turns.len() as u64);
            (r.run_id.clone(), t.collect())
        })
        .collect();
    let (categories, series) = charts::turn_histogram(&turns, 12);
    let histogram = BarChart {
        title: "Turns per episode",
        y_label: "episodes",
        categories,
        series,
        y_max: None,
    };
    [per_run, per_repo, per_difficulty, histogram]
        .iter()
        .map(|c| {
            let svg = charts::render(c)?;
            Ok((
                c.title.to_string(),
                format!("{svg}{}", charts::legend_html(c)),
            ))
        })
        .collect()
}

/// One group per key (repo or difficulty), one bar per run.
fn grouped<'a>(
    title: &'a str,
    rows: &[Row],
    tallies: impl Fn(&Row) -> &std::collections::BTreeMap<String, Tally>,
    label: impl Fn(&str) -> String,
) -> BarChart<'a> {
    let keys: BTreeSet<String> = rows
        .iter()
        .flat_map(|r| tallies(r).keys().cloned())
        .collect();
    let series = rows
        .iter()
        .map(|r| Series {
            name: r.run_id.clone(),
            values: keys
                .iter()
                .map(|k| tallies(r).get(k).map_or(0.0, Tally::percent))
                .collect(),
        })
        .collect();
    BarChart {
        title,
        y_label: "resolved %",
        categories: keys.iter().map(|k| label(k)).collect(),
        series,
        y_max: Some(100.0),
    }
}
