//! What the test commands of Verified eval scripts print: pytest `-rA` in the shapes of
//! several pytest versions (plain, verbose, old verbose), Django's `runtests.py --verbosity 2`,
//! sympy's `bin/test -C --verbose`, and pytest under tox for sphinx.

use cwm_datasets::Instance;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{file_of, Shown, Status};

/// The test command's output and its exit status.
pub fn render(
    inst: &Instance,
    parser: &str,
    shown: &[Shown],
    rng: &mut ChaCha8Rng,
) -> (String, i32) {
    match parser {
        "parse_log_django" => django(shown, &inst.version, rng),
        "parse_log_sympy" => sympy(shown, &test_command(inst), rng),
        "parse_log_sphinx" => {
            let style = PytestStyle::draw(rng, false);
            let (body, code) = pytest(shown, &style, Flavour::Sphinx, rng);
            tox(&test_command(inst), body, code, rng)
        }
        _ => {
            let flavour = match parser {
                "parse_log_astropy" => Flavour::Astropy,
                _ => Flavour::Plain,
            };
            let style = PytestStyle::draw(rng, parser == "parse_log_seaborn");
            pytest(shown, &style, flavour, rng)
        }
    }
}

/// The line between the eval script's markers.
pub fn test_command(inst: &Instance) -> String {
    let script = inst.eval_script.as_deref().unwrap_or_default();
    let mut lines = script
        .lines()
        .skip_while(|l| !l.contains(">>>>> Start Test Output"));
    lines.next();
    lines.next().unwrap_or("pytest -rA").to_string()
}

/// An 80-column pytest banner: `===== title =====`.
pub fn banner(fill: char, title: &str) -> String {
    if title.is_empty() {
        return fill.to_string().repeat(80);
    }
    let inner = format!(" {title} ");
    let left = 80usize.saturating_sub(inner.chars().count()) / 2;
    let right = 80usize.saturating_sub(inner.chars().count() + left);
    format!(
        "{}{inner}{}",
        fill.to_string().repeat(left),
        fill.to_string().repeat(right)
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verbose {
    /// Progress dots per file.
    Quiet,
    /// `id STATUS [ 42%]` per test.
    Percent,
    /// `id STATUS` per test, as pytest 3.0-3.2 printed it.
    Plain,
}

struct PytestStyle {
    major: u8,
    minor: u8,
    verbose: Verbose,
    no_header: bool,
    passed_first: bool,
}

impl PytestStyle {
    fn draw(rng: &mut ChaCha8Rng, no_header: bool) -> Self {
        let major = *[3u8, 4, 5, 6, 7, 7, 8, 8].choose(rng).expect("versions");
        let verbose = if major == 3 && rng.gen_bool(0.6) {
            Verbose::Plain
        } else if rng.gen_bool(0.2) {
            Verbose::Percent
        } else {
            Verbose::Quiet
        };
        Self {
            major,
            minor: rng.gen_range(0..5),
            verbose,
            no_header,
            passed_first: major >= 6 || rng.gen_bool(0.3),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Plain,
    Astropy,
    Sphinx,
}

const FAIL_MESSAGES: &[&str] = &[
    "AssertionError: assert 1 == 2",
    "assert False",
    "ValueError: operands could not be broadcast together with shapes (3,) (4,)",
    "TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'",
    "AssertionError: Regex pattern did not match.",
    "Failed: DID NOT RAISE <class 'ValueError'>",
    "AttributeError: 'NoneType' object has no attribute 'shape'",
    "assert 'a - b' == 'a + b'",
];

const SKIP_REASONS: &[&str] = &[
    "requires scipy",
    "could not import 'pyarrow': No module named 'pyarrow'",
    "Test requires the docutils >= 0.18",
    "needs network access",
    "SKIPPED: hypothesis not installed",
];

/// The short name pytest puts in section headers (`Class.test_x[param]`).
fn short_name(name: &str) -> String {
    let parts: Vec<&str> = name.split("::").skip(1).collect();
    if parts.is_empty() {
        name.to_string()
    } else {
        parts.join(".")
    }
}

fn pytest(
    shown: &[Shown],
    style: &PytestStyle,
    flavour: Flavour,
    rng: &mut ChaCha8Rng,
) -> (String, i32) {
    let run: Vec<&Shown> = shown
        .iter()
        .filter(|s| s.status != Status::Missing)
        .collect();
    let mut out = Vec::<String>::new();
    out.push(banner('=', "test session starts"));
    if !style.no_header {
        out.push(format!(
            "platform linux -- Python 3.9.{}, pytest-{}.{}.{}, pluggy-{}",
            rng.gen_range(10..21),
            style.major,
            style.minor,
            rng.gen_range(0..4),
            if style.major >= 7 { "1.5.0" } else { "0.13.1" }
        ));
        if flavour == Flavour::Sphinx {
            out.push("cachedir: .tox/py39/.pytest_cache".into());
            out.push(format!(
                "libraries: Sphinx-{}.{}.0+/{:07x}, docutils-0.{}",
                rng.gen_range(3..8),
                rng.gen_range(0..5),
                rng.gen_range(0..0xfffffff_u32),
                rng.gen_range(16..21)
            ));
            out.push("base tempdir: /tmp/pytest-of-root/pytest-0".into());
        }
        if flavour == Flavour::Astropy {
            out.extend(astropy_header(rng));
        }
        out.push("rootdir: /testbed".into());
        out.push(if style.major >= 6 {
            "configfile: setup.cfg".into()
        } else {
            "inifile: setup.cfg".into()
        });
        if rng.gen_bool(0.5) {
            out.push("plugins: hypothesis-6.82.6, cov-4.1.0, xdist-3.5.0, mock-3.11.1".into());
        }
    }
    if style.verbose == Verbose::Quiet {
        out.push(format!("collected {} items", run.len()));
    } else {
        out.push(format!("collecting ... collected {} items", run.len()));
    }
    out.push(String::new());

    let total = run.len().max(1);
    match style.verbose {
        Verbose::Quiet => {
            let mut done = 0;
            let mut i = 0;
            while i < run.len() {
                let file = file_of(&run[i].name);
                let mut chars = String::new();
                while i < run.len() && file_of(&run[i].name) == file {
                    chars.push(match run[i].status {
                        Status::Pass => '.',
                        Status::Fail => 'F',
                        Status::Error => 'E',
                        Status::Skip => 's',
                        Status::Xfail => 'x',
                        Status::Xpass => 'X',
                        Status::Missing => '?',
                    });
                    i += 1;
                    done += 1;
                }
                let pct = done * 100 / total;
                let head = format!("{file} {chars}");
                let pad = 74usize.saturating_sub(head.chars().count()).max(1);
                out.push(format!("{head}{}[{pct:>3}%]", " ".repeat(pad)));
            }
        }
        Verbose::Percent | Verbose::Plain => {
            for (k, t) in run.iter().enumerate() {
                let word = match t.status {
                    Status::Pass => "PASSED".to_string(),
                    Status::Fail => "FAILED".to_string(),
                    Status::Error => "ERROR".to_string(),
                    Status::Skip if style.major >= 7 => {
                        format!("SKIPPED ({})", SKIP_REASONS.choose(rng).expect("reasons"))
                    }
                    Status::Skip => "SKIPPED".to_string(),
                    Status::Xfail if style.verbose == Verbose::Plain => "xfail".to_string(),
                    Status::Xfail => "XFAIL".to_string(),
                    Status::Xpass => "XPASS".to_string(),
                    Status::Missing => unreachable!("missing tests are not run"),
                };
                if style.verbose == Verbose::Plain {
                    out.push(format!("{} {word}", t.name));
                } else {
                    let head = format!("{} {word}", t.name);
                    let pad = 73usize.saturating_sub(head.chars().count()).max(1);
                    out.push(format!(
                        "{head}{}[{:>3}%]",
                        " ".repeat(pad),
                        (k + 1) * 100 / total
                    ));
                }
            }
        }
    }
    out.push(String::new());

    let errors: Vec<&&Shown> = run.iter().filter(|t| t.status == Status::Error).collect();
    if !errors.is_empty() {
        out.push(banner('=', "ERRORS"));
        for t in &errors {
            out.push(banner(
                '_',
                &format!("ERROR at setup of {}", short_name(&t.name)),
            ));
            out.push(String::new());
            out.push("    @pytest.fixture".into());
            out.push("    def data():".into());
            out.push(">       return load_data()".into());
            out.push(
                "E       FileNotFoundError: [Errno 2] No such file or directory: 'data.csv'".into(),
            );
            out.push(String::new());
            out.push(format!("{}:12: FileNotFoundError", file_of(&t.name)));
        }
    }
    let failures: Vec<&&Shown> = run.iter().filter(|t| t.status == Status::Fail).collect();
    if !failures.is_empty() {
        out.push(banner('=', "FAILURES"));
        for t in &failures {
            out.push(banner('_', &short_name(&t.name)));
            out.push(String::new());
            out.push("    def test_case():".into());
            out.push("        result = compute()".into());
            out.push(">       assert result == expected".into());
            out.push(format!(
                "E       {}",
                FAIL_MESSAGES.choose(rng).expect("messages")
            ));
            out.push(String::new());
            out.push(format!(
                "{}:{}: AssertionError",
                file_of(&t.name),
                rng.gen_range(10..900)
            ));
            if rng.gen_bool(0.3) {
                out.push(banner('-', "Captured stdout call"));
                out.push("computing with 3 workers".into());
            }
        }
    }
    if rng.gen_bool(0.4) {
        out.push(banner('=', "warnings summary"));
        out.push(format!(
            "{}::test_case",
            file_of(run.first().map_or("tests/test_x.py", |t| t.name.as_str()))
        ));
        out.push("  /testbed/src/module.py:41: DeprecationWarning: distutils Version classes are deprecated.".into());
        out.push("    warnings.warn(".into());
        out.push(String::new());
        out.push("-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html".into());
    }
    if flavour == Flavour::Sphinx && rng.gen_bool(0.7) {
        out.push(banner('=', "slowest 25 durations"));
        for t in run.iter().take(5) {
            out.push(format!(
                "{}.{:02}s call     {}",
                rng.gen_range(0..2),
                rng.gen_range(0..100),
                t.name
            ));
        }
    }
    if style.major >= 4 {
        out.push(banner('=', "PASSES"));
    }
    out.push(banner('=', "short test summary info"));
    let mut summary: Vec<(u8, String)> = Vec::new();
    for t in &run {
        let msg = FAIL_MESSAGES.choose(rng).expect("messages");
        let (rank, line) = match t.status {
            Status::Pass => (0, format!("PASSED {}", t.name)),
            Status::Skip => {
                let word = if style.major >= 4 { "SKIPPED" } else { "SKIP" };
                (
                    1,
                    format!(
                        "{word} [1] {}:{}: {}",
                        file_of(&t.name),
                        rng.gen_range(10..500),
                        SKIP_REASONS.choose(rng).expect("reasons")
                    ),
                )
            }
            Status::Xfail if style.major >= 8 => {
                (2, format!("XFAIL {} - reason: known bug", t.name))
            }
            Status::Xfail => (2, format!("XFAIL {}\n  reason: known bug", t.name)),
            Status::Xpass if style.major >= 8 => (3, format!("XPASS {} - flaky", t.name)),
            Status::Xpass => (3, format!("XPASS {} flaky", t.name)),
            Status::Error if style.major >= 6 => (4, format!("ERROR {} - {msg}", t.name)),
            Status::Error => (4, format!("ERROR {}", t.name)),
            Status::Fail if style.major >= 5 => (5, format!("FAILED {} - {msg}", t.name)),
            Status::Fail => (5, format!("FAILED {}", t.name)),
            Status::Missing => unreachable!("missing tests are not run"),
        };
        summary.push((rank, line));
    }
    summary.sort_by_key(|(rank, _)| if style.passed_first { *rank } else { 5 - *rank });
    out.extend(summary.into_iter().map(|(_, l)| l));

    let count = |s: Status| run.iter().filter(|t| t.status == s).count();
    let mut parts = Vec::new();
    for (s, word) in [
        (Status::Fail, "failed"),
        (Status::Pass, "passed"),
        (Status::Skip, "skipped"),
        (Status::Xfail, "xfailed"),
        (Status::Xpass, "xpassed"),
        (Status::Error, "error"),
    ] {
        let n = count(s);
        if n > 0 {
            let word = if s == Status::Error && n > 1 {
                "errors"
            } else {
                word
            };
            parts.push(format!("{n} {word}"));
        }
    }
    let secs = format!("{}.{:02}", rng.gen_range(0..90), rng.gen_range(0..100));
    let time = if style.major >= 6 {
        format!("{secs}s")
    } else {
        format!("{secs} seconds")
    };
    let code = if run.is_empty() {
        out.push(banner('=', &format!("no tests ran in {time}")));
        5
    } else {
        out.push(banner('=', &format!("{} in {time}", parts.join(", "))));
        i32::from(run.iter().any(|t| t.status.is_failure()))
    };
    (out.join("\n") + "\n", code)
}

fn astropy_header(rng: &mut ChaCha8Rng) -> Vec<String> {
    vec![
        String::new(),
        format!("Running tests with Astropy version {}.{}.dev{}.", rng.gen_range(1..6), rng.gen_range(0..4), rng.gen_range(100..999)),
        "Running tests in astropy.".into(),
        String::new(),
        "Date: 2024-10-03T07:27:41".into(),
        String::new(),
        "Platform: Linux-6.1.0-x86_64-with-glibc2.35".into(),
        String::new(),
        "Executable: /opt/miniconda3/envs/testbed/bin/python".into(),
        String::new(),
        "Full Python Version: ".into(),
        "3.9.20 (main, Oct  3 2024, 07:27:41) ".into(),
        "[GCC 11.2.0]".into(),
        String::new(),
        "encodings: sys: utf-8, locale: UTF-8, filesystem: utf-8".into(),
        "byteorder: little".into(),
        "float info: dig: 15, mant_dig: 15".into(),
        String::new(),
        "Package versions: ".into(),
        "Numpy: 1.25.2".into(),
        "Scipy: not available".into(),
        "Matplotlib: not available".into(),
        String::new(),
        "Using Astropy options: remote_data: none.".into(),
        String::new(),
        "hypothesis profile 'ci' -> database=None, deadline=None, print_blob=True, derandomize=True".into(),
        "ARCH_ON_CI: undefined".into(),
        "IS_CRON: undefined".into(),
        String::new(),
    ]
}

/// Sphinx's eval scripts run pytest through `tox --current-env -epy39 -v`; tox 3 and tox 4
/// wrap it differently.
fn tox(command: &str, body: String, code: i32, rng: &mut ChaCha8Rng) -> (String, i32) {
    let files = command.split(" -- ").nth(1).unwrap_or("tests").to_string();
    let inner = format!("python -X dev -m pytest -rA --durations 25 {files}");
    let mut out = String::new();
    if rng.gen_bool(0.5) {
        out.push_str("using tox.ini: /testbed/tox.ini (pid 106)\n");
        out.push_str("using tox-3.28.0 from /opt/miniconda3/envs/testbed/lib/python3.9/site-packages/tox/__init__.py (pid 106)\n");
        out.push_str(&format!(
            "py39 run-test-pre: PYTHONHASHSEED='{}'\n",
            rng.gen_range(1..4_000_000_000u64)
        ));
        out.push_str(&format!("py39 run-test: commands[0] | {inner}\n"));
        out.push_str(&body);
        if code != 0 {
            out.push_str(&format!(
                "ERROR: InvocationError for command /opt/miniconda3/envs/testbed/bin/{inner} (exited with code {code})\n"
            ));
        }
        out.push_str(&banner('_', "summary"));
        out.push('\n');
        if code != 0 {
            out.push_str("ERROR:   py39: commands failed\n");
        } else {
            out.push_str("  py39: commands succeeded\n  congratulations :)\n");
        }
    } else {
        out.push_str(&format!("py39: commands[0]> {inner}\n"));
        out.push_str(&body);
        let secs = rng.gen_range(1..40);
        if code != 0 {
            out.push_str(&format!(
                "py39: exit {code} ({secs}.21 seconds) /testbed> {inner} pid=107\n"
            ));
            out.push_str(&format!(
                "  py39: FAIL code {code} ({secs}.30=setup[0.09]+cmd[{secs}.21] seconds)\n"
            ));
            out.push_str(&format!("  evaluation failed :( ({secs}.41 seconds)\n"));
        } else {
            out.push_str(&format!(
                "  py39: OK ({secs}.30=setup[0.09]+cmd[{secs}.21] seconds)\n"
            ));
            out.push_str(&format!("  congratulations :) ({secs}.41 seconds)\n"));
        }
    }
    (out, code)
}

const DJANGO_SKIPS: &[&str] = &[
    "Database doesn't support feature(s): supports_select_union",
    "PostgreSQL specific tests",
    "Oracle doesn't support this",
    "No 'it's' here",
    "requires selenium",
];

fn django(shown: &[Shown], version: &str, rng: &mut ChaCha8Rng) -> (String, i32) {
    let run: Vec<&Shown> = shown
        .iter()
        .filter(|s| s.status != Status::Missing)
        .collect();
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut out = Vec::<String>::new();
    if major >= 4 {
        out.push(
            "Testing against Django installed in '/testbed/django' with up to 16 processes".into(),
        );
    } else {
        out.push("Testing against Django installed in '/testbed/django'".into());
    }
    let app = run
        .iter()
        .find_map(|t| {
            t.name
                .split_once(" (")
                .map(|(_, c)| c.split('.').next().unwrap_or("tests").to_string())
        })
        .unwrap_or_else(|| "tests".to_string());
    out.push(format!("Importing application {app}"));
    if major >= 4 {
        out.push(format!("Found {} test(s).", run.len()));
    }
    out.push("Skipping setup of unused database(s): other.".into());
    out.push("Operations to perform:".into());
    out.push(format!(
        "  Synchronize unmigrated apps: auth, contenttypes, messages, {app}, sessions, staticfiles"
    ));
    out.push("  Apply all migrations: admin, sites".into());
    out.push("Synchronizing apps without migrations:".into());
    out.push("  Creating tables...".into());
    out.push("    Creating table django_content_type".into());
    out.push("    Creating table auth_permission".into());
    out.push("    Running deferred SQL...".into());
    out.push("Running migrations:".into());
    out.push("  Applying admin.0001_initial... OK".into());
    out.push("  Applying admin.0002_logentry_remove_auto_add... OK".into());
    out.push("  Applying sites.0001_initial... OK".into());
    out.push("  Applying sites.0002_alter_domain_unique... OK".into());
    out.push(format!(
        "System check identified no issues ({} silenced).",
        rng.gen_range(0..2)
    ));
    for t in &run {
        if let Some(lead) = &t.lead {
            out.push(lead.clone());
        }
        let verdict = match t.status {
            Status::Pass => "ok".to_string(),
            Status::Fail => "FAIL".to_string(),
            Status::Error => "ERROR".to_string(),
            Status::Skip => format!("skipped '{}'", DJANGO_SKIPS.choose(rng).expect("reasons")),
            Status::Xfail => "expected failure".to_string(),
            Status::Xpass => "unexpected success".to_string(),
            Status::Missing => unreachable!("missing tests are not run"),
        };
        out.push(format!("{} ... {verdict}", t.name));
    }
    let mut failures = 0;
    let mut errors = 0;
    for t in &run {
        let kind = match t.status {
            Status::Fail => {
                failures += 1;
                "FAIL"
            }
            Status::Error => {
                errors += 1;
                "ERROR"
            }
            _ => continue,
        };
        out.push(String::new());
        out.push("=".repeat(70));
        match &t.lead {
            Some(lead) => {
                out.push(format!("{kind}: {lead}"));
                out.push(t.name.clone());
            }
            None => out.push(format!("{kind}: {}", t.name)),
        }
        out.push("-".repeat(70));
        out.push("Traceback (most recent call last):".into());
        out.push(format!(
            "  File \"/testbed/tests/{app}/tests.py\", line {}, in test_case",
            rng.gen_range(10..900)
        ));
        out.push("    self.assertEqual(response.status_code, 200)".into());
        if kind == "FAIL" {
            out.push("AssertionError: 404 != 200".into());
        } else {
            out.push("django.db.utils.OperationalError: no such table: auth_user".into());
        }
    }
    out.push(String::new());
    out.push("-".repeat(70));
    out.push(format!(
        "Ran {} tests in {}.{:03}s",
        run.len(),
        rng.gen_range(0..60),
        rng.gen_range(0..1000)
    ));
    out.push(String::new());
    let skipped = run.iter().filter(|t| t.status == Status::Skip).count();
    let mut notes = Vec::new();
    if failures > 0 {
        notes.push(format!("failures={failures}"));
    }
    if errors > 0 {
        notes.push(format!("errors={errors}"));
    }
    if skipped > 0 {
        notes.push(format!("skipped={skipped}"));
    }
    let code = i32::from(failures + errors > 0);
    let verdict = if code != 0 { "FAILED" } else { "OK" };
    if notes.is_empty() {
        out.push(verdict.into());
    } else {
        out.push(format!("{verdict} ({})", notes.join(", ")));
    }
    out.push("Destroying test database for alias 'default' ('file:memorydb_default?mode=memory&cache=shared')...".into());
    (out.join("\n") + "\n", code)
}

fn sympy(shown: &[Shown], command: &str, rng: &mut ChaCha8Rng) -> (String, i32) {
    let mut files: Vec<String> = command
        .split_whitespace()
        .filter(|w| w.ends_with(".py"))
        .map(str::to_string)
        .collect();
    if files.is_empty() {
        files.push("sympy/core/tests/test_basic.py".into());
    }
    let run: Vec<&Shown> = shown
        .iter()
        .filter(|s| s.status != Status::Missing)
        .collect();
    // Tests spread over the command's files, in order.
    let mut per_file: Vec<Vec<&Shown>> = vec![Vec::new(); files.len()];
    for &t in &run {
        per_file[rng.gen_range(0..files.len())].push(t);
    }
    let mut out = Vec::<String>::new();
    out.push(banner('=', "test process starts"));
    out.push(
        "executable:         /opt/miniconda3/envs/testbed/bin/python  (3.9.19-final-0) [CPython]"
            .into(),
    );
    out.push("architecture:       64-bit".into());
    out.push("cache:              no".into());
    out.push("ground types:       python ".into());
    out.push("numpy:              None".into());
    out.push(format!(
        "random seed:        {}",
        rng.gen_range(1_000_000..99_999_999)
    ));
    out.push(format!(
        "hash randomization: on (PYTHONHASHSEED={})",
        rng.gen_range(1..4_000_000_000u64)
    ));
    out.push(String::new());
    let mut failed = Vec::new();
    for (file, tests) in files.iter().zip(&per_file) {
        out.push(format!("{file}[{}] ", tests.len()));
        let mut file_ok = true;
        for (k, t) in tests.iter().enumerate() {
            let word = match t.status {
                Status::Pass => "ok",
                Status::Fail => "F",
                Status::Error => "E",
                Status::Skip => "s",
                Status::Xfail => "f",
                Status::Xpass => "X",
                Status::Missing => unreachable!("missing tests are not run"),
            };
            if t.status.is_failure() {
                file_ok = false;
                failed.push((file.clone(), *t));
            }
            let line = format!("{} {word}", t.name);
            if k + 1 == tests.len() {
                // The file's verdict lands on its last test's line.
                let pad = 77usize.saturating_sub(line.chars().count()).max(1);
                let verdict = if file_ok { "[OK]" } else { "[FAIL]" };
                out.push(format!("{line}{}{verdict}", " ".repeat(pad)));
            } else {
                out.push(line);
            }
        }
        out.push(String::new());
    }
    for (file, t) in &failed {
        out.push(String::new());
        out.push("_".repeat(80));
        out.push(banner('_', &format!("{file}:{}", t.name)));
        out.push("Traceback (most recent call last):".into());
        out.push(format!(
            "  File \"/testbed/{file}\", line {}, in {}",
            rng.gen_range(10..900),
            t.name
        ));
        out.push("    assert simplify(expr) == expected".into());
        out.push(if t.status == Status::Fail {
            "AssertionError".into()
        } else {
            "NameError: name 'x' is not defined".into()
        });
    }
    out.push(String::new());
    let count = |s: Status| run.iter().filter(|t| t.status == s).count();
    let mut parts = vec![format!("{} passed", count(Status::Pass))];
    if count(Status::Fail) > 0 {
        parts.push(format!("{} failed", count(Status::Fail)));
    }
    if count(Status::Skip) > 0 {
        parts.push(format!("{} skipped", count(Status::Skip)));
    }
    if count(Status::Xfail) > 0 {
        parts.push(format!("{} expected to fail", count(Status::Xfail)));
    }
    if count(Status::Xpass) > 0 {
        parts.push(format!(
            "{} expected to fail but passed",
            count(Status::Xpass)
        ));
    }
    if count(Status::Error) > 0 {
        parts.push(format!("{} exceptions", count(Status::Error)));
    }
    out.push(banner(
        '=',
        &format!(
            "tests finished: {}, in {}.{:02} seconds",
            parts.join(", "),
            rng.gen_range(0..90),
            rng.gen_range(0..100)
        ),
    ));
    let code = i32::from(!failed.is_empty());
    if code != 0 {
        out.push("DO *NOT* COMMIT!".into());
    }
    (out.join("\n") + "\n", code)
}
