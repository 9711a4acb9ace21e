//! The official grader's rules that sit between a test log and `report.json`
//! (SWE-bench 5.0.2: `get_eval_report` in `harness/grading.py`, and the eval-script rewrite
//! of `harness/utils.py`). Pure functions: no container, no files.

use cwm_datasets::{Instance, Prediction};

use crate::error::EvalError;
use crate::grading::{grade, resolution, EvalType, ResolvedStatus};
use crate::infra::{classify_text, Tier};
use crate::log::{normalize_newlines, parse_test_log, END_TEST_OUTPUT, TEST_EXIT_CODE};
use crate::parsers::{self, Parser};
use crate::report::InstanceReport;

/// The shell variable 5.x keeps the test command's `$?` in.
pub const TEST_EXIT_CODE_VAR: &str = "SWEBENCH_TEST_EXIT_CODE";

/// The log parser for an instance: its `log_parser` field, else the one for its repo.
pub fn parser_for(instance: &Instance) -> Result<Parser, EvalError> {
    let name = match instance.log_parser.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => name,
        None => parsers::name_for_repo(&instance.repo).ok_or_else(|| EvalError::NoParser {
            instance_id: instance.instance_id.clone(),
            repo: instance.repo.clone(),
        })?,
    };
    parsers::by_name(name).ok_or_else(|| EvalError::UnknownParser {
        instance_id: instance.instance_id.clone(),
        name: name.to_string(),
    })
}

/// The instance's `eval_type` (`pass_and_fail` when the dataset has none).
pub fn eval_type_for(instance: &Instance) -> Result<EvalType, EvalError> {
    match instance.extra.get("eval_type") {
        None | Some(serde_json::Value::Null) => Ok(EvalType::PassAndFail),
        Some(value) => {
            value
                .as_str()
                .and_then(EvalType::from_name)
                .ok_or_else(|| EvalError::UnknownEvalType {
                    instance_id: instance.instance_id.clone(),
                    value: value.to_string(),
                })
        }
    }
}

/// `get_eval_report(test_spec, prediction, log, include_tests_status=True)`: the report for
/// one instance's test log. `Err` where 5.x raises (an unknown parser, or Django's parser
/// on a bare `FAIL:` line), and then writes no report.
pub fn report_for_log(
    instance: &Instance,
    prediction: &Prediction,
    test_output: &str,
) -> Result<InstanceReport, EvalError> {
    let mut report = InstanceReport::ungraded(&prediction.instance_id, true);
    if prediction.model_patch.is_none() {
        return Ok(InstanceReport::ungraded(&prediction.instance_id, false));
    }
    let parser = parser_for(instance)?;
    let eval_type = eval_type_for(instance)?;
    let parsed = parse_test_log(test_output, parser).map_err(|crash| EvalError::ParserCrash {
        instance_id: instance.instance_id.clone(),
        crash,
    })?;
    let Some(map) = parsed else {
        // Advisory: the verdict stays unresolved either way.
        if let Some((reason, tier)) = classify_text(&normalize_newlines(test_output)) {
            report.infra_failure = tier == Tier::Environment;
            report.infra_failure_reason = Some(reason.to_string());
        }
        return Ok(report);
    };
    let status = grade(
        &map,
        &instance.fail_to_pass,
        &instance.pass_to_pass,
        eval_type,
    );
    report.patch_successfully_applied = true;
    report.resolved = resolution(&status) == ResolvedStatus::Full;
    report.tests_status = Some(status);
    Ok(report)
}

/// The script 5.x runs for an eval script (`make_test_spec`: `parse_eval_script` then
/// `record_test_exit_code`): the shebang and `set -uxo pipefail` lines are dropped wherever
/// they are and put back on top, and the test command's exit status is kept in
/// `$SWEBENCH_TEST_EXIT_CODE` right before the end marker and printed after it.
pub fn official_eval_script(script: &str) -> String {
    let mut lines: Vec<String> = ["#!/bin/bash", "set -uxo pipefail"]
        .map(str::to_string)
        .to_vec();
    let body = script
        .trim_matches(cwm_parsers::py_is_space)
        .split('\n')
        .filter(|l| *l != "#!/bin/bash" && *l != "set -uxo pipefail");
    let mut recorded = false;
    for line in body {
        if !recorded && line.contains(END_TEST_OUTPUT) {
            recorded = true;
            lines.push(format!("{TEST_EXIT_CODE_VAR}=$?"));
            lines.push(line.to_string());
            lines.push(format!("echo \"{TEST_EXIT_CODE}: ${TEST_EXIT_CODE_VAR}\""));
        } else {
            lines.push(line.to_string());
        }
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_is_recorded_around_the_end_marker() {
        let script = "#!/bin/bash\nset -uxo pipefail\ncd /testbed\n: '>>>>> Start Test Output'\n\
                      pytest -rA\n: '>>>>> End Test Output'\ngit checkout x\n\n";
        let got = official_eval_script(script);
        assert_eq!(
            got,
            "#!/bin/bash\nset -uxo pipefail\ncd /testbed\n: '>>>>> Start Test Output'\n\
             pytest -rA\nSWEBENCH_TEST_EXIT_CODE=$?\n: '>>>>> End Test Output'\n\
             echo \">>>>> Test Exit Code: $SWEBENCH_TEST_EXIT_CODE\"\ngit checkout x\n"
        );
        // A script without an end marker is only re-headed.
        assert_eq!(
            official_eval_script("echo hi"),
            "#!/bin/bash\nset -uxo pipefail\necho hi\n"
        );
    }
}
