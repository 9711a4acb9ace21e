//! The ways real runs and hostile patches damage a test log, applied to a case's draft in
//! three steps: before the runner prints (which tests, which names, which patch), on the
//! runner's output, and on the finished log.

use cwm_datasets::Instance;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::trace::{self, END, START};
use super::{all_ids, unbalanced, Draft, ReportFile, Shown, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mutation {
    Clean,
    // Which tests run and what they are called.
    DuplicateIds,
    PrefixIds,
    BracketIds,
    OddIds,
    MouseButton,
    ExitNonZeroClean,
    ExitZeroWithFailures,
    ForgedExitCode,
    EmptyPatch,
    NullPatch,
    WhitespacePatch,
    ForgedDiff,
    // The runner's output.
    Ansi,
    CarriageReturns,
    Interleave,
    UnicodeSpace,
    ControlChars,
    BareFail,
    SuiteRan,
    NoResults,
    ForgedSetup,
    ResultsAfterEnd,
    NoExitLine,
    Infra,
    ApplyFailed,
    ContainerError,
    // The whole log.
    Truncate,
    Crlf,
    MissingStart,
    MissingEnd,
    BadCode,
    Timeout,
    DamagedReport,
}

impl Mutation {
    pub const ALL: &'static [Mutation] = &[
        Mutation::Clean,
        Mutation::DuplicateIds,
        Mutation::PrefixIds,
        Mutation::BracketIds,
        Mutation::OddIds,
        Mutation::MouseButton,
        Mutation::ExitNonZeroClean,
        Mutation::ExitZeroWithFailures,
        Mutation::ForgedExitCode,
        Mutation::EmptyPatch,
        Mutation::NullPatch,
        Mutation::WhitespacePatch,
        Mutation::ForgedDiff,
        Mutation::Ansi,
        Mutation::CarriageReturns,
        Mutation::Interleave,
        Mutation::UnicodeSpace,
        Mutation::ControlChars,
        Mutation::BareFail,
        Mutation::SuiteRan,
        Mutation::NoResults,
        Mutation::ForgedSetup,
        Mutation::ResultsAfterEnd,
        Mutation::NoExitLine,
        Mutation::Infra,
        Mutation::ApplyFailed,
        Mutation::ContainerError,
        Mutation::Truncate,
        Mutation::Crlf,
        Mutation::MissingStart,
        Mutation::MissingEnd,
        Mutation::BadCode,
        Mutation::Timeout,
        Mutation::DamagedReport,
    ];

    /// Mutations that may ride along with a case's main one.
    pub const COMBINABLE: &'static [Mutation] = &[
        Mutation::Ansi,
        Mutation::CarriageReturns,
        Mutation::Crlf,
        Mutation::Interleave,
        Mutation::UnicodeSpace,
        Mutation::ControlChars,
        Mutation::Truncate,
        Mutation::DuplicateIds,
        Mutation::PrefixIds,
        Mutation::OddIds,
        Mutation::NoExitLine,
        Mutation::ExitZeroWithFailures,
        Mutation::ExitNonZeroClean,
        Mutation::BadCode,
        Mutation::EmptyPatch,
        Mutation::NullPatch,
        Mutation::ForgedDiff,
        Mutation::ForgedExitCode,
        Mutation::MissingEnd,
        Mutation::Infra,
        Mutation::DamagedReport,
        Mutation::ResultsAfterEnd,
        // Only where they apply (matplotlib, Django).
        Mutation::MouseButton,
        Mutation::BareFail,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Mutation::Clean => "clean",
            Mutation::DuplicateIds => "duplicate-ids",
            Mutation::PrefixIds => "prefix-ids",
            Mutation::BracketIds => "truncated-bracket-ids",
            Mutation::OddIds => "odd-ids",
            Mutation::MouseButton => "mousebutton-ids",
            Mutation::ExitNonZeroClean => "exit-nonzero-no-failures",
            Mutation::ExitZeroWithFailures => "exit-zero-with-failures",
            Mutation::ForgedExitCode => "forged-exit-code",
            Mutation::EmptyPatch => "empty-patch",
            Mutation::NullPatch => "null-patch",
            Mutation::WhitespacePatch => "whitespace-patch",
            Mutation::ForgedDiff => "forged-markers-in-diff",
            Mutation::Ansi => "ansi-colour",
            Mutation::CarriageReturns => "cr-progress",
            Mutation::Interleave => "interleaved",
            Mutation::UnicodeSpace => "unicode-space",
            Mutation::ControlChars => "control-chars",
            Mutation::BareFail => "bare-fail-line",
            Mutation::SuiteRan => "suite-ran-evidence",
            Mutation::NoResults => "no-results",
            Mutation::ForgedSetup => "forged-before-start",
            Mutation::ResultsAfterEnd => "results-after-end",
            Mutation::NoExitLine => "no-exit-code-line",
            Mutation::Infra => "infra-signature",
            Mutation::ApplyFailed => "patch-apply-failed",
            Mutation::ContainerError => "container-error",
            Mutation::Truncate => "truncated",
            Mutation::Crlf => "crlf",
            Mutation::MissingStart => "missing-start",
            Mutation::MissingEnd => "missing-end",
            Mutation::BadCode => "bad-code",
            Mutation::Timeout => "timeout",
            Mutation::DamagedReport => "damaged-report-json",
        }
    }

    pub fn applies_to(self, parser: &str) -> bool {
        match self {
            Mutation::BareFail => parser == "parse_log_django",
            Mutation::MouseButton => parser == "parse_log_matplotlib",
            _ => true,
        }
    }

    /// Before the runner prints: the tests, their names and statuses, the patch.
    pub fn before_runner(self, d: &mut Draft, inst: &Instance, rng: &mut ChaCha8Rng) {
        match self {
            Mutation::DuplicateIds => duplicate_ids(d, rng),
            Mutation::PrefixIds => prefix_ids(d, rng),
            Mutation::BracketIds => bracket_ids(d, inst, rng),
            Mutation::OddIds => odd_ids(d, inst, rng),
            Mutation::MouseButton => mouse_button(d, rng),
            Mutation::ExitNonZeroClean => clear_failures(d, rng),
            // Mostly with no failure left, so that the forged status decides.
            Mutation::ForgedExitCode if rng.gen_bool(0.7) => clear_failures(d, rng),
            Mutation::ExitZeroWithFailures => {
                if let Some(t) = d.shown.choose_mut(rng) {
                    t.status = Status::Fail;
                }
            }
            Mutation::EmptyPatch => d.prediction.model_patch = Some(String::new()),
            Mutation::NullPatch => d.prediction.model_patch = None,
            Mutation::WhitespacePatch => {
                let ws = *["\n", "   ", " \t\n  \n", "\r\n"]
                    .choose(rng)
                    .expect("whitespace");
                d.prediction.model_patch = Some(ws.to_string());
            }
            Mutation::ForgedDiff => forged_diff(d, inst, rng),
            _ => {}
        }
    }

    /// On the test command's output (and what the eval script prints around it).
    pub fn on_runner_output(self, d: &mut Draft, inst: &Instance, rng: &mut ChaCha8Rng) {
        match self {
            Mutation::ExitNonZeroClean => {
                d.exit_code = *[1, 2, 3, 4, 5, 124, 137, 139, 255]
                    .choose(rng)
                    .expect("codes");
            }
            Mutation::ExitZeroWithFailures => d.exit_code = 0,
            Mutation::ForgedExitCode => forged_exit_code(d, rng),
            Mutation::Ansi => d.runner_output = map_lines(&d.runner_output, rng, 0.5, ansi_line),
            Mutation::CarriageReturns => carriage_returns(d, rng),
            Mutation::Interleave => interleave(d, rng),
            Mutation::UnicodeSpace => {
                d.runner_output = map_lines(&d.runner_output, rng, 0.3, unicode_space_line)
            }
            Mutation::ControlChars => control_chars(d, rng),
            Mutation::BareFail => bare_fail(d, rng),
            Mutation::SuiteRan => suite_ran(d, rng),
            Mutation::NoResults => {
                d.runner_output = crash_output(&d.parser, rng);
                d.exit_code = *[1, 2, 4, 139].choose(rng).expect("codes");
            }
            Mutation::ForgedSetup => forged_setup(d, rng),
            Mutation::ResultsAfterEnd => results_after_end(d, rng),
            Mutation::NoExitLine => d.record_exit_code = false,
            Mutation::Infra => infra(d, rng),
            Mutation::ApplyFailed => {
                d.applied = false;
                d.report_file = ReportFile::Absent;
                let patch = d.prediction.model_patch.clone().unwrap_or_default();
                let file = trace::diff_files(&patch)
                    .into_iter()
                    .next()
                    .unwrap_or("setup.py".into());
                let detail = format!(
                    "patching file {file}\nHunk #1 FAILED at {}.\n1 out of 1 hunk FAILED -- saving rejects to file {file}.rej\n",
                    rng.gen_range(10..900)
                );
                let mut what = String::new();
                for cmd in [
                    "git apply --verbose",
                    "git apply --verbose --3way",
                    "git apply --verbose --reject",
                    "patch --batch --forward --fuzz=5 -p1 -i",
                ] {
                    what.push_str(&format!("Failed to apply patch to container: {cmd}\n"));
                }
                what.push_str(&format!(">>>>> Patch Apply Failed:\n{detail}"));
                d.instance_log = Some(trace::instance_log_error(
                    inst,
                    &what,
                    &format!(">>>>> Patch Apply Failed:\n{detail}"),
                    rng,
                ));
            }
            Mutation::ContainerError => {
                d.applied = false;
                d.report_file = ReportFile::Absent;
                let cause = *[
                    "Error response from daemon: Conflict. The container name \"/sweb.eval.x\" is already in use",
                    "Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: Cannot allocate memory",
                    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
                    "Image swebench/sweb.eval.x86_64.missing:latest not found",
                ]
                .choose(rng)
                .expect("causes");
                let iid = &inst.instance_id;
                d.instance_log = Some(trace::instance_log_error(
                    inst,
                    &format!("Error creating container for {iid}: 500 Server Error: Internal Server Error (\"{cause}\")"),
                    cause,
                    rng,
                ));
            }
            _ => {}
        }
    }

    /// On the finished `test_output.txt` and the run directory.
    pub fn on_log(self, d: &mut Draft, inst: &Instance, rng: &mut ChaCha8Rng) {
        match self {
            Mutation::DamagedReport => damaged_report(d, inst, rng),
            Mutation::Timeout => {
                if let Some(log) = d.test_output.take() {
                    d.test_output = Some(timeout(log, rng));
                    d.report_file = ReportFile::Absent;
                    d.instance_log = Some(trace::instance_log_error(
                        inst,
                        &format!("Test runtime: 1800.{:02} seconds", rng.gen_range(0..100)),
                        "Test timed out after 1800 seconds.",
                        rng,
                    ));
                }
            }
            _ => {}
        }
        let Some(log) = d.test_output.as_mut() else {
            return;
        };
        match self {
            Mutation::Truncate => {
                let cut = truncation_point(log, rng);
                log.truncate(cut);
            }
            Mutation::Crlf => {
                *log = if rng.gen_bool(0.6) {
                    log.replace('\n', "\r\n")
                } else {
                    // Only the part after the start marker (the container's pty side).
                    match log.find(START) {
                        Some(at) => format!("{}{}", &log[..at], log[at..].replace('\n', "\r\n")),
                        None => log.replace('\n', "\r\n"),
                    }
                };
            }
            Mutation::MissingStart => {
                *log = log.replacen(&format!("+ : '{START}'\n"), "", 1);
            }
            Mutation::MissingEnd => {
                let marker = format!("+ : '{END}'\n");
                let choice = rng.gen_range(0..3);
                *log = if choice == 0 {
                    log.replacen(&marker, "", 1)
                } else if choice == 1 {
                    // The only end marker is one printed before the start marker.
                    let without = log.replacen(&marker, "", 1);
                    match without.find(&format!("+ : '{START}'")) {
                        Some(at) => format!("{}{END}\n{}", &without[..at], &without[at..]),
                        None => without,
                    }
                } else {
                    // The run died at the end of the tests: nothing after them.
                    match log.find(&marker) {
                        Some(at) => log[..at].to_string(),
                        None => log.clone(),
                    }
                };
            }
            Mutation::BadCode => {
                let code = *[
                    ">>>>> Patch Apply Failed",
                    ">>>>> Reset Failed",
                    ">>>>> Tests Errored",
                    ">>>>> Tests Timed Out",
                ]
                .choose(rng)
                .expect("codes");
                let at = line_start_near(log, rng.gen_range(0..=log.len()));
                let text = match rng.gen_range(0..3) {
                    0 => format!("{code}\n"),
                    1 => format!("print('{code}')\n"),
                    _ => format!("{code}: see the log\n"),
                };
                log.insert_str(at, &text);
            }
            _ => {}
        }
    }
}

fn map_lines(
    text: &str,
    rng: &mut ChaCha8Rng,
    p: f64,
    f: fn(&str, &mut ChaCha8Rng) -> String,
) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for (k, line) in text.split('\n').enumerate() {
        if k > 0 {
            out.push('\n');
        }
        if !line.is_empty() && rng.gen_bool(p) {
            out.push_str(&f(line, rng));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// The nearest line start at or before `at`.
fn line_start_near(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

fn char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// No failure left, so only the exit status says something went wrong.
fn clear_failures(d: &mut Draft, rng: &mut ChaCha8Rng) {
    for t in &mut d.shown {
        if t.status.is_failure() {
            t.status = *[Status::Pass, Status::Skip, Status::Xfail, Status::Missing]
                .choose(rng)
                .expect("statuses");
        }
    }
}

fn duplicate_ids(d: &mut Draft, rng: &mut ChaCha8Rng) {
    if d.shown.is_empty() {
        return;
    }
    for _ in 0..rng.gen_range(1..5) {
        let k = rng.gen_range(0..d.shown.len());
        let mut copy = d.shown[k].clone();
        copy.status = *[
            Status::Pass,
            Status::Fail,
            Status::Error,
            Status::Skip,
            Status::Xfail,
        ]
        .choose(rng)
        .expect("statuses");
        let at = if rng.gen_bool(0.5) {
            k + 1
        } else {
            rng.gen_range(0..=d.shown.len())
        };
        d.shown.insert(at, copy);
    }
}

fn prefix_ids(d: &mut Draft, rng: &mut ChaCha8Rng) {
    if d.shown.is_empty() {
        return;
    }
    for _ in 0..rng.gen_range(1..5) {
        let k = rng.gen_range(0..d.shown.len());
        let base = d.shown[k].name.clone();
        let status = *[Status::Pass, Status::Fail, Status::Error, Status::Xfail]
            .choose(rng)
            .expect("statuses");
        let longer = format!(
            "{base}{}",
            ["_extra", "2", "[1]", "[a b]", "_and_more", "::sub", "]"]
                .choose(rng)
                .expect("suffixes")
        );
        let cut = char_boundary(&base, rng.gen_range(base.len() / 2..=base.len().max(1)));
        let shorter = base[..cut].to_string();
        for name in [longer, shorter] {
            if !name.trim().is_empty() {
                let at = rng.gen_range(0..=d.shown.len());
                d.shown.insert(
                    at,
                    Shown {
                        name,
                        status,
                        lead: None,
                    },
                );
            }
        }
    }
}

fn bracket_ids(d: &mut Draft, inst: &Instance, rng: &mut ChaCha8Rng) {
    let cut: Vec<&String> = all_ids(inst).filter(|t| unbalanced(t)).collect();
    for id in cut.iter().take(12) {
        // More full names under the same cut name; some agree, some do not.
        for _ in 0..rng.gen_range(1..3) {
            let tail = *[
                " x]", " y z]", "]", " - b]", "+b]", "ü b]", " (2)]", "] extra",
            ]
            .choose(rng)
            .expect("tails");
            let status = *[
                Status::Pass,
                Status::Xfail,
                Status::Fail,
                Status::Skip,
                Status::Error,
            ]
            .choose(rng)
            .expect("statuses");
            let at = rng.gen_range(0..=d.shown.len());
            d.shown.insert(
                at,
                Shown {
                    name: format!("{id}{tail}"),
                    status,
                    lead: None,
                },
            );
        }
    }
}

fn odd_ids(d: &mut Draft, inst: &Instance, rng: &mut ChaCha8Rng) {
    let file = all_ids(inst)
        .next()
        .map(|t| super::file_of(t).to_string())
        .unwrap_or_else(|| "tests/test_x.py".into());
    let names: Vec<String> = match d.parser.as_str() {
        "parse_log_django" => vec![
            "test_ünïcode (app.tests.ÜnïcodeTests)".into(),
            "Ünïcode docstring with “quotes” and ellipsis…".into(),
            "test_brackets[a b] (app.tests.Tests)".into(),
            "test_x (app.tests.Tests) ... nested".into(),
            "--version is equivalent to version".into(),
            "ok_looking_name (app.tests.Tests)".into(),
        ],
        "parse_log_requests" | "parse_log_pylint" => vec![
            format!("{file}::test_path[/testbed/tests/data/a.py]"),
            format!("{file}::test_path[//server/share]"),
            format!("{file}::test_path[/a*b/c.py]"),
            format!("{file}::test_path[a]b]"),
            format!("{file}::test_path[a][b]"),
            format!("{file}::test_path[]"),
            format!("{file}::test_path[/]"),
        ],
        "parse_log_sympy" => vec![
            "test_ünïcode".into(),
            "test_a b".into(),
            "test_[x]".into(),
            "test_x\u{a0}y".into(),
        ],
        _ => vec![
            format!("{file}::test_ünïcode[α β]"),
            format!("{file}::test_space[a b]"),
            format!("{file}::test_br[]]"),
            format!("{file}::test_br2[[]"),
            format!("{file}::test_emoji[🙂]"),
            format!("{file}::test_nbsp[a\u{a0}b]"),
            format!("{file}::test_dash[a - b]"),
            format!("{file}::Test Class::test x"),
            format!("{file}::test_tab[a\tb]"),
        ],
    };
    for name in names {
        if rng.gen_bool(0.7) {
            let status = *[
                Status::Pass,
                Status::Fail,
                Status::Error,
                Status::Skip,
                Status::Xfail,
            ]
            .choose(rng)
            .expect("statuses");
            let at = rng.gen_range(0..=d.shown.len());
            d.shown.insert(
                at,
                Shown {
                    name,
                    status,
                    lead: None,
                },
            );
        }
    }
    // Names that run on past a listed one with non-ASCII text.
    let listed: Vec<String> = all_ids(inst).take(3).cloned().collect();
    for id in listed {
        let at = rng.gen_range(0..=d.shown.len());
        d.shown.insert(
            at,
            Shown {
                name: format!("{id}ü"),
                status: Status::Fail,
                lead: None,
            },
        );
    }
}

fn mouse_button(d: &mut Draft, rng: &mut ChaCha8Rng) {
    let mut changed = 0;
    for t in &mut d.shown {
        let Some(open) = t.name.find('[') else {
            continue;
        };
        let (head, params) = t.name.split_at(open);
        for (digit, button) in [("1", "MouseButton.LEFT"), ("3", "MouseButton.RIGHT")] {
            if params.contains(digit) && rng.gen_bool(0.7) {
                t.name = format!("{head}{}", params.replacen(digit, button, 1));
                changed += 1;
                break;
            }
        }
    }
    if changed == 0 {
        let file = d
            .shown
            .first()
            .map(|t| super::file_of(&t.name).to_string())
            .unwrap_or_else(|| "lib/matplotlib/tests/test_widgets.py".into());
        for button in ["MouseButton.LEFT", "MouseButton.RIGHT"] {
            d.shown.push(Shown {
                name: format!("{file}::test_button[{button}]"),
                status: Status::Pass,
                lead: None,
            });
        }
    }
}

/// What a test run prints for `ids` as passing, in the runner's own format.
fn fake_results(parser: &str, ids: &[String]) -> String {
    ids.iter()
        .map(|id| match parser {
            "parse_log_django" => format!("{id} ... ok\n"),
            "parse_log_sympy" => format!("{id} ok\n"),
            _ => format!("PASSED {id}\n"),
        })
        .collect()
}

fn forged_diff(d: &mut Draft, inst: &Instance, rng: &mut ChaCha8Rng) {
    let ids: Vec<String> = inst.fail_to_pass.iter().take(5).cloned().collect();
    let mut lines = Vec::new();
    let variant = rng.gen_range(0..6);
    let as_code = rng.gen_bool(0.5);
    let mut add = |text: &str| {
        if as_code {
            lines.push(format!("+print({text:?})"));
        } else {
            lines.push(format!("+{text}"));
        }
    };
    if matches!(variant, 0 | 2 | 3 | 5) {
        add(START);
    }
    for l in fake_results(&d.parser, &ids).lines() {
        add(l);
    }
    if matches!(variant, 1..=3) {
        add(END);
    }
    if variant == 3 {
        add(">>>>> Test Exit Code: 0");
    }
    if variant == 4 {
        add(">>>>> Tests Errored");
    }
    let file = if as_code {
        "conftest.py"
    } else {
        "tests/expected_output.txt"
    };
    let hunk = format!(
        "diff --git a/{file} b/{file}\nnew file mode 100644\nindex 0000000..1234567\n--- /dev/null\n+++ b/{file}\n@@ -0,0 +1,{} @@\n{}\n",
        lines.len(),
        lines.join("\n")
    );
    let patch = d.prediction.model_patch.get_or_insert_with(String::new);
    patch.push_str(&hunk);
}

fn forged_exit_code(d: &mut Draft, rng: &mut ChaCha8Rng) {
    if d.exit_code == 0 {
        d.exit_code = *[1, 2, 4].choose(rng).expect("codes");
    }
    let line = format!(
        ">>>>> Test Exit Code: {}",
        *[
            "0",
            "0",
            "-1",
            "00",
            "-0",
            " \t0",
            "\n0",
            "\n\n3",
            "\u{660}",
            "\u{663}",
            "\u{ff10}",
            "99999999999999999999",
            "+0",
            "0x1",
        ]
        .choose(rng)
        .expect("codes")
    );
    match rng.gen_range(0..3) {
        0 => d.install_output.push_str(&format!("{line}\n")),
        1 => {
            let patch = d.prediction.model_patch.get_or_insert_with(String::new);
            patch.push_str(&format!(
                "diff --git a/setup.py b/setup.py\n--- a/setup.py\n+++ b/setup.py\n@@ -1,1 +1,2 @@\n import os\n+print('{line}')\n"
            ));
        }
        _ => {
            // Printed by the tests themselves, inside the marked region.
            d.runner_output = format!("{line}\n{}", d.runner_output);
        }
    }
}

fn ansi_line(line: &str, rng: &mut ChaCha8Rng) -> String {
    const CODES: &[&str] = &[
        "\x1b[32m",
        "\x1b[31m",
        "\x1b[1m",
        "\x1b[0m",
        "\x1b[1;31m",
        "\x1b[32;1m",
        "\x1b[33m",
        "\x1b[36m",
        "\x1b[0;32m",
        "\x1b[m",
    ];
    let open = *CODES.choose(rng).expect("codes");
    let close = *["\x1b[0m", "\x1b[m", "\x1b[39m"]
        .choose(rng)
        .expect("codes");
    let first = line.split(' ').next().unwrap_or_default();
    match rng.gen_range(0..5) {
        // The status word coloured.
        0 => format!("{open}{first}{close}{}", &line[first.len()..]),
        // Only the reset left after the status word (the opening code cut off).
        4 => format!("{first}{close}{}", &line[first.len()..]),
        // The whole line.
        1 => format!("{open}{line}{close}"),
        // A bold prefix then colour (pytest's `\x1b[1m\x1b[31m`).
        2 => format!("\x1b[1m{open}{line}{close}"),
        // The last word coloured (Django's ok / sympy's ok).
        _ => match line.rsplit_once(' ') {
            Some((head, last)) => format!("{head} {open}{last}{close}"),
            None => format!("{open}{line}{close}"),
        },
    }
}

fn carriage_returns(d: &mut Draft, rng: &mut ChaCha8Rng) {
    d.install_output.push_str(
        "Collecting wheel\r\n  Downloading wheel-0.43.0.whl (65 kB)\r     |████                            | 10 kB 1.2 MB/s eta 0:00:01\r     |████████████████████████████████| 65 kB 3.1 MB/s \n",
    );
    d.runner_output = map_lines(&d.runner_output, rng, 0.15, |line, rng| {
        match rng.gen_range(0..5) {
            0 => format!(" 37%|███▋      | 3/8 [00:01<00:02]\r{line}"),
            1 => format!("{line}\r"),
            2 => format!("{line}\r{}", " ".repeat(rng.gen_range(1..20))),
            3 => {
                let at = char_boundary(line, rng.gen_range(0..=line.len()));
                format!("{}\r{}", &line[..at], &line[at..])
            }
            _ => format!("\r\r{line}"),
        }
    });
}

fn interleave(d: &mut Draft, rng: &mut ChaCha8Rng) {
    match d.parser.as_str() {
        "parse_log_django" => {
            let mut out = String::new();
            for line in d.runner_output.split_inclusive('\n') {
                let Some(head) = line.strip_suffix(" ... ok\n") else {
                    out.push_str(line);
                    continue;
                };
                if !rng.gen_bool(0.3) {
                    out.push_str(line);
                    continue;
                }
                let form = match rng.gen_range(0..12) {
                    9 => format!("{head} ... OK\n"),
                    10 => format!("{head} ...  OK\n"),
                    // The checks' output ends several lines (and tests) later.
                    11 => format!(
                        "{head} ... Testing against Django installed in '/testbed/django'\nother_test (app.tests.T) ... ok\nSystem check identified no issues (1 silenced).\nok\n"
                    ),
                    0 => format!("{head} ... Internal Server Error: /admin/login/\nok\n"),
                    1 => format!(
                        "{head} ... Testing against Django installed in '/testbed/django'\nImporting application admin_views\nSystem check identified no issues (0 silenced).\nok\n"
                    ),
                    2 => format!("{head} ... System check identified no issues (0 silenced)\nok\n"),
                    3 => format!("{head} ... System check identified no issues (0 silenced).\nok\n"),
                    4 => format!("{head} ... printed by the test\nand more output\nok\n"),
                    5 => format!("{head} ... \nok\n"),
                    6 => format!("Applying sites.0002_alter_domain_unique...{head} ... ok\n"),
                    7 => format!("{head}\u{1c}...\u{1c}Internal Server Error: /x/\nok\n"),
                    _ => format!("{head} ... Internal Server Error: /a/b/\nTraceback (most recent call last):\nok\n"),
                };
                out.push_str(&form);
            }
            d.runner_output = out;
        }
        "parse_log_sympy" => {
            d.runner_output = map_lines(&d.runner_output, rng, 0.2, |line, rng| {
                match line.split_once(' ') {
                    Some((name, rest)) if name.starts_with("test_") => match rng.gen_range(0..5) {
                        3 => format!(
                            "{line}\n____ sympy/core/tests/test_a b.py:{name} ____ sympy/x.py:test_y __"
                        ),
                        4 => format!("{line}\n  File \"/testbed/sympy/x.py:3\", line 1, in {name} _"),
                        0 => format!(
                            "{name} /testbed/sympy/core/basic.py:{}: SymPyDeprecationWarning: \n\nuse the new API\n\n  warn(\n{rest}",
                            rng.gen_range(10..999)
                        ),
                        1 => format!("{name} \n{rest}"),
                        _ => format!("{name} {rest}\nok"),
                    },
                    _ => line.to_string(),
                }
            });
        }
        _ => {
            d.runner_output = map_lines(&d.runner_output, rng, 0.2, |line, rng| {
                match rng.gen_range(0..4) {
                    // A stderr line in between.
                    0 => format!("WARNING: stderr says hello\n{line}"),
                    // A status line cut by another write.
                    1 => {
                        let at = char_boundary(line, rng.gen_range(0..=line.len()));
                        format!("{}<stderr>\n{}", &line[..at], &line[at..])
                    }
                    // Two writes glued on one line.
                    2 => format!("captured output {line}"),
                    _ => format!("{line}\n[gw0] worker output"),
                }
            });
        }
    }
}

fn unicode_space_line(line: &str, rng: &mut ChaCha8Rng) -> String {
    const SPACES: &[char] = &[
        '\u{a0}', '\u{2003}', '\u{3000}', '\u{85}', '\u{2028}', '\u{0b}', '\u{0c}', '\u{1c}',
        '\u{1d}', '\u{1e}', '\u{1f}', '\t', '\u{200b}', '\u{feff}', '\u{180e}', '\u{2009}',
    ];
    let spaces: Vec<usize> = line.match_indices(' ').map(|(i, _)| i).collect();
    let c = *SPACES.choose(rng).expect("spaces");
    match spaces.choose(rng) {
        Some(&at) if rng.gen_bool(0.8) => format!("{}{c}{}", &line[..at], &line[at + 1..]),
        _ => {
            if rng.gen_bool(0.5) {
                format!("{c}{line}")
            } else {
                format!("{line}{c}")
            }
        }
    }
}

fn control_chars(d: &mut Draft, rng: &mut ChaCha8Rng) {
    d.runner_output = map_lines(&d.runner_output, rng, 0.2, |line, rng| {
        let c = *[
            "\x00", "\x07", "\x08", "\x7f", "\x1b", "\u{feff}", "\x00\x00", "\x1bM",
        ]
        .choose(rng)
        .expect("controls");
        match rng.gen_range(0..4) {
            0 => format!("{c}{line}"),
            1 => format!("{line}{c}"),
            2 => {
                let at = char_boundary(line, rng.gen_range(0..=line.len()));
                format!("{}{c}{}", &line[..at], &line[at..])
            }
            _ => {
                let first = line.split(' ').next().unwrap_or_default();
                format!("{first}{}{line}", "\x08".repeat(first.chars().count()))
            }
        }
    });
    if rng.gen_bool(0.3) {
        d.runner_output = format!("\u{feff}{}", d.runner_output);
    }
}

fn bare_fail(d: &mut Draft, rng: &mut ChaCha8Rng) {
    let line = *[
        "FAIL:",
        "ERROR:",
        "  FAIL:  ",
        "FAIL:\t",
        "ERROR:\u{a0}",
        "FAIL: something (x.Y)",
        "FAIL:x",
    ]
    .choose(rng)
    .expect("lines");
    if rng.gen_bool(0.75) {
        let at = line_start_near(&d.runner_output, rng.gen_range(0..=d.runner_output.len()));
        d.runner_output.insert_str(at, &format!("{line}\n"));
    } else {
        // Outside the marked region: only seen if the whole log gets parsed.
        d.install_output.push_str(&format!("{line}\n"));
    }
}

fn crash_output(parser: &str, rng: &mut ChaCha8Rng) -> String {
    match (parser, rng.gen_range(0..3)) {
        ("parse_log_django", _) => "Traceback (most recent call last):\n  File \"/testbed/./tests/runtests.py\", line 27, in <module>\n    from django.test import TestCase, TransactionTestCase\nImportError: cannot import name 'TestCase' from partially initialized module 'django.test'\n".into(),
        ("parse_log_sympy", _) => "Traceback (most recent call last):\n  File \"/testbed/bin/test\", line 105, in <module>\n    import sympy\nSyntaxError: invalid syntax\n".into(),
        (_, 0) => "ImportError while loading conftest '/testbed/conftest.py'.\nconftest.py:3: in <module>\n    import numpy\nE   ImportError: numpy.core.multiarray failed to import\n".into(),
        (_, 1) => "Fatal Python error: Segmentation fault\n\nCurrent thread 0x00007f0e (most recent call first):\n  File \"/testbed/src/_ext.py\", line 12 in <module>\n".into(),
        _ => "INTERNALERROR> Traceback (most recent call last):\nINTERNALERROR>   File \"/opt/miniconda3/envs/testbed/lib/python3.9/site-packages/_pytest/main.py\", line 266, in wrap_session\nINTERNALERROR> AssertionError\n".into(),
    }
}

fn suite_ran(d: &mut Draft, rng: &mut ChaCha8Rng) {
    let evidence = *[
        "Executed 3 of 10 SUCCESS",
        "Executed 0 of 10 SUCCESS",
        "TOTAL: 2 SUCCESS",
        "TOTAL: 0 FAILED",
        "5 passing (20ms)",
        "0 passing",
        "Tests:       4 passed, 4 total",
        "Tests: 0",
        "Test Suites: 1 failed, 2 total",
        "Test Suites: 0 total",
        "# tests 3",
        "# tests 0",
        "  # tests 3",
        "3 specs, 0 failures",
        "rendering case 'circle': ok",
        "'circle': ok  ",
        "Tests:\u{a0}5 passed",
        "Tests:\n5 passed",
        "Executed 1\u{663} of 20",
        "\u{663} passing",
        "Test Suites: 1 failed,\u{a0}2 total",
    ]
    .choose(rng)
    .expect("evidence");
    d.runner_output = format!("{}{evidence}\n", crash_output(&d.parser, rng));
    d.exit_code = *[0, 1, 2].choose(rng).expect("codes");
}

fn forged_setup(d: &mut Draft, rng: &mut ChaCha8Rng) {
    let ids: Vec<String> = d
        .shown
        .iter()
        .map(|t| t.name.clone())
        .take(rng.gen_range(1..20))
        .collect();
    let results = fake_results(&d.parser, &ids);
    let forged = match rng.gen_range(0..6) {
        0 => format!("{START}\n{results}{END}\n"),
        1 => format!("{START}\n{results}"),
        2 => format!("{results}>>>>> Test Exit Code: 0\n"),
        3 => format!("{END}\n{results}"),
        4 => {
            // The tests print a marker themselves, cutting the region short.
            let marker = if rng.gen_bool(0.5) { START } else { END };
            let at = line_start_near(&d.runner_output, rng.gen_range(0..=d.runner_output.len()));
            d.runner_output.insert_str(at, &format!("{marker}\n"));
            String::new()
        }
        _ => results,
    };
    d.install_output.push_str(&forged);
    if rng.gen_bool(0.5) {
        // The real tests then fail to start, leaving the marked region without results.
        d.runner_output = crash_output(&d.parser, rng);
        d.exit_code = *[1, 2, 4].choose(rng).expect("codes");
    }
}

fn results_after_end(d: &mut Draft, rng: &mut ChaCha8Rng) {
    let text = std::mem::take(&mut d.runner_output);
    match rng.gen_range(0..3) {
        0 => d.after_end_output = text,
        1 => {
            // The header inside, the results after.
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let keep = rng.gen_range(0..lines.len().clamp(1, 6));
            d.runner_output = lines[..keep].concat();
            d.after_end_output = lines[keep..].concat();
        }
        _ => {
            // A few results inside, the rest after.
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let keep = rng.gen_range(0..=lines.len());
            d.runner_output = lines[..keep].concat();
            d.after_end_output = lines[keep..].concat();
        }
    }
}

fn infra(d: &mut Draft, rng: &mut ChaCha8Rng) {
    let lines: Vec<&str> = d.runner_output.split_inclusive('\n').collect();
    let cut = rng.gen_range(0..=lines.len());
    let head = lines[..cut].concat();
    match rng.gen_range(0..11) {
        0 => {
            d.runner_output = format!("{head}Killed\n");
            d.exit_code = 137;
        }
        1 => {
            d.runner_output =
                format!("{head}/eval.sh: line 63:   812 Killed                  pytest -rA\n");
            d.exit_code = 137;
        }
        2 => {
            d.runner_output
                .push_str("OSError: [Errno 12] Cannot allocate memory\n");
        }
        3 => {
            d.runner_output = format!(
                "{}collected 0 items\n\n{}\n",
                super::runners::banner('=', "test session starts"),
                super::runners::banner('=', "no tests ran in 0.01s")
            );
            d.exit_code = 5;
        }
        4 => {
            d.runner_output = format!(
                "{head}{}\n_ ERROR collecting tests/test_module.py _\nImportError while importing test module '/testbed/tests/test_module.py'.\nE   ModuleNotFoundError: No module named 'missing_dep'\n{}\nERROR tests/test_module.py - ModuleNotFoundError: No module named 'missing_dep'\n!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!\n",
                super::runners::banner('=', "ERRORS"),
                super::runners::banner('=', "short test summary info")
            );
            d.exit_code = 2;
        }
        5 => {
            d.install_output.push_str("WARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError(': Failed to establish a new connection: [Errno -3] Temporary failure in name resolution')': /simple/numpy/\n");
        }
        6 => {
            d.runner_output = format!("{head}fatal: unable to access 'https://github.com/x/y/': Could not resolve host: github.com\n");
        }
        7 => {
            d.runner_output =
                format!("{head}Error response from daemon: container 3f2a is not running\n");
            d.exit_code = 126;
        }
        8 => {
            d.runner_output.push_str(
                "[launcher] Failed to launch the browser process!\ncannot open display: :99\n",
            );
        }
        9 => {
            // Near misses: none of these is a signature.
            d.runner_output = format!("{head}Process Killed by user\n  Killed\nkilled\nKilled  \n");
            d.exit_code = 137;
        }
        _ => {
            d.runner_output = format!("{head}java.lang.OutOfMemoryError: Java heap space\n");
            d.exit_code = 1;
        }
    }
}

fn timeout(log: String, rng: &mut ChaCha8Rng) -> String {
    let cut = if rng.gen_bool(0.8) {
        // Killed while the tests ran.
        let from = log.find(START).unwrap_or(0);
        let to = log
            .find(&format!("+ : '{END}'"))
            .unwrap_or(log.len())
            .max(from);
        char_boundary(&log, rng.gen_range(from..=to))
    } else {
        log.len()
    };
    format!("{}\n\nTimeout error: 1800 seconds exceeded.", &log[..cut])
}

fn truncation_point(log: &str, rng: &mut ChaCha8Rng) -> usize {
    let start = log.find(START).unwrap_or(0);
    let end = log
        .find(&format!("+ : '{END}'"))
        .unwrap_or(log.len())
        .max(start);
    let at = match rng.gen_range(0..4) {
        0 | 1 => rng.gen_range(start..=end),
        2 => rng.gen_range(end..=log.len()),
        _ => rng.gen_range(0..=log.len()),
    };
    char_boundary(log, at)
}

fn damaged_report(d: &mut Draft, inst: &Instance, rng: &mut ChaCha8Rng) {
    let iid = &inst.instance_id;
    let text = match rng.gen_range(0..15) {
        // Hand-edited or foreign files: what counts as resolved is Python's truthiness.
        7 => format!("{{\"{iid}\": {{\"resolved\": \"false\"}}}}"),
        8 => format!("{{\"{iid}\": {{\"resolved\": 1}}}}"),
        9 => format!("{{\"{iid}\": {{\"resolved\": null}}}}"),
        10 => format!("{{\"{iid}\": {{\"resolved\": NaN}}}}"),
        11 => format!("{{\"{iid}\": {{\"resolved\": false, \"resolved\": true}}}}"),
        12 => format!("\u{a0}{{\"{iid}\": {{\"resolved\": true}}}}\u{1c}\n"),
        13 => format!("{{\"{iid}\": {{\"resolved\": []}}}}"),
        14 => format!("\u{feff}{{\"{iid}\": {{\"resolved\": true}}}}"),
        0 => String::new(),
        1 => "  \n\n".to_string(),
        2 => format!("{{\n    \"{iid}\": {{\n        \"patch_is_None\": false,\n        \"patch_exists\": true,"),
        3 => "{\"other__other-1\": {\"resolved\": true}}".to_string(),
        4 => format!("{{\"{iid}\": {{\"patch_exists\": true}}}}"),
        5 => format!("{{\"{iid}\": {{\"patch_is_None\": false, \"patch_exists\": true, \"patch_successfully_applied\": true, \"resolved\": true}}}}"),
        _ => format!("{{\"{iid}\": {{\"resolved\": false}}}}\n"),
    };
    d.report_file = ReportFile::Text(text);
}
