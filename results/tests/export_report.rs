//! Exports and reports over a hand-written run directory (no Docker): every format read back
//! into its typed records, rewards checked against the report, and every report file written.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::path::Path;

use cwm_results::export::{
    export, export_with, CwmDump, Format, Only, RlRecord, SftRecord, Verdict,
};
use cwm_results::report::write_report;
use cwm_results::LoadedRun;
use serde_json::json;

const PATCH: &str = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n";

fn turn(n: u64, raw: &str, call: serde_json::Value, obs: serde_json::Value) -> serde_json::Value {
    json!({"type": "turn", "turn": n, "started_at": "t", "finished_at": "t", "raw": raw,
        "thinking": null, "answer": raw, "call": call, "observation": obs, "exit_code": 0,
        "success": true, "format_error": null, "restarted": false, "truncated": false,
        "submission": null, "tokens_in": 100 * n, "tokens_out": 10, "context_tokens": 110 * n,
        "finish_reason": null, "model_latency_ms": 1, "tool_latency_ms": 1})
}

/// One episode: a bash call, a submit, a final reply; `f2p` FAIL_TO_PASS tests of which
/// `passed` pass.
fn write_episode(run: &Path, id: &str, passed: usize, f2p: usize) {
    let header = json!({"type": "header", "schema_version": 1, "harness_version": "0",
        "instance_id": id, "repo": "o/r", "base_commit": "abc", "image": "img", "model": "m",
        "policy": null, "budgets": {"max_turns": 128, "context_tokens": 131072,
        "max_action_tokens": 65536, "max_observation_tokens": 32768, "command_timeout_secs": 120,
        "output_limit_bytes": 491520, "wall_clock_secs": null, "max_format_errors": 10},
        "autosubmit": false, "started_at": "t",
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "fix it"}]});
    let lines = [
        header,
        turn(
            1,
            "<think>\nlook\n</think>\n<tool: bash>\nls\n</tool>",
            json!({"tool": "bash", "body": "ls"}),
            json!({"role": "tool: bash", "content": "<output>\nx.py\n</output>"}),
        ),
        turn(
            2,
            "<think>\nok\n</think>\n<tool: submit>\n/tmp/p\n</tool>",
            json!({"tool": "submit", "body": "/tmp/p"}),
            json!({"role": "tool: submit", "content": "<submission>\nd\n</submission>"}),
        ),
        turn(
            3,
            "<think>\ndone\n</think>\nDone.",
            json!(null),
            json!(null),
        ),
        json!({"type": "footer", "status": "submitted", "patch": PATCH, "error": null,
            "turns": 3, "format_errors": 0, "tokens_in": 600, "tokens_out": 30,
            "context_tokens": 330, "model_time_ms": 3, "tool_time_ms": 3, "wall_time_ms": 1500,
            "finished_at": "t"}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::create_dir_all(run.join("trajectories")).expect("mkdir");
    std::fs::write(run.join("trajectories").join(format!("{id}.jsonl")), text).expect("write");
    let names =
        |range: std::ops::Range<usize>| -> Vec<String> { range.map(|i| format!("t{i}")).collect() };
    let resolved = passed == f2p;
    let report = json!({id: {"patch_is_None": false, "patch_exists": true,
        "patch_successfully_applied": true, "resolved": resolved, "tests_status": {
            "FAIL_TO_PASS": {"success": names(0..passed), "failure": names(passed..f2p)},
            "PASS_TO_PASS": {"success": ["p"], "failure": []},
            "FAIL_TO_FAIL": {"success": [], "failure": []},
            "PASS_TO_FAIL": {"success": [], "failure": []}}}});
    let dir = run.join("eval").join(id);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("report.json"), report.to_string()).expect("write");
    let hardened = json!({"instance_id": id, "resolved": resolved,
        "official_resolved": resolved, "flags": []});
    std::fs::write(dir.join("hardened.json"), hardened.to_string()).expect("write");
}

fn sample_run(root: &Path) -> LoadedRun {
    let run = root.join("run-a");
    write_episode(&run, "o__r-1", 2, 2);
    write_episode(&run, "o__r-2", 1, 4);
    std::fs::write(run.join("config.json"), r#"{"model": "m", "seed": 7}"#).expect("config");
    LoadedRun::load(&run).expect("load")
}

fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read");
    text.lines().map(str::to_string).collect()
}

#[test]
fn every_format_round_trips_with_rewards_from_the_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = sample_run(dir.path());
    let runs = [run];

    let sft = dir.path().join("sft.jsonl");
    assert_eq!(
        export(&runs, Format::Sft, Only::All, &sft)
            .expect("sft")
            .written,
        2
    );
    for line in lines(&sft) {
        let r: SftRecord = serde_json::from_str(&line).expect("sft");
        // system, user, 3 assistant turns, 2 observations.
        assert_eq!(r.messages.len(), 7);
        assert_eq!(r.messages[3].role.as_string(), "tool: bash");
    }

    let rl = dir.path().join("rl.jsonl");
    export(&runs, Format::Rl, Only::All, &rl).expect("rl");
    let records: Vec<RlRecord> = lines(&rl)
        .iter()
        .map(|l| serde_json::from_str(l).expect("rl"))
        .collect();
    assert_eq!(records[0].rewards.resolved, 1.0);
    assert_eq!(records[0].rewards.f2p_fraction, 1.0);
    assert_eq!(records[1].rewards.resolved, 0.0);
    assert_eq!(records[1].rewards.f2p_fraction, 0.25);
    assert!(records[1].rewards.patch_applied);
    assert_eq!(records[1].config["seed"], 7);
    assert_eq!(records[1].steps.len(), 3);
    assert_eq!(records[1].steps[2].observation, None);

    let cwm = dir.path().join("cwm.jsonl");
    export(&runs, Format::Cwm, Only::All, &cwm).expect("cwm");
    let dumps: Vec<CwmDump> = lines(&cwm)
        .iter()
        .map(|l| serde_json::from_str(l).expect("cwm"))
        .collect();
    let last = dumps[0].rollouts[0].traj.transitions.last().expect("last");
    assert!(last.terminal && dumps[0].rollouts[0].outcomes.pass);
    assert_eq!(last.info.pred_patch.as_deref(), Some(PATCH));
    assert_eq!(last.action_str, "done\n</think>\nDone.");
    assert!(!dumps[1].rollouts[0].outcomes.pass);

    let resolved = dir.path().join("resolved.jsonl");
    let stats = export(&runs, Format::Sft, Only::Resolved, &resolved).expect("resolved");
    assert_eq!((stats.written, stats.unresolved), (1, 1));
}

#[test]
fn report_writes_every_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = sample_run(dir.path());
    let out = dir.path().join("report");
    let files = write_report(&[run], &out).expect("report");
    assert_eq!(files.trajectory_pages, 2);
    let csv = std::fs::read_to_string(&files.leaderboard_csv).expect("csv");
    assert!(
        csv.lines()
            .nth(1)
            .expect("row")
            .starts_with("1,run-a,m,50.0,1,2,3.00,"),
        "{csv}"
    );
    let html = std::fs::read_to_string(&files.index).expect("html");
    assert_eq!(html.matches("<svg").count(), 4);
    let page = std::fs::read_to_string(out.join("trajectories/run-a/o__r-1.html")).expect("page");
    assert_eq!(page.matches("<details class=\"turn\"").count(), 3);
    assert!(page.contains("<div class=\"add\">+b</div>"));
    let sub = out.join("submission/run-a");
    assert_eq!(lines(&sub.join("all_preds.jsonl")).len(), 2);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sub.join("m.run-a.json")).expect("summary"))
            .expect("json");
    assert_eq!(summary["resolved_ids"], json!(["o__r-1"]));
    assert_eq!(summary["total_instances"], 2);
}

#[test]
fn a_directory_without_trajectories_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = LoadedRun::load(dir.path()).expect_err("not a run");
    assert!(err.to_string().contains("not a run directory"), "{err}");
}

/// Flipped means graded differently by two runs; a run that lacks the instance (or its
/// report) says nothing about it.
#[test]
fn only_graded_verdicts_count_as_flipped() {
    let root = tempfile::tempdir().expect("tempdir");
    let a = root.path().join("run-a");
    write_episode(&a, "o__r-1", 2, 2); // resolved
    write_episode(&a, "o__r-2", 2, 2); // resolved
    write_episode(&a, "o__r-3", 2, 2); // resolved
    let b = root.path().join("run-b");
    write_episode(&b, "o__r-1", 1, 2); // unresolved: flipped
    write_episode(&b, "o__r-3", 2, 2); // not graded below
                                       // An evaluation that did not finish has neither file.
    std::fs::remove_file(b.join("eval/o__r-3/report.json")).expect("remove report");
    std::fs::remove_file(b.join("eval/o__r-3/hardened.json")).expect("remove hardened");
    let runs = [
        LoadedRun::load(&a).expect("load a"),
        LoadedRun::load(&b).expect("load b"),
    ];
    assert_eq!(cwm_results::report::html::flipped_ids(&runs), ["o__r-1"]);
}

#[test]
fn rl_rewards_follow_the_hardened_verdict_unless_told_otherwise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("run-a");
    sample_run(dir.path());
    // o__r-1 passed officially, but its patch forged the markers.
    let forged = json!({"instance_id": "o__r-1", "resolved": false,
        "official_resolved": true, "flags": ["forged_markers"]});
    std::fs::write(root.join("eval/o__r-1/hardened.json"), forged.to_string()).expect("write");
    let runs = [LoadedRun::load(&root).expect("load")];
    let rewards = |verdict| {
        let out = dir.path().join("rl.jsonl");
        export_with(&runs, Format::Rl, Only::All, verdict, &out).expect("rl");
        let first: RlRecord = serde_json::from_str(&lines(&out)[0]).expect("rl");
        first.rewards
    };
    let hardened = rewards(Verdict::Hardened);
    assert_eq!(hardened.resolved, 0.0);
    assert_eq!(hardened.verdict, "hardened");
    assert!(hardened.official_resolved);
    assert_eq!(hardened.hardened_flags, vec![cwm_eval::Flag::ForgedMarkers]);
    assert_eq!(rewards(Verdict::Official).resolved, 1.0);
    // The default export is the hardened one, and --only resolved follows it.
    let out = dir.path().join("resolved.jsonl");
    let stats = export(&runs, Format::Sft, Only::Resolved, &out).expect("resolved");
    assert_eq!((stats.written, stats.unresolved), (0, 2));
    // The HTML report marks the flagged instance, and only it.
    let report = dir.path().join("report");
    let files = write_report(&runs, &report).expect("report");
    let index = std::fs::read_to_string(&files.index).expect("index");
    assert_eq!(index.matches("⚑ flagged").count(), 1, "{index}");
    let page = |id: &str| {
        std::fs::read_to_string(report.join(format!("trajectories/run-a/{id}.html"))).expect("page")
    };
    assert!(page("o__r-1").contains("flags: forged_markers"));
    assert!(!page("o__r-2").contains("⚑ flagged"));
}
