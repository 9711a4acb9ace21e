//! The logs the official harness keeps per instance: `test_output.txt`, which is what
//! `bash -x` prints running the instance's eval script (with the exit-status capture that
//! `record_test_exit_code` adds around the end marker), and `run_instance.log`.

use cwm_datasets::Instance;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::Draft;

pub const START: &str = ">>>>> Start Test Output";
pub const END: &str = ">>>>> End Test Output";

/// Files a unified diff touches.
pub fn diff_files(patch: &str) -> Vec<String> {
    patch
        .lines()
        .filter_map(|l| l.strip_prefix("diff --git a/"))
        .filter_map(|rest| rest.split(" b/").next())
        .map(str::to_string)
        .collect()
}

/// The words of a script line as the shell sees them (single and double quotes removed).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c == ' ' || c == '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// One word as `set -x` shows it: quoted when it holds anything but plain characters.
fn xtrace_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The `+ ...` lines `set -x` prints for one script line (assignments in front of a command
/// get their own line; `&&` lists one line per command).
fn xtrace(line: &str) -> String {
    let mut out = String::new();
    for part in line.split(" && ") {
        let part = part.split(" <<").next().unwrap_or(part);
        let words = shell_words(part);
        let mut command = Vec::new();
        for w in &words {
            let is_assignment = command.is_empty()
                && w.split_once('=').is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
            if is_assignment {
                out.push_str(&format!("+ {}\n", xtrace_word(w)));
            } else {
                command.push(xtrace_word(w));
            }
        }
        if !command.is_empty() {
            out.push_str(&format!("+ {}\n", command.join(" ")));
        }
    }
    out
}

const CONDA_ACTIVATE: &str = "++ _CONDA_ROOT=/opt/miniconda3
++ . /opt/miniconda3/etc/profile.d/conda.sh
+++ export CONDA_EXE=/opt/miniconda3/bin/conda
+++ CONDA_EXE=/opt/miniconda3/bin/conda
+++ export _CE_M=
+++ _CE_M=
+++ export CONDA_PYTHON_EXE=/opt/miniconda3/bin/python
+++ CONDA_PYTHON_EXE=/opt/miniconda3/bin/python
++ conda activate
++ local cmd=activate
++ case \"$cmd\" in
++ __conda_activate activate
++ '[' -n '' ']'
++ local ask_conda
+++ PS1=
+++ __conda_exe shell.posix activate
+++ /opt/miniconda3/bin/conda shell.posix activate
++ ask_conda='PS1='\\''(base) '\\''
export PATH='\\''/opt/miniconda3/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'\\''
export CONDA_SHLVL='\\''1'\\''
export CONDA_PROMPT_MODIFIER='\\''(base) '\\'''
++ eval 'PS1='\\''(base) '\\''
export CONDA_SHLVL='\\''1'\\'''
+++ PS1='(base) '
+++ export CONDA_SHLVL=1
+++ CONDA_SHLVL=1
++ __conda_hashr
++ '[' -n '' ']'
++ hash -r
";

const CONDA_TESTBED: &str = "+ local cmd=activate
+ case \"$cmd\" in
+ __conda_activate activate testbed
+ '[' -n '' ']'
+ local ask_conda
++ PS1='(base) '
++ __conda_exe shell.posix activate testbed
++ /opt/miniconda3/bin/conda shell.posix activate testbed
+ ask_conda='PS1='\\''(testbed) '\\''
export CONDA_DEFAULT_ENV='\\''testbed'\\'''
+ eval 'PS1='\\''(testbed) '\\''
export CONDA_DEFAULT_ENV='\\''testbed'\\'''
++ PS1='(testbed) '
++ export CONDA_DEFAULT_ENV=testbed
++ CONDA_DEFAULT_ENV=testbed
+ __conda_hashr
+ '[' -n '' ']'
+ hash -r
";

fn package_name(inst: &Instance) -> String {
    inst.repo.rsplit('/').next().unwrap_or("pkg").to_string()
}

fn pip_install(inst: &Instance, draft: &Draft, rng: &mut ChaCha8Rng) -> String {
    let pkg = package_name(inst);
    let ver = format!("{}.dev{}", inst.version, rng.gen_range(0..900));
    let mut out = String::new();
    out.push_str("Using pip 24.2 from /opt/miniconda3/envs/testbed/lib/python3.9/site-packages/pip (python 3.9)\n");
    out.push_str("Obtaining file:///testbed\n");
    out.push_str("  Preparing metadata (setup.py): started\n");
    out.push_str("  Running command python setup.py egg_info\n");
    out.push_str("  running egg_info\n");
    out.push_str(&format!("  writing {pkg}.egg-info/PKG-INFO\n"));
    out.push_str(&format!(
        "  writing manifest file '{pkg}.egg-info/SOURCES.txt'\n"
    ));
    out.push_str("  Preparing metadata (setup.py): finished with status 'done'\n");
    out.push_str(&format!(
        "Requirement already satisfied: numpy>=1.17 in /opt/miniconda3/envs/testbed/lib/python3.9/site-packages (from {pkg}=={ver}) (1.25.2)\n"
    ));
    out.push_str(&format!("Installing collected packages: {pkg}\n"));
    out.push_str(&format!("  Attempting uninstall: {pkg}\n"));
    out.push_str(&format!("    Found existing installation: {pkg} {ver}\n"));
    out.push_str(&format!("    Uninstalling {pkg}-{ver}:\n"));
    out.push_str(&format!("      Successfully uninstalled {pkg}-{ver}\n"));
    out.push_str(&format!("  Running setup.py develop for {pkg}\n"));
    out.push_str("    Running command python setup.py develop\n");
    out.push_str("    running develop\n");
    // Whatever a patched setup.py prints comes out here, unindented.
    out.push_str(&draft.install_output);
    out.push_str(&format!(
        "    Creating /opt/miniconda3/envs/testbed/lib/python3.9/site-packages/{pkg}.egg-link (link to .)\n"
    ));
    out.push_str(&format!("Successfully installed {pkg}-{ver}\n"));
    out.push_str("WARNING: Running pip as the 'root' user can result in broken permissions and conflicting behaviour with the system package manager. It is recommended to use a virtual environment instead: https://pip.pypa.io/warnings/venv\n");
    out
}

fn git_status(patch: &str) -> String {
    let mut files = diff_files(patch);
    files.dedup();
    if files.is_empty() {
        return "On branch main\nnothing to commit, working tree clean\n".to_string();
    }
    let mut out = String::from(
        "On branch main\nChanges not staged for commit:\n  (use \"git add <file>...\" to update what will be committed)\n  (use \"git restore <file>...\" to discard changes in working directory)\n",
    );
    for f in files {
        out.push_str(&format!("\tmodified:   {f}\n"));
    }
    out.push_str("\nno changes added to commit (use \"git add\" and/or \"git commit -a\")\n");
    out
}

fn git_show(inst: &Instance) -> String {
    format!(
        "commit {}\nMerge: 1a2b3c4 5d6e7f8\nAuthor: A Maintainer <maintainer@example.org>\nDate:   Tue Mar 5 10:12:01 2019 +0100\n\n    Merge pull request #1234 from contributor/fix-branch\n    \n    Fix the thing\n\n",
        inst.base_commit
    )
}

/// `test_output.txt`: the trace of the whole eval script.
pub fn eval_log(inst: &Instance, draft: &Draft, rng: &mut ChaCha8Rng) -> String {
    let script = inst.eval_script.as_deref().unwrap_or_default();
    let patch = draft.prediction.model_patch.clone().unwrap_or_default();
    let mut out = String::new();
    let mut heredoc: Option<String> = None;
    let mut in_tests = false;
    let mut installed = draft.install_output.is_empty();
    let mut checkouts = 0;
    for line in script.trim().split('\n') {
        if line == "#!/bin/bash" || line == "set -uxo pipefail" {
            continue;
        }
        if let Some(tag) = &heredoc {
            if line == tag {
                heredoc = None;
            }
            continue;
        }
        if let Some((_, tag)) = line.split_once("<<") {
            heredoc = Some(tag.trim().trim_matches('\'').trim_matches('"').to_string());
        }
        if line.contains(START) {
            if !installed {
                out.push_str(&draft.install_output);
                installed = true;
            }
            out.push_str(&xtrace(line));
            in_tests = true;
            continue;
        }
        if line.contains(END) {
            let code = draft.exit_code;
            if draft.record_exit_code {
                out.push_str(&format!("+ SWEBENCH_TEST_EXIT_CODE={code}\n"));
            }
            out.push_str(&xtrace(line));
            if draft.record_exit_code {
                out.push_str(&format!(
                    "+ echo '>>>>> Test Exit Code: {code}'\n>>>>> Test Exit Code: {code}\n"
                ));
            }
            out.push_str(&draft.after_end_output);
            in_tests = false;
            continue;
        }
        out.push_str(&xtrace(line));
        if in_tests {
            out.push_str(&draft.runner_output);
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or_default();
        if line.starts_with("source /opt/miniconda3/bin/activate") {
            out.push_str(CONDA_ACTIVATE);
        } else if line.starts_with("conda activate") {
            out.push_str(CONDA_TESTBED);
        } else if line == "git status" {
            out.push_str(&git_status(&patch));
        } else if line == "git show" {
            out.push_str(&git_show(inst));
        } else if line.starts_with("git -c core.fileMode=false diff") {
            out.push_str(&patch);
            if !patch.is_empty() && !patch.ends_with('\n') {
                out.push('\n');
            }
        } else if line.contains("pip install") || line.starts_with("python setup.py") {
            out.push_str(&pip_install(inst, draft, rng));
            installed = true;
        } else if first == "git" && line.starts_with("git checkout") {
            let n = line.split_whitespace().count().saturating_sub(3);
            let n = if checkouts == 0 { 0 } else { n };
            checkouts += 1;
            let paths = if n == 1 { "path" } else { "paths" };
            out.push_str(&format!(
                "Updated {n} {paths} from {:07x}\n",
                rng.gen_range(0..0xfffffff_u32)
            ));
        } else if line.starts_with("git apply") {
            for f in diff_files(&inst.test_patch) {
                out.push_str(&format!(
                    "Checking patch {f}...\nApplied patch {f} cleanly.\n"
                ));
            }
        } else if line.contains("locale-gen") {
            out.push_str("Generating locales (this might take a while)...\n  en_US.UTF-8... done\nGeneration complete.\n");
        }
    }
    out
}

fn stamp(rng: &mut ChaCha8Rng) -> String {
    format!(
        "2025-03-{:02} {:02}:{:02}:{:02},{:03}",
        rng.gen_range(1..29),
        rng.gen_range(0..24),
        rng.gen_range(0..60),
        rng.gen_range(0..60),
        rng.gen_range(0..1000)
    )
}

fn container(rng: &mut ChaCha8Rng) -> String {
    (0..4)
        .map(|_| format!("{:016x}", rng.gen::<u64>()))
        .collect()
}

/// The start of every `run_instance.log`: the container and the patch going in.
pub fn instance_log_head(inst: &Instance, rng: &mut ChaCha8Rng) -> String {
    let iid = &inst.instance_id;
    let id = container(rng);
    let mut out = String::new();
    out.push_str(&format!(
        "{} - INFO - Creating container for {iid}...\n",
        stamp(rng)
    ));
    out.push_str(&format!(
        "{} - INFO - Container for {iid} created: {id}\n",
        stamp(rng)
    ));
    out.push_str(&format!(
        "{} - INFO - Container for {iid} started: {id}\n",
        stamp(rng)
    ));
    out.push_str(&format!(
        "{} - INFO - Intermediate patch for {iid} written to logs/run_evaluation/run/model/{iid}/patch.diff, now applying to container...\n",
        stamp(rng)
    ));
    out
}

/// `run_instance.log` of an instance whose tests ran.
pub fn instance_log(inst: &Instance, draft: &Draft, rng: &mut ChaCha8Rng) -> String {
    let iid = &inst.instance_id;
    let patch = draft.prediction.model_patch.clone().unwrap_or_default();
    let mut out = instance_log_head(inst, rng);
    out.push_str(&format!("{} - INFO - >>>>> Applied Patch:\n", stamp(rng)));
    for f in diff_files(&patch) {
        out.push_str(&format!(
            "Checking patch {f}...\nApplied patch {f} cleanly.\n"
        ));
    }
    out.push('\n');
    out.push_str(&format!(
        "{} - INFO - Git diff before:\n{}\n",
        stamp(rng),
        patch.trim()
    ));
    out.push_str(&format!(
        "{} - INFO - Eval script for {iid} written to logs/run_evaluation/run/model/{iid}/eval.sh; copying to container...\n",
        stamp(rng)
    ));
    out.push_str(&format!(
        "{} - INFO - Test runtime: {}.{:02} seconds\n",
        stamp(rng),
        rng.gen_range(1..900),
        rng.gen_range(0..100)
    ));
    out.push_str(&format!(
        "{} - INFO - Test output for {iid} written to logs/run_evaluation/run/model/{iid}/test_output.txt\n",
        stamp(rng)
    ));
    out.push_str(&format!(
        "{} - INFO - Git diff after:\n{}\n",
        stamp(rng),
        patch.trim()
    ));
    out.push_str(&format!(
        "{} - INFO - Grading answer for {iid}...\n",
        stamp(rng)
    ));
    out.push_str(&format!(
        "{} - INFO - report: {{'{iid}': {{'patch_is_None': False, 'patch_exists': True}}}}\n",
        stamp(rng)
    ));
    out.push_str(&format!("Result for {iid}: resolved: False\n"));
    out.push_str(&close_container(iid, rng));
    out
}

pub fn close_container(iid: &str, rng: &mut ChaCha8Rng) -> String {
    let name = format!("sweb.eval.{}.run", iid.to_lowercase());
    format!(
        "{} - INFO - Attempting to stop container {name}...\n{} - INFO - Attempting to remove container {name}...\n{} - INFO - Container {name} removed.\n",
        stamp(rng),
        stamp(rng),
        stamp(rng)
    )
}

/// `run_instance.log` of an instance the harness gave up on: `what` is logged, then the
/// `EvaluationError` traceback.
pub fn instance_log_error(
    inst: &Instance,
    what: &str,
    error: &str,
    rng: &mut ChaCha8Rng,
) -> String {
    let iid = &inst.instance_id;
    let mut out = instance_log_head(inst, rng);
    out.push_str(&format!("{} - INFO - {what}\n", stamp(rng)));
    out.push_str(&format!(
        "{} - INFO - Traceback (most recent call last):\n  File \"/usr/lib/python3/site-packages/swebench/harness/run_evaluation.py\", line 312, in run_instance\n    raise EvaluationError(\nswebench.harness.utils.EvaluationError: Evaluation error for {iid}: {error}\nCheck (logs/run_evaluation/run/model/{iid}/run_instance.log) for more information.\n\n",
        stamp(rng)
    ));
    out.push_str(&close_container(iid, rng));
    out
}
