//! `cwm-bench export` and `cwm-bench report` end to end over two real graded runs on the
//! fixtures (the oracle, and a scripted replay that never submits), checked against the
//! trajectories and eval reports; the HTML is opened in headless Chromium.
//! Needs Docker with the fixture images (`scripts/setup`) and Debian's `chromium` (`scripts/setup-tests`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use cwm_agent::{read_trajectory, Message, Role, Trajectory};
use cwm_eval::InstanceReport;
use cwm_protocol::chat::{assistant_content, render_cwm_prompt, EOT, GENERATION_PREFIX};
use cwm_results::export::{CwmDump, RlRecord, SftRecord};

fn cwm_bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cwm-bench"))
}

fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("cwm-bench runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Run ids unique to this process: `cwm-bench run` removes leftover containers by run id, so
/// a shared id could touch another test's containers.
fn run_id(name: &str) -> String {
    format!("report-{name}-{}", std::process::id())
}

/// The two runs, made once per test binary: the oracle and the give-up replay.
fn runs() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-runs");
        // Only this binary uses this directory; start clean so old runs never resume.
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("runs dir");
        let script = root.join("give-up.txt");
        std::fs::write(
            &script,
            "ok\n</think>\n<tool: bash>\ntrue\n</tool>\n---\nok\n</think>\nI give up.\n",
        )
        .expect("script");
        for (name, model) in [
            ("oracle", "oracle".to_string()),
            ("empty", format!("replay:{}", script.display())),
        ] {
            ok(cwm_bench()
                .args([
                    "run",
                    "--quiet",
                    "--evaluate",
                    "--model",
                    &model,
                    "--run-id",
                ])
                .arg(run_id(name))
                .arg("--runs-dir")
                .arg(&root));
        }
        root
    })
}

fn run_dirs() -> [PathBuf; 2] {
    [runs().join(run_id("oracle")), runs().join(run_id("empty"))]
}

fn ids(run: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(run.join("trajectories"))
        .expect("trajectories")
        .map(|e| {
            let name = e.expect("entry").file_name().to_string_lossy().into_owned();
            name.trim_end_matches(".jsonl").to_string()
        })
        .collect();
    ids.sort();
    ids
}

fn trajectory(run: &Path, id: &str) -> Trajectory {
    read_trajectory(&run.join("trajectories").join(format!("{id}.jsonl"))).expect("trajectory")
}

/// The official report; an instance 5.x writes none for (the replay's empty patches) must
/// still have finished its evaluation, and grades as not resolved.
fn report(run: &Path, id: &str) -> InstanceReport {
    let dir = run.join("eval").join(id);
    if dir.join("report.json").exists() {
        return InstanceReport::read(&dir.join("report.json")).expect("report.json");
    }
    let hardened = cwm_eval::Hardened::read(&dir.join("hardened.json")).expect("hardened.json");
    assert!(
        hardened.error.is_some(),
        "{id}: no report.json and no reason"
    );
    InstanceReport::ungraded(id, true)
}

/// Every `(run, instance)` pair in the order exports write them.
fn episodes() -> Vec<(PathBuf, String)> {
    run_dirs()
        .into_iter()
        .flat_map(|run| ids(&run).into_iter().map(move |id| (run.clone(), id)))
        .collect()
}

fn export(format: &str, only: &str, out: &Path) -> Vec<String> {
    ok(cwm_bench()
        .args(["export", "--format", format, "--only", only, "--out"])
        .arg(out)
        .args(run_dirs()));
    std::fs::read_to_string(out)
        .expect("export file")
        .lines()
        .map(str::to_string)
        .collect()
}

/// The conversation rebuilt as docs/trajectory.md describes it.
fn conversation(t: &Trajectory) -> Vec<Message> {
    let mut messages = t.header.messages.clone();
    for turn in &t.turns {
        messages.push(Message::new(Role::Assistant, turn.raw.clone()));
        messages.extend(turn.observation.clone());
    }
    messages
}

fn f2p_fraction(r: &InstanceReport) -> f64 {
    let Some(s) = &r.tests_status else { return 0.0 };
    let total = s.fail_to_pass.success.len() + s.fail_to_pass.failure.len();
    if total == 0 {
        return f64::from(u8::from(r.resolved));
    }
    s.fail_to_pass.success.len() as f64 / total as f64
}

#[test]
fn sft_export_is_the_conversation_the_model_saw() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = export("sft", "all", &dir.path().join("sft.jsonl"));
    let expected = episodes();
    assert_eq!(lines.len(), expected.len());
    for (line, (run, id)) in lines.iter().zip(&expected) {
        let record: SftRecord = serde_json::from_str(line).expect("typed sft record");
        let t = trajectory(run, id);
        assert_eq!(record.messages, conversation(&t), "{id}");
        let value: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(value["messages"][0]["role"], "system");
        let tool_turns = t.turns.iter().filter(|t| t.call.is_some()).count();
        let tool_roles = record
            .messages
            .iter()
            .filter(|m| matches!(m.role, Role::Tool(_)))
            .count();
        assert_eq!(
            tool_roles, tool_turns,
            "{id}: one `tool: NAME` message per call"
        );
    }
}

#[test]
fn rl_export_carries_steps_rewards_and_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = export("rl", "all", &dir.path().join("rl.jsonl"));
    let expected = episodes();
    assert_eq!(lines.len(), expected.len());
    let mut resolved = 0;
    for (line, (run, id)) in lines.iter().zip(&expected) {
        let record: RlRecord = serde_json::from_str(line).expect("typed rl record");
        let t = trajectory(run, id);
        let r = report(run, id);
        assert_eq!(record.instance_id, *id);
        assert_eq!(record.prompt, t.header.messages);
        assert_eq!(record.steps.len(), t.turns.len());
        for (step, turn) in record.steps.iter().zip(&t.turns) {
            assert_eq!(step.action, turn.raw);
            assert_eq!(
                step.observation,
                turn.observation.as_ref().map(|m| m.content.clone())
            );
            assert_eq!(
                (step.tokens_in, step.tokens_out),
                (turn.tokens_in, turn.tokens_out)
            );
        }
        assert_eq!(
            record.rewards.resolved,
            if r.resolved { 1.0 } else { 0.0 },
            "{id}"
        );
        assert_eq!(record.rewards.f2p_fraction, f2p_fraction(&r), "{id}");
        assert_eq!(
            record.rewards.patch_applied, r.patch_successfully_applied,
            "{id}"
        );
        let config: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(run.join("config.json")).expect("config"),
        )
        .expect("config json");
        assert_eq!(record.config, config);
        assert_eq!(
            record.patch,
            t.footer.as_ref().and_then(|f| f.patch.clone())
        );
        assert!(
            !record.instance.fail_to_pass.is_empty(),
            "{id}: instance metadata"
        );
        resolved += usize::from(r.resolved);
    }
    // The oracle resolves every fixture, the replay none.
    assert_eq!(resolved, ids(&run_dirs()[0]).len());
}

#[test]
fn cwm_export_rebuilds_the_prompt_and_holds_the_verdict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = export("cwm", "all", &dir.path().join("cwm.jsonl"));
    let expected = episodes();
    assert_eq!(lines.len(), expected.len());
    for (line, (run, id)) in lines.iter().zip(&expected) {
        let dump: CwmDump = serde_json::from_str(line).expect("typed cwm dump");
        let value: serde_json::Value = serde_json::from_str(line).expect("json");
        assert!(value["rollouts"][0]["traj"]["transitions"][0]["action_str"].is_string());
        let t = trajectory(run, id);
        let r = report(run, id);
        let rollout = &dump.rollouts[0];
        assert_eq!(rollout.outcomes.pass, r.resolved, "{id}");
        let transitions = &rollout.traj.transitions;
        assert_eq!(transitions.len(), t.turns.len() + 1);
        let last = transitions.last().expect("transitions");
        assert!(last.terminal);
        assert_eq!(last.info.instance_id, *id);
        assert_eq!(
            last.info.pred_patch,
            t.footer.as_ref().and_then(|f| f.patch.clone())
        );
        assert_eq!(last.outcomes.get("pass"), Some(&r.resolved));
        assert_eq!(last.rewards, vec![if r.resolved { 1.0 } else { 0.0 }]);
        assert!(transitions[..transitions.len() - 1]
            .iter()
            .all(|tr| !tr.terminal));
        // Observations and actions concatenated are the CWM prompt of the whole conversation.
        let mut text: String = transitions
            .iter()
            .map(|tr| format!("{}{}", tr.action_str, tr.observation_str))
            .collect();
        if last.observation_str.is_empty() {
            text.push_str(EOT);
            text.push_str(GENERATION_PREFIX);
        }
        let messages: Vec<Message> = conversation(&t)
            .into_iter()
            .map(|m| match m.role {
                Role::Assistant => Message::new(Role::Assistant, assistant_content(&m.content)),
                _ => m,
            })
            .collect();
        assert_eq!(text, render_cwm_prompt(&messages), "{id}");
    }
}

#[test]
fn only_resolved_keeps_resolved_episodes_and_needs_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = export("sft", "resolved", &dir.path().join("resolved.jsonl"));
    let resolved: Vec<(PathBuf, String)> = episodes()
        .into_iter()
        .filter(|(run, id)| report(run, id).resolved)
        .collect();
    assert_eq!(lines.len(), resolved.len());
    assert!(!lines.is_empty());
    // A run without eval reports cannot be filtered by verdict.
    let ungraded = dir.path().join("ungraded");
    std::fs::create_dir_all(ungraded.join("trajectories")).expect("mkdir");
    let source = &run_dirs()[1];
    let id = &ids(source)[0];
    std::fs::copy(
        source.join("trajectories").join(format!("{id}.jsonl")),
        ungraded.join("trajectories").join(format!("{id}.jsonl")),
    )
    .expect("copy");
    let out = cwm_bench()
        .args(["export", "--format", "rl", "--only", "resolved", "--out"])
        .arg(dir.path().join("x.jsonl"))
        .arg(&ungraded)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no eval report") && err.contains("--evaluate"),
        "{err}"
    );
    assert!(
        !dir.path().join("x.jsonl").exists(),
        "nothing written on error"
    );
}

fn write_report() -> tempfile::TempDir {
    let out = tempfile::tempdir().expect("tempdir");
    ok(cwm_bench()
        .arg("report")
        .args(run_dirs())
        .arg("--out")
        .arg(out.path()));
    out
}

#[test]
fn leaderboard_and_submission_match_the_eval_reports() {
    let dir = write_report();
    let out = dir.path();
    let csv = std::fs::read_to_string(out.join("leaderboard.csv")).expect("csv");
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    assert_eq!(rows.len(), 3, "{csv}");
    for (row, run) in rows[1..].iter().zip(run_dirs()) {
        let ids = ids(&run);
        let resolved = ids.iter().filter(|id| report(&run, id).resolved).count();
        assert_eq!(
            row[col("run_id")],
            run.file_name().expect("name").to_string_lossy()
        );
        assert_eq!(row[col("resolved")], resolved.to_string());
        assert_eq!(row[col("total")], ids.len().to_string());
        let turns: usize = ids.iter().map(|id| trajectory(&run, id).turns.len()).sum();
        let mean = turns as f64 / ids.len() as f64;
        assert_eq!(row[col("mean_turns")], format!("{mean:.2}"));
    }
    let md = std::fs::read_to_string(out.join("leaderboard.md")).expect("md");
    let (oracle, empty) = (run_id("oracle"), run_id("empty"));
    assert!(
        md.contains(&format!("| 1 | {oracle} |")) && md.contains(&format!("| 2 | {empty} |")),
        "{md}"
    );

    for run in run_dirs() {
        let sub = out.join("submission").join(run.file_name().expect("name"));
        let preds = |path: &Path| -> BTreeMap<String, serde_json::Value> {
            std::fs::read_to_string(path)
                .expect("preds")
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).expect("json");
                    (v["instance_id"].as_str().expect("id").to_string(), v)
                })
                .collect()
        };
        assert_eq!(
            preds(&sub.join("all_preds.jsonl")),
            preds(&run.join("preds.jsonl"))
        );
        let summary_file = std::fs::read_dir(&sub)
            .expect("ls")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|e| e == "json"))
            .expect("run summary json");
        let read = |p: &Path| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json")
        };
        assert_eq!(read(&summary_file), read(&run.join("summary.json")));
        for id in ids(&run) {
            // Exactly where the run has an official report (none for empty patches).
            assert_eq!(
                sub.join("logs").join(&id).join("report.json").exists(),
                run.join("eval").join(&id).join("report.json").exists()
            );
            assert!(sub.join("trajs").join(format!("{id}.jsonl")).exists());
        }
    }
}

fn chromium(args: &[&str], page: &Path) -> Output {
    let profile = tempfile::tempdir().expect("profile dir");
    Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect(
            "chromium is installed (Debian package `chromium`, installed by scripts/setup-tests)",
        )
}

/// The screenshot has more than one colour, so something was drawn.
fn assert_not_blank(png_path: &Path) {
    let file = std::fs::File::open(png_path).expect("screenshot written");
    let mut reader = png::Decoder::new(file).read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let pixels = &buf[..info.buffer_size()];
    let px = info.color_type.samples();
    let distinct: std::collections::HashSet<&[u8]> = pixels.chunks(px).collect();
    assert!(distinct.len() > 10, "{} looks blank", png_path.display());
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn html_report_renders_in_chromium() {
    let dir = write_report();
    let out = dir.path();
    let index = out.join("index.html");
    let html = std::fs::read_to_string(&index).expect("index");
    for external in ["<script", "<link", "src=\"http", "href=\"http"] {
        assert!(
            !html.contains(external),
            "index.html must be self-contained"
        );
    }
    let dom = chromium(&["--dump-dom"], &index);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        count(&dom, "class=\"run-row\""),
        2,
        "one leaderboard row per run"
    );
    let n = ids(&run_dirs()[0]).len();
    // Every fixture flipped (oracle resolved, replay not) and is listed in the instance table.
    assert_eq!(count(&dom, "class=\"instance-row\""), 2 * n);
    assert_eq!(count(&dom, "<svg"), 4, "four charts");
    let oracle = run_id("oracle");
    assert!(dom.contains(&format!("data-run=\"{oracle}\"")) && dom.contains("100.0"));

    let run = &run_dirs()[0];
    let id = &ids(run)[0];
    let page = out
        .join("trajectories")
        .join(&oracle)
        .join(format!("{id}.html"));
    let href = format!("trajectories/{oracle}/{id}.html");
    assert!(html.contains(&href), "linked from the index");
    let dom = chromium(&["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&dom.stdout);
    let t = trajectory(run, id);
    assert_eq!(count(&dom, "<details class=\"turn\""), t.turns.len());
    let r = report(run, id);
    let tests = r.tests_status.as_ref().expect("graded");
    let graded = tests.fail_to_pass.success.len() + tests.pass_to_pass.success.len();
    assert!(count(&dom, "class=\"test-row\"") >= graded);
    assert!(
        count(&dom, "class=\"add\"") > 0,
        "the patch is a coloured diff"
    );

    for (name, target) in [("index", &index), ("trajectory", &page)] {
        let shot = out.join(format!("{name}.png"));
        chromium(
            &[
                &format!("--screenshot={}", shot.display()),
                "--window-size=1200,900",
            ],
            target,
        );
        assert_not_blank(&shot);
    }
}
