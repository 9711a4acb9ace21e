//! The corpus for the differential grading test: test logs shaped like the ones real SWE-bench
//! Verified runs print, each tied to a real Verified instance (its repo, version, eval script
//! and FAIL_TO_PASS / PASS_TO_PASS lists), then damaged the ways real runs and hostile patches
//! damage them. Everything is drawn from one seeded RNG, so the corpus is the same on every
//! machine and a disagreement can be reproduced by its case id.

mod mutate;
mod runners;
mod trace;

use std::collections::{BTreeMap, BTreeSet};

use cwm_datasets::{Instance, Prediction};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use mutate::Mutation;

/// The corpus seed. Changing it gives a different but equally valid corpus.
pub const SEED: u64 = 0x5EBE_0502;

/// The twelve log parsers SWE-bench Verified names.
pub use cwm_parsers::VERIFIED_PARSERS as PARSERS;

/// The fewest cases any parser gets, however few instances use it.
const MIN_CASES_PER_PARSER: usize = 150;
/// Cases per instance for the parsers with many instances.
const CASES_PER_INSTANCE: usize = 4;

/// What a runner reports for one test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Error,
    Skip,
    Xfail,
    Xpass,
    /// Not run at all (deselected, crashed before it, never collected).
    Missing,
}

impl Status {
    fn is_failure(self) -> bool {
        matches!(self, Status::Fail | Status::Error)
    }
}

/// One test as the runner prints it.
#[derive(Clone, Debug)]
pub struct Shown {
    /// The name in the runner's output (a Verified id, a completion of a truncated one, or
    /// a test the lists do not name).
    pub name: String,
    pub status: Status,
    /// Django: the `test_method (module.Class)` line printed above a docstring id.
    pub lead: Option<String>,
}

/// What the run directory's `report.json` holds once the instance is done.
#[derive(Clone, Debug)]
pub enum ReportFile {
    /// The grader's report (none when the grader failed).
    Graded,
    /// No report: the harness stopped before grading (timeout, patch or container failure).
    Absent,
    /// A damaged file with this text.
    Text(String),
}

pub struct Case {
    pub id: String,
    pub instance_id: String,
    pub parser: String,
    pub mutations: Vec<Mutation>,
    pub run_id: String,
    pub prediction: Prediction,
    /// `test_output.txt`; `None` when the harness never got to run the tests.
    pub test_output: Option<String>,
    /// `run_instance.log`.
    pub instance_log: Option<String>,
    pub report_file: ReportFile,
    /// Bytes (not UTF-8) a run directory's `test_output.txt` and `run_instance.log` end
    /// with: binary output in the logs. Added after grading, so only the summary sees them.
    pub junk: Option<&'static [u8]>,
}

/// Binary tails for logs; the second carries an out-of-memory signature past the bad bytes.
const JUNK: [&[u8]; 2] = [
    b"\xff\xfe\x00\x80 binary \xc3\x28 output\n",
    b"\x89PNG\r\n\x1a\n\x00\x00\xff\nKilled\n",
];

pub struct Run {
    pub run_id: String,
    /// The instances the run was asked for (`full_dataset`).
    pub dataset_ids: Vec<String>,
    /// Every prediction of the run, the cases' and any others.
    pub predictions: Vec<Prediction>,
    /// Indices into [`Corpus::cases`].
    pub cases: Vec<usize>,
    /// Run-level shapes, for the tallies.
    pub shapes: Vec<&'static str>,
}

pub struct Corpus {
    pub cases: Vec<Case>,
    pub runs: Vec<Run>,
}

/// Builds the corpus from the Verified instances.
pub fn generate(instances: &[Instance], seed: u64) -> Corpus {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut by_parser: BTreeMap<&str, Vec<&Instance>> = BTreeMap::new();
    for inst in instances {
        if let Some(parser) = inst.log_parser.as_deref() {
            by_parser.entry(parser).or_default().push(inst);
        }
    }
    let mut cases = Vec::new();
    for parser in PARSERS {
        let insts = by_parser
            .get(parser)
            .unwrap_or_else(|| panic!("no Verified instance uses {parser}"));
        let count = (insts.len() * CASES_PER_INSTANCE).max(MIN_CASES_PER_PARSER);
        let truncated: Vec<&Instance> = insts
            .iter()
            .copied()
            .filter(|i| all_ids(i).any(|t| unbalanced(t)))
            .collect();
        let applicable: Vec<Mutation> = Mutation::ALL
            .iter()
            .copied()
            .filter(|m| m.applies_to(parser))
            .filter(|m| *m != Mutation::BracketIds || !truncated.is_empty())
            .collect();
        // Every mutation gets its share of each parser's cases, in a shuffled order.
        let mut plan: Vec<Mutation> = (0..count)
            .map(|k| applicable[k % applicable.len()])
            .collect();
        plan.shuffle(&mut rng);
        for (k, primary) in plan.into_iter().enumerate() {
            let mut inst = insts[k % insts.len()];
            if primary == Mutation::BracketIds && !truncated.is_empty() {
                inst = truncated[rng.gen_range(0..truncated.len())];
            }
            let mut mutations = vec![primary];
            if rng.gen_bool(0.3) {
                let extra = *Mutation::COMBINABLE
                    .choose(&mut rng)
                    .expect("combinable mutations");
                if extra != primary && extra.applies_to(parser) {
                    mutations.push(extra);
                }
            }
            let id = format!(
                "{:04}-{}-{}",
                cases.len(),
                inst.instance_id,
                labels(&mutations)
            );
            cases.push(make_case(id, inst, parser, mutations, &mut rng));
        }
    }
    let runs = group_into_runs(&mut cases, instances, &mut rng);
    Corpus { cases, runs }
}

fn labels(mutations: &[Mutation]) -> String {
    mutations
        .iter()
        .map(|m| m.label())
        .collect::<Vec<_>>()
        .join("+")
}

pub fn all_ids(inst: &Instance) -> impl Iterator<Item = &String> {
    inst.fail_to_pass.iter().chain(inst.pass_to_pass.iter())
}

/// A Verified id cut inside its parameter list (`test_x[a b]` recorded as `test_x[a`).
pub fn unbalanced(id: &str) -> bool {
    id.matches('[').count() > id.matches(']').count()
}

/// How the statuses of one case are drawn.
#[derive(Clone, Copy, Debug)]
enum Scenario {
    /// Every test passes.
    AllPass,
    /// The fix works: FAIL_TO_PASS pass, PASS_TO_PASS keep passing (a few skip or xfail).
    Gold,
    /// Nothing fixed.
    Base,
    /// Some FAIL_TO_PASS pass.
    Partial,
    /// The fix works but breaks PASS_TO_PASS tests.
    Regress,
    /// Skips, xfails and xpasses everywhere.
    Skips,
    /// Anything goes.
    Random,
}

fn draw_status(rng: &mut ChaCha8Rng, weights: &[(Status, u32)]) -> Status {
    let total: u32 = weights.iter().map(|(_, w)| w).sum();
    let mut pick = rng.gen_range(0..total);
    for (status, w) in weights {
        if pick < *w {
            return *status;
        }
        pick -= w;
    }
    unreachable!("weights cover the range")
}

fn statuses_for(
    scenario: Scenario,
    fail_to_pass: bool,
    rng: &mut ChaCha8Rng,
) -> &'static [(Status, u32)] {
    use Status::*;
    const ALL_PASS: &[(Status, u32)] = &[(Pass, 1)];
    const PASSING: &[(Status, u32)] = &[(Pass, 97), (Skip, 1), (Xfail, 1), (Xpass, 1)];
    const FAILING: &[(Status, u32)] = &[(Fail, 70), (Error, 20), (Missing, 10)];
    const HALF: &[(Status, u32)] = &[(Pass, 50), (Fail, 35), (Error, 10), (Missing, 5)];
    const BREAKING: &[(Status, u32)] = &[(Pass, 80), (Fail, 12), (Error, 5), (Missing, 3)];
    const SKIPS: &[(Status, u32)] = &[(Pass, 40), (Skip, 25), (Xfail, 20), (Xpass, 15)];
    const ANY: &[(Status, u32)] = &[
        (Pass, 30),
        (Fail, 15),
        (Error, 10),
        (Skip, 15),
        (Xfail, 10),
        (Xpass, 10),
        (Missing, 10),
    ];
    match (scenario, fail_to_pass) {
        (Scenario::AllPass, _) => ALL_PASS,
        (Scenario::Gold, _) => PASSING,
        (Scenario::Base, true) => FAILING,
        (Scenario::Base, false) => PASSING,
        (Scenario::Partial, true) => HALF,
        (Scenario::Partial, false) => PASSING,
        (Scenario::Regress, true) => PASSING,
        (Scenario::Regress, false) => BREAKING,
        (Scenario::Skips, _) => SKIPS,
        (Scenario::Random, _) => {
            if rng.gen_bool(0.5) {
                ANY
            } else {
                HALF
            }
        }
    }
}

/// The tests a runner prints for `inst`: every listed id (truncated ones as one or more
/// full names), a few tests the lists do not name, in a runner-like order.
fn shown_tests(
    inst: &Instance,
    parser: &str,
    scenario: Scenario,
    rng: &mut ChaCha8Rng,
) -> Vec<Shown> {
    let mut shown = Vec::new();
    let f2p: BTreeSet<&String> = inst.fail_to_pass.iter().collect();
    for id in all_ids(inst) {
        let weights = statuses_for(scenario, f2p.contains(id), rng);
        let status = draw_status(rng, weights);
        if unbalanced(id) {
            // The real name goes on past the cut; a cut name often covers several tests,
            // which usually (not always) end the same way.
            let n = rng.gen_range(1..=3);
            for k in 0..n {
                let s = if k == 0 || rng.gen_bool(0.8) {
                    status
                } else {
                    draw_status(rng, weights)
                };
                shown.push(Shown {
                    name: format!("{id}{}", completion(rng)),
                    status: s,
                    lead: None,
                });
            }
            continue;
        }
        let name = if matches!(parser, "parse_log_pylint" | "parse_log_requests") {
            absolute_option(id)
        } else {
            id.clone()
        };
        let lead =
            (parser == "parse_log_django" && !id.contains(" (")).then(|| django_lead(inst, rng));
        shown.push(Shown { name, status, lead });
    }
    for k in 0..rng.gen_range(0..4) {
        let weights = statuses_for(Scenario::Random, false, rng);
        let status = draw_status(rng, weights);
        shown.push(Shown {
            name: unlisted_name(inst, parser, k, rng),
            status,
            lead: None,
        });
    }
    runner_order(&mut shown, parser, rng);
    shown
}

/// The rest of a parameter list the dataset cut at its first space.
fn completion(rng: &mut ChaCha8Rng) -> String {
    const WORDS: &[&str] = &[
        "line collection]",
        "n'est pas un meta]",
        "+ b]",
        "- b]",
        "erg / (s cm2)]",
        "and b]",
        "0.5]",
        "photon /cm2/s/Hz) / erg]",
        "x]",
        "(1, 2)]",
        "ignored_*]",
        "is not None-False]",
    ];
    format!(" {}", WORDS.choose(rng).expect("words"))
}

/// pytest prints an absolute path where requests' and pylint's lists keep `/name` (their
/// parser keeps only the last path component of a `[/...]` parameter).
fn absolute_option(id: &str) -> String {
    match id.split_once("[/") {
        Some((main, rest)) if !rest.starts_with('/') && !rest.contains('*') => {
            format!("{main}[/testbed/tests/regrtest_data/{rest}")
        }
        _ => id.to_string(),
    }
}

/// The `test_method (module.Class)` line Django prints above a docstring description.
fn django_lead(inst: &Instance, rng: &mut ChaCha8Rng) -> String {
    let class = all_ids(inst)
        .filter_map(|t| t.split_once(" (").map(|(_, c)| c.trim_end_matches(')')))
        .next()
        .unwrap_or("tests.tests.DocTests")
        .to_string();
    let class = class
        .rsplit_once(".test_")
        .map_or(class.clone(), |(c, _)| c.to_string());
    format!("test_case_{} ({class})", rng.gen_range(0..1000))
}

/// A test in the same files that no list names.
fn unlisted_name(inst: &Instance, parser: &str, k: usize, rng: &mut ChaCha8Rng) -> String {
    let template = all_ids(inst).next().cloned().unwrap_or_default();
    match parser {
        "parse_log_django" => {
            let class = template
                .split_once(" (")
                .map_or("tests.tests.ExtraTests)".to_string(), |(_, c)| {
                    c.to_string()
                });
            format!("test_unlisted_{k} ({class}")
        }
        "parse_log_sympy" => format!("test_unlisted_{k}_{}", rng.gen_range(0..100)),
        _ => {
            let file = template.split("::").next().unwrap_or("tests/test_x.py");
            format!("{file}::test_unlisted_{k}")
        }
    }
}

/// Tests grouped by file as runners print them, otherwise in a shuffled order.
fn runner_order(shown: &mut [Shown], parser: &str, rng: &mut ChaCha8Rng) {
    shown.shuffle(rng);
    if parser != "parse_log_django" && parser != "parse_log_sympy" {
        shown.sort_by(|a, b| file_of(&a.name).cmp(file_of(&b.name)));
    }
}

pub fn file_of(name: &str) -> &str {
    name.split("::").next().unwrap_or(name)
}

/// Everything the generator decides for one case before it is written out.
pub struct Draft {
    pub parser: String,
    pub shown: Vec<Shown>,
    /// The test command's output and exit status.
    pub runner_output: String,
    pub exit_code: i32,
    /// Appended to the eval script's `$?` capture and echo (false: a script from before
    /// `record_test_exit_code`).
    pub record_exit_code: bool,
    /// Raw lines a patched `setup.py` prints while the eval script reinstalls the repo.
    pub install_output: String,
    /// Output that lands after the end marker (stdout and stderr read out of order).
    pub after_end_output: String,
    pub prediction: Prediction,
    pub test_output: Option<String>,
    pub instance_log: Option<String>,
    pub report_file: ReportFile,
    /// Whether the case's patch applied (false: no test output at all).
    pub applied: bool,
}

fn make_case(
    id: String,
    inst: &Instance,
    parser: &str,
    mutations: Vec<Mutation>,
    rng: &mut ChaCha8Rng,
) -> Case {
    let scenario = *[
        Scenario::AllPass,
        Scenario::AllPass,
        Scenario::Gold,
        Scenario::Base,
        Scenario::Partial,
        Scenario::Regress,
        Scenario::Skips,
        Scenario::Random,
    ]
    .choose(rng)
    .expect("scenarios");
    let shown = shown_tests(inst, parser, scenario, rng);
    let patch = model_patch(inst, rng);
    let mut draft = Draft {
        parser: parser.to_string(),
        shown,
        runner_output: String::new(),
        exit_code: 0,
        record_exit_code: true,
        install_output: String::new(),
        after_end_output: String::new(),
        prediction: Prediction {
            instance_id: inst.instance_id.clone(),
            model_name_or_path: String::new(),
            model_patch: Some(patch),
        },
        test_output: None,
        instance_log: None,
        report_file: ReportFile::Graded,
        applied: true,
    };
    let mut ordered = mutations.clone();
    ordered.sort();
    for m in &ordered {
        m.before_runner(&mut draft, inst, rng);
    }
    let (text, code) = runners::render(inst, parser, &draft.shown, rng);
    draft.runner_output = text;
    draft.exit_code = code;
    for m in &ordered {
        m.on_runner_output(&mut draft, inst, rng);
    }
    if draft.applied {
        draft.test_output = Some(trace::eval_log(inst, &draft, rng));
    }
    for m in &ordered {
        m.on_log(&mut draft, inst, rng);
    }
    if draft.instance_log.is_none() {
        draft.instance_log = Some(trace::instance_log(inst, &draft, rng));
    }
    Case {
        id,
        instance_id: inst.instance_id.clone(),
        parser: parser.to_string(),
        mutations,
        run_id: String::new(),
        prediction: draft.prediction,
        test_output: draft.test_output,
        instance_log: draft.instance_log,
        report_file: draft.report_file,
        junk: None,
    }
}

/// The gold patch, or a small patch of the model's own (sometimes on top of the gold one).
fn model_patch(inst: &Instance, rng: &mut ChaCha8Rng) -> String {
    // Code may well mention what the infra-failure signatures look for.
    let body = *[
        "+# patched by the model\n",
        "+try:\n+    import yaml\n+except ModuleNotFoundError:\n+    yaml = None\n",
        "+# retry when the OS says 'Cannot allocate memory'\n",
        "+MESSAGE = 'Could not resolve host'\n",
    ]
    .choose(rng)
    .expect("bodies");
    let own = || {
        let file = inst
            .patch
            .lines()
            .find_map(|l| l.strip_prefix("+++ b/"))
            .unwrap_or("setup.py")
            .to_string();
        format!(
            "diff --git a/{file} b/{file}\n--- a/{file}\n+++ b/{file}\n@@ -1,3 +1,4 @@\n \
             # -*- coding: utf-8 -*-\n{body} \n import os\n"
        )
    };
    match rng.gen_range(0..10) {
        0..=6 => inst.patch.clone(),
        7 | 8 => own(),
        _ => format!("{}{}", inst.patch, own()),
    }
}

const MODELS: &[&str] = &[
    "cwm-32b",
    "facebook/cwm",
    "org/team/llama-3.1-8b-instruct",
    "SmolLM2-135M-Instruct.Q4_1",
    "gold",
];

/// Groups cases into runs of distinct instances, adds instances the run was asked for but
/// has no prediction of, and sometimes predictions outside the run's selection (a run
/// narrowed with `--instance_ids` keeps the whole predictions file).
fn group_into_runs(cases: &mut [Case], instances: &[Instance], rng: &mut ChaCha8Rng) -> Vec<Run> {
    let mut order: Vec<usize> = (0..cases.len()).collect();
    order.shuffle(rng);
    let mut runs: Vec<Run> = Vec::new();
    let mut open: Option<(Run, BTreeSet<String>, usize)> = None;
    for idx in order {
        let iid = cases[idx].instance_id.clone();
        let need_new = match &open {
            None => true,
            Some((run, ids, size)) => run.cases.len() >= *size || ids.contains(&iid),
        };
        if need_new {
            if let Some((run, _, _)) = open.take() {
                runs.push(run);
            }
            let run = Run {
                run_id: format!("run-{:03}", runs.len()),
                dataset_ids: Vec::new(),
                predictions: Vec::new(),
                cases: Vec::new(),
                shapes: Vec::new(),
            };
            open = Some((run, BTreeSet::new(), rng.gen_range(3..40)));
        }
        let (run, ids, _) = open.as_mut().expect("an open run");
        ids.insert(iid);
        run.cases.push(idx);
    }
    if let Some((run, _, _)) = open.take() {
        runs.push(run);
    }
    for run in &mut runs {
        let model = *MODELS.choose(rng).expect("models");
        let mut taken: BTreeSet<String> = BTreeSet::new();
        for &idx in &run.cases {
            let case = &mut cases[idx];
            case.run_id = run.run_id.clone();
            case.prediction.model_name_or_path = model.to_string();
            run.dataset_ids.push(case.instance_id.clone());
            run.predictions.push(case.prediction.clone());
            if rng.gen_bool(0.08) {
                case.junk = Some(JUNK[rng.gen_range(0..JUNK.len())]);
                if !run.shapes.contains(&"binary-junk-in-logs") {
                    run.shapes.push("binary-junk-in-logs");
                }
            }
            taken.insert(case.instance_id.clone());
        }
        let pick_other = |rng: &mut ChaCha8Rng, taken: &mut BTreeSet<String>| loop {
            let inst = &instances[rng.gen_range(0..instances.len())];
            if taken.insert(inst.instance_id.clone()) {
                return inst;
            }
        };
        let unpredicted = rng.gen_range(0..4);
        for _ in 0..unpredicted {
            let inst = pick_other(rng, &mut taken);
            run.dataset_ids.push(inst.instance_id.clone());
        }
        if unpredicted > 0 {
            run.shapes.push("instances-without-prediction");
        }
        if rng.gen_bool(0.12) {
            for _ in 0..rng.gen_range(1..4) {
                let inst = pick_other(rng, &mut taken);
                let patch = match rng.gen_range(0..3) {
                    0 => None,
                    1 => Some(String::new()),
                    _ => Some(inst.patch.clone()),
                };
                run.predictions.push(Prediction {
                    instance_id: inst.instance_id.clone(),
                    model_name_or_path: model.to_string(),
                    model_patch: patch,
                });
            }
            run.shapes.push("predictions-outside-selection");
        }
        if run.cases.iter().any(|&i| {
            cases[i]
                .prediction
                .model_patch
                .as_deref()
                .is_none_or(str::is_empty)
        }) {
            run.shapes.push("empty-or-null-patches");
        }
        if model.contains('/') {
            run.shapes.push("model-name-with-slash");
        }
        run.dataset_ids.shuffle(rng);
        run.predictions.shuffle(rng);
        if run.shapes.is_empty() {
            run.shapes.push("plain");
        }
    }
    runs
}
