//! The self-contained HTML pages: `index.html` and one page per episode. No scripts and no
//! external assets, so a report can be mailed or attached as one folder.

use std::collections::BTreeSet;

use cwm_eval::{SuccessFailure, TestsStatus};
use cwm_protocol::Turn;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

use super::leaderboard::{short_repo, Row};
use crate::loaded::{Episode, LoadedRun};

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1d1d1f; max-width: 1200px; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 14px; }
th, td { border: 1px solid #d0d0d7; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.yes { background: #d9f2e3; } .no { background: #fbe0e0; } .none { background: #eee; }
.flip { font-weight: bold; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
.charts figure { margin: 0; border: 1px solid #ddd; }
.charts figcaption { font-size: 13px; padding: 4px 8px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 10px; vertical-align: middle; }
pre { white-space: pre-wrap; word-break: break-word; background: #f7f7fa; padding: 8px; margin: 4px 0; }
details.turn { border: 1px solid #ccc; border-radius: 4px; margin: 6px 0; padding: 4px 8px; }
details.turn > summary { cursor: pointer; font-weight: 600; }
.label { font-size: 12px; text-transform: uppercase; color: #666; margin-top: 6px; }
.thinking pre { background: #fffbe6; }
.call pre { background: #eef4ff; }
.diff { font-family: monospace; font-size: 13px; background: #fafafa; padding: 8px; border: 1px solid #ddd; }
.diff div { white-space: pre-wrap; }
.diff .add { background: #e6ffec; color: #116329; } .diff .del { background: #ffebe9; color: #82071e; }
.diff .hunk { color: #0550ae; background: #ddf4ff; } .diff .meta { color: #57606a; font-weight: bold; }
"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n",
        text(title)
    )
}

/// Where an episode's page lives, relative to the report root.
pub fn trajectory_href(run: &LoadedRun, episode: &Episode) -> String {
    format!(
        "trajectories/{}/{}.html",
        slug(&run.run_id),
        slug(episode.instance_id())
    )
}

/// Keeps file names portable: anything but `[A-Za-z0-9._-]` becomes `_`.
pub fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Inputs of the index page.
pub struct Index<'a> {
    pub runs: &'a [LoadedRun],
    pub rows: &'a [Row],
    /// The test-time scaling section ([`super::tts::html`]; empty without sampled runs).
    pub tts: &'a str,
    /// Chart titles and their SVG documents (with any HTML legend after them).
    pub charts: Vec<(String, String)>,
}

pub fn index(ix: &Index) -> String {
    let mut body = String::from("<h1>cwm-bench report</h1>\n<h2>Leaderboard</h2>\n");
    body.push_str(&leaderboard_table(ix.rows));
    body.push_str(ix.tts);
    body.push_str("<h2>Charts</h2>\n<div class=\"charts\">\n");
    for (title, svg) in &ix.charts {
        body.push_str(&format!(
            "<figure data-chart=\"{}\">{svg}</figure>\n",
            attr(title)
        ));
    }
    body.push_str("</div>\n");
    body.push_str(&flipped_section(ix.runs));
    body.push_str(&instances_table(ix.runs));
    page("cwm-bench report", &body)
}

fn leaderboard_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "<table id=\"leaderboard\"><thead><tr><th>rank</th><th>run</th><th>model</th><th>resolved %</th><th>resolved/total</th><th>per repo</th><th>mean turns</th><th>tokens in</th><th>tokens out</th><th>time (s)</th><th>exit statuses</th></tr></thead><tbody>\n",
    );
    for (i, r) in rows.iter().enumerate() {
        out.push_str(&format!(
            "<tr class=\"run-row\" data-run=\"{}\"><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}/{}</td><td>{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td>{}</td></tr>\n",
            attr(&r.run_id),
            i + 1,
            text(&r.run_id),
            text(&r.model),
            r.overall.percent(),
            r.overall.resolved,
            r.overall.total,
            text(&r.per_repo_text()),
            r.mean_turns,
            r.tokens_in,
            r.tokens_out,
            r.wall_time_s,
            text(&r.statuses_text()),
        ));
    }
    out.push_str("</tbody></table>\n");
    out
}

/// Every instance id seen in any run, sorted.
fn all_ids(runs: &[LoadedRun]) -> BTreeSet<String> {
    runs.iter()
        .flat_map(|r| r.episodes.iter().map(|e| e.instance_id().to_string()))
        .collect()
}

fn find<'a>(run: &'a LoadedRun, id: &str) -> Option<&'a Episode> {
    run.episodes.iter().find(|e| e.instance_id() == id)
}

/// Instances whose verdict differs between the runs that graded them (a run without the
/// instance, or without its report, says nothing about it).
pub fn flipped_ids(runs: &[LoadedRun]) -> Vec<String> {
    all_ids(runs)
        .into_iter()
        .filter(|id| {
            let verdicts: BTreeSet<bool> = runs
                .iter()
                .filter_map(|r| find(r, id).filter(|e| e.graded()).map(|e| e.resolved()))
                .collect();
            verdicts.len() > 1
        })
        .collect()
}

fn flipped_section(runs: &[LoadedRun]) -> String {
    let flipped = flipped_ids(runs);
    let mut out = format!(
        "<h2>Which instances flipped</h2>\n<p>{} instance(s) resolved in some runs but not in others (among the runs that graded them).</p>\n",
        flipped.len()
    );
    if runs.len() < 2 || flipped.is_empty() {
        return out;
    }
    out.push_str(&verdict_table("flipped", runs, &flipped));
    out
}

fn instances_table(runs: &[LoadedRun]) -> String {
    let ids: Vec<String> = all_ids(runs).into_iter().collect();
    format!(
        "<h2>Instances</h2>\n{}",
        verdict_table("instances", runs, &ids)
    )
}

/// One row per instance, one column per run; each cell links to the episode's page.
fn verdict_table(id: &str, runs: &[LoadedRun], ids: &[String]) -> String {
    let mut out = format!("<table id=\"{id}\"><thead><tr><th>instance</th>");
    for run in runs {
        out.push_str(&format!("<th>{}</th>", text(&run.run_id)));
    }
    out.push_str("</tr></thead><tbody>\n");
    for iid in ids {
        out.push_str(&format!(
            "<tr class=\"instance-row\" data-instance=\"{}\"><td>{}</td>",
            attr(iid),
            text(iid)
        ));
        for run in runs {
            out.push_str(&verdict_cell(run, iid));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    out
}

fn verdict_cell(run: &LoadedRun, iid: &str) -> String {
    let Some(e) = find(run, iid) else {
        return "<td class=\"none\">—</td>".into();
    };
    let (class, verdict) = match (&e.report, e.graded()) {
        (Some(r), _) if r.resolved => ("yes", "resolved"),
        (_, true) => ("no", "unresolved"),
        _ => ("none", "not graded"),
    };
    format!(
        "<td class=\"{class}\"><a href=\"{}\">{verdict}</a>{} · {} turns · {}</td>",
        attr(&trajectory_href(run, e)),
        flag_mark(e),
        e.trajectory.turns.len(),
        text(e.status())
    )
}

/// One episode's page: metadata, the prompts, every turn, the patch and the test verdicts.
pub fn trajectory_page(run: &LoadedRun, e: &Episode) -> String {
    let h = &e.trajectory.header;
    let title = format!("{} · {}", h.instance_id, run.run_id);
    let mut body = format!(
        "<p><a href=\"../../index.html\">← report</a></p>\n<h1>{}</h1>\n",
        text(&title)
    );
    body.push_str(&summary_table(run, e));
    body.push_str("<h2>Prompt</h2>\n");
    for m in &h.messages {
        body.push_str(&format!(
            "<details class=\"prompt\"><summary>{}</summary><pre>{}</pre></details>\n",
            text(&m.role.as_string()),
            text(&m.content)
        ));
    }
    body.push_str(&format!("<h2>Turns ({})</h2>\n", e.trajectory.turns.len()));
    for turn in &e.trajectory.turns {
        body.push_str(&turn_block(turn));
    }
    body.push_str("<h2>Patch</h2>\n");
    body.push_str(&diff_block(e.patch()));
    body.push_str("<h2>Tests</h2>\n");
    body.push_str(&tests_block(e));
    page(&title, &body)
}

/// A marker for instances whose hardened verdict raised flags or differs from the official.
fn flag_mark(e: &Episode) -> String {
    let Some(h) = e.hardened.as_ref().filter(|_| e.flagged()) else {
        return String::new();
    };
    let flags: Vec<String> = h
        .flags
        .iter()
        .map(|f| {
            serde_json::to_string(f)
                .unwrap_or_default()
                .replace('"', "")
        })
        .collect();
    let what = format!(
        "hardened verdict: {}; flags: {}",
        if h.resolved { "resolved" } else { "unresolved" },
        if flags.is_empty() {
            "none".to_string()
        } else {
            flags.join(", ")
        }
    );
    format!(
        " <span class=\"flagged\" title=\"{}\">⚑ flagged</span>",
        attr(&what)
    )
}

fn summary_table(run: &LoadedRun, e: &Episode) -> String {
    let f = e.trajectory.footer.as_ref();
    let verdict = match (&e.report, e.graded()) {
        (Some(r), _) if r.resolved => "resolved",
        (_, true) => "unresolved",
        _ => "not graded",
    };
    let rows = [
        ("run", run.run_id.clone()),
        ("model", e.trajectory.header.model.clone()),
        ("repo", e.repo().to_string()),
        ("difficulty", e.difficulty().to_string()),
        ("verdict", verdict.to_string()),
        ("exit status", e.status().to_string()),
        ("turns", e.trajectory.turns.len().to_string()),
        (
            "tokens in / out",
            f.map_or("—".into(), |f| {
                format!("{} / {}", f.tokens_in, f.tokens_out)
            }),
        ),
        (
            "wall time (s)",
            f.map_or("—".into(), |f| {
                format!("{:.1}", f.wall_time_ms as f64 / 1000.0)
            }),
        ),
        ("error", f.and_then(|f| f.error.clone()).unwrap_or_default()),
    ];
    let mut out = String::from("<table id=\"summary\">");
    for (k, v) in rows {
        out.push_str(&format!("<tr><th>{k}</th><td>{}</td></tr>", text(&v)));
    }
    out.push_str("</table>\n");
    out
}

fn turn_block(turn: &Turn) -> String {
    let headline = match &turn.call {
        Some(call) => format!(
            "{} {}",
            call.tool.as_str(),
            call.body.lines().next().unwrap_or("")
        ),
        None if turn.format_error.is_some() => "format error".into(),
        None => "final reply".into(),
    };
    let mut out = format!(
        "<details class=\"turn\" id=\"turn-{n}\"><summary>Turn {n} · {}</summary>\n",
        text(&headline),
        n = turn.turn
    );
    if let Some(thinking) = &turn.thinking {
        out.push_str(&section("thinking", "Thinking", thinking));
    }
    match &turn.call {
        Some(call) => out.push_str(&section(
            "call",
            &format!("Call · {}", call.tool.as_str()),
            &call.body,
        )),
        None => out.push_str(&section("answer", "Answer", &turn.answer)),
    }
    if let Some(obs) = &turn.observation {
        let label = format!("Observation · {}", obs.role.as_string());
        out.push_str(&section("observation", &label, &obs.content));
    }
    out.push_str("</details>\n");
    out
}

fn section(class: &str, label: &str, body: &str) -> String {
    format!(
        "<div class=\"{class}\"><div class=\"label\">{}</div><pre>{}</pre></div>\n",
        text(label),
        text(body)
    )
}

/// The patch with each line coloured by its kind.
pub fn diff_block(patch: Option<&str>) -> String {
    let Some(patch) = patch.filter(|p| !p.is_empty()) else {
        return "<p class=\"no-patch\">No patch was submitted.</p>\n".into();
    };
    let mut out = String::from("<div class=\"diff\">\n");
    for line in patch.lines() {
        let class = if line.starts_with("+++")
            || line.starts_with("---")
            || line.starts_with("diff ")
            || line.starts_with("index ")
        {
            "meta"
        } else if line.starts_with("@@") {
            "hunk"
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else {
            "ctx"
        };
        out.push_str(&format!("<div class=\"{class}\">{}</div>\n", text(line)));
    }
    out.push_str("</div>\n");
    out
}

fn tests_block(e: &Episode) -> String {
    if !e.graded() {
        return "<p>This run was not evaluated.</p>\n".into();
    }
    let mut out = String::new();
    if e.flagged() {
        out.push_str(&format!("<p>{}</p>\n", flag_mark(e)));
    }
    let Some(status) = e.report.as_ref().and_then(|r| r.tests_status.as_ref()) else {
        let why = e
            .hardened
            .as_ref()
            .and_then(|h| h.error.clone())
            .unwrap_or_else(|| "no gradable test log".into());
        out.push_str(&format!("<p>No test verdicts: {}</p>\n", text(&why)));
        return out;
    };
    out.push_str(
        "<table id=\"tests\"><thead><tr><th>test</th><th>group</th><th>verdict</th></tr></thead><tbody>\n",
    );
    for (group, sf) in groups(status) {
        out.push_str(&test_rows(group, sf));
    }
    out.push_str("</tbody></table>\n");
    out
}

fn groups(s: &TestsStatus) -> [(&'static str, &SuccessFailure); 4] {
    [
        ("FAIL_TO_PASS", &s.fail_to_pass),
        ("PASS_TO_PASS", &s.pass_to_pass),
        ("FAIL_TO_FAIL", &s.fail_to_fail),
        ("PASS_TO_FAIL", &s.pass_to_fail),
    ]
}

fn test_rows(group: &str, sf: &SuccessFailure) -> String {
    let mut out = String::new();
    let verdicts = sf
        .success
        .iter()
        .map(|t| (t, "yes", "pass"))
        .chain(sf.failure.iter().map(|t| (t, "no", "fail")));
    for (test, class, verdict) in verdicts {
        out.push_str(&format!(
            "<tr class=\"test-row\"><td>{}</td><td>{group}</td><td class=\"{class}\">{verdict}</td></tr>\n",
            text(test)
        ));
    }
    out
}

/// Repository names for chart labels, without their owner.
pub fn repo_label(repo: &str) -> String {
    short_repo(repo).to_string()
}
