//! What SWE-bench's `MAP_REPO_VERSION_TO_SPECS` says about evaluating the 12 Verified repos:
//! the test command, the install step re-run before the tests, and extra shell setup.

const TEST_PYTEST: &str = "pytest -rA";
const TEST_ASTROPY_PYTEST: &str = "pytest -rA -vv -o console_output_style=classic --tb=no";
const TEST_DJANGO: &str = "./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1";
const TEST_DJANGO_NO_PARALLEL: &str = "./tests/runtests.py --verbosity 2";
const TEST_SEABORN: &str = "pytest --no-header -rA";
const TEST_SPHINX: &str = "tox --current-env -epy39 -v --";
const TEST_SYMPY: &str =
    "PYTHONWARNINGS='ignore::UserWarning,ignore::SyntaxWarning' bin/test -C --verbose";
const TEST_SYMPY_VERBOSE: &str = "bin/test -C --verbose";

const PIP_EDITABLE: &str = "python -m pip install -e .";
const SETUP_INSTALL: &str = "python setup.py install";

const DJANGO_LOCALE_OLD: &[&str] = &[
    "export LANG=en_US.UTF-8",
    "export LC_ALL=en_US.UTF-8",
    "export PYTHONIOENCODING=utf8",
    "export LANGUAGE=en_US:en",
];
const DJANGO_LOCALE_3X: &[&str] = &[
    "sed -i '/en_US.UTF-8/s/^# //g' /etc/locale.gen && locale-gen",
    "export LANG=en_US.UTF-8",
    "export LANGUAGE=en_US:en",
    "export LC_ALL=en_US.UTF-8",
];

/// How one repo version is evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSpec {
    pub test_cmd: &'static str,
    /// Re-run before the tests (upstream's `install`), so the patched package is the one imported.
    pub install: Option<&'static str>,
    /// Shell lines run right after `cd /testbed` (upstream's `eval_commands`).
    pub eval_commands: &'static [&'static str],
    /// Test directives are Django module paths rather than file paths.
    pub django_directives: bool,
}

impl RepoSpec {
    const fn new(test_cmd: &'static str, install: &'static str) -> Self {
        Self {
            test_cmd,
            install: Some(install),
            eval_commands: &[],
            django_directives: false,
        }
    }
}

/// `(major, minor)` of a version string such as `3.2` or `v5.3`; `None` if unparseable.
fn version(text: &str) -> Option<(u32, u32)> {
    let text = text.trim().trim_start_matches('v');
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The spec for one of the 12 Verified repos at `version`.
pub fn verified_spec(repo: &str, version_text: &str) -> Option<RepoSpec> {
    let v = version(version_text);
    let spec = match repo {
        "django/django" => django(v),
        "astropy/astropy" => RepoSpec {
            test_cmd: if v.is_some_and(|v| v <= (1, 3)) {
                TEST_ASTROPY_PYTEST
            } else {
                TEST_PYTEST
            },
            ..RepoSpec::new(TEST_PYTEST, "python -m pip install -e .[test] --verbose")
        },
        "matplotlib/matplotlib" => RepoSpec::new(TEST_PYTEST, matplotlib_install(v)),
        "mwaskom/seaborn" => RepoSpec::new(
            TEST_SEABORN,
            if v == Some((0, 11)) {
                PIP_EDITABLE
            } else {
                "python -m pip install -e .[dev]"
            },
        ),
        "psf/requests" => RepoSpec::new(TEST_PYTEST, "python -m pip install ."),
        "scikit-learn/scikit-learn" => RepoSpec::new(
            TEST_PYTEST,
            "python -m pip install -v --no-use-pep517 --no-build-isolation -e .",
        ),
        "sphinx-doc/sphinx" => RepoSpec::new(TEST_SPHINX, "python -m pip install -e .[test]"),
        "sympy/sympy" => RepoSpec::new(TEST_SYMPY, PIP_EDITABLE),
        "pallets/flask" | "pydata/xarray" | "pylint-dev/pylint" | "pytest-dev/pytest" => {
            RepoSpec::new(TEST_PYTEST, PIP_EDITABLE)
        }
        _ => return None,
    };
    Some(spec)
}

fn django(v: Option<(u32, u32)>) -> RepoSpec {
    let (install, eval_commands): (&str, &[&str]) = match v {
        Some(v) if v < (1, 7) => (SETUP_INSTALL, &[]),
        Some(v) if v < (3, 0) => (SETUP_INSTALL, DJANGO_LOCALE_OLD),
        Some(v) if v < (4, 0) => (PIP_EDITABLE, DJANGO_LOCALE_3X),
        _ => (PIP_EDITABLE, &[]),
    };
    RepoSpec {
        test_cmd: if v == Some((1, 9)) {
            TEST_DJANGO_NO_PARALLEL
        } else {
            TEST_DJANGO
        },
        install: Some(install),
        eval_commands,
        django_directives: true,
    }
}

fn matplotlib_install(v: Option<(u32, u32)>) -> &'static str {
    match v {
        Some(v) if v < (3, 0) => "python setup.py build; python setup.py install",
        Some((3, 8 | 9)) => "python -m pip install --no-build-isolation -e \".[dev]\"",
        _ => PIP_EDITABLE,
    }
}

/// Lines the published Verified scripts run for single instances between applying the test
/// patch and the start marker. They come from the per-instance data in SWE-bench's task repo
/// (`SWE-bench/swe-bench-tasks`), not from the harness code, so they are read off the
/// dataset's `eval_script`s; no other Verified instance has any.
const PRE_TEST: &[(&str, &[&str])] = &[
    (
        "astropy__astropy-8707",
        &["python -m pip install -q 'pytest<7.2'"],
    ),
    (
        "astropy__astropy-8872",
        &["export SETUPTOOLS_USE_DISTUTILS=stdlib"],
    ),
];

/// The per-instance lines run right before the tests (see [`PRE_TEST`]); empty for most.
pub fn pre_test_commands(instance_id: &str) -> &'static [&'static str] {
    PRE_TEST
        .iter()
        .find(|(id, _)| *id == instance_id)
        .map_or(&[], |(_, lines)| lines)
}

/// A spec for a repo outside the Verified 12, from its log format alone: the plain runner
/// command, no install step (e.g. the bundled fixtures).
pub fn spec_for_parser(log_parser: &str) -> Option<RepoSpec> {
    let bare = |test_cmd, django_directives| RepoSpec {
        test_cmd,
        install: None,
        eval_commands: &[],
        django_directives,
    };
    match log_parser {
        "parse_log_django" => Some(bare(TEST_DJANGO, true)),
        "parse_log_sympy" => Some(bare(TEST_SYMPY_VERBOSE, false)),
        name if crate::parsers::by_name(name).is_some() => Some(bare(TEST_PYTEST, false)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_pick_the_right_commands() {
        let d19 = verified_spec("django/django", "1.9").expect("django");
        assert_eq!(d19.test_cmd, TEST_DJANGO_NO_PARALLEL);
        assert_eq!(d19.eval_commands, DJANGO_LOCALE_OLD);
        let d32 = verified_spec("django/django", "3.2").expect("django");
        assert_eq!(d32.eval_commands, DJANGO_LOCALE_3X);
        assert_eq!(d32.install, Some(PIP_EDITABLE));
        let a13 = verified_spec("astropy/astropy", "1.3").expect("astropy");
        assert_eq!(a13.test_cmd, TEST_ASTROPY_PYTEST);
        let a53 = verified_spec("astropy/astropy", "v5.3").expect("astropy");
        assert_eq!(a53.test_cmd, TEST_PYTEST);
        assert!(verified_spec("x/y", "1.0").is_none());
        assert_eq!(
            spec_for_parser("parse_log_sympy").map(|s| s.test_cmd),
            Some(TEST_SYMPY_VERBOSE)
        );
    }

    #[test]
    fn pre_test_lines_are_per_instance() {
        assert_eq!(
            pre_test_commands("astropy__astropy-8872"),
            ["export SETUPTOOLS_USE_DISTUTILS=stdlib"]
        );
        assert!(pre_test_commands("astropy__astropy-7671").is_empty());
    }
}
