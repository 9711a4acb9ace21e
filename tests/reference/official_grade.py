"""Grade a corpus of cases with the official SWE-bench grader (swebench 5.0.2).

Run with the python of the venv that `scripts/setup-tests` makes:

    ~/.cache/cwm-bench/swebench-5.0.2/bin/python tests/reference/official_grade.py \
        CASES.json DATASET.jsonl OUT.json

CASES.json (written by tests/grading_differential.rs):

    {"cases": [{"id", "instance_id", "run_id", "prediction": {...},
                "test_output": str | null, "instance_log": str | null,
                "report_file": "graded" | "absent" | {"text": str},
                "junk": [byte, ...] | null}],
     "runs": [{"run_id", "dataset_ids": [...], "predictions": [{...}]}]}

Each case is laid out as the official harness lays out one instance,
`logs/run_evaluation/<run_id>/<model>/<instance_id>/`, inside a scratch working directory.
The report is what `get_eval_report` returns, serialised as `run_instance` writes it; a
grader exception means no report (null), as `run_instance` then writes no report.json.
`report_file` says what the run's report.json holds afterwards: the graded report, nothing
(the harness stopped before grading: timeout, patch failure) or a given text (a damaged
file). `junk` bytes are then appended to the instance's logs (binary output, which only
the run summary's log classification reads). Each run is then summarised with `make_run_report`, whose file text is returned.

OUT.json: {"version", "reports": {id: text | null}, "report_errors": {id: str},
           "runs": {run_id: text | null}, "run_errors": {run_id: str}, "seconds": float}
"""

import contextlib
import importlib.metadata
import io
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

EXPECTED_VERSION = "5.0.2"


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    cases_path, dataset_path, out_path = (Path(p).resolve() for p in sys.argv[1:])

    version = importlib.metadata.version("swebench")
    if version != EXPECTED_VERSION:
        print(
            f"swebench {version} is installed, the reference is {EXPECTED_VERSION}; "
            "run scripts/setup-tests",
            file=sys.stderr,
        )
        return 3

    from swebench.harness.constants import (
        LOG_INSTANCE,
        LOG_REPORT,
        LOG_TEST_OUTPUT,
        RUN_EVALUATION_LOG_DIR,
    )
    from swebench.harness.grading import get_eval_report
    from swebench.harness.reporting import make_run_report
    from swebench.harness.utils import make_test_spec

    started = time.monotonic()
    corpus = json.loads(cases_path.read_text(encoding="utf-8"))
    rows = {}
    with open(dataset_path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                rows[row["instance_id"]] = row

    specs = {}
    reports, report_errors = {}, {}
    runs, run_errors = {}, {}
    scratch = tempfile.TemporaryDirectory(prefix="cwm-bench-official-")
    # The harness resolves its log directory against the working directory.
    os.chdir(scratch.name)

    for case in corpus["cases"]:
        iid = case["instance_id"]
        if iid not in specs:
            specs[iid] = make_test_spec(rows[iid])
        spec = specs[iid]
        prediction = case["prediction"]
        model = prediction.get("model_name_or_path", "None").replace("/", "__")
        log_dir = RUN_EVALUATION_LOG_DIR / case["run_id"] / model / iid
        log_dir.mkdir(parents=True, exist_ok=True)
        if case.get("instance_log") is not None:
            with open(log_dir / LOG_INSTANCE, "w") as f:
                f.write(case["instance_log"])
        text = None
        if case.get("test_output") is not None:
            # Written as run_instance writes it: text mode, default encoding.
            test_output_path = log_dir / LOG_TEST_OUTPUT
            with open(test_output_path, "w") as f:
                f.write(case["test_output"])
            try:
                report = get_eval_report(
                    test_spec=spec,
                    prediction=prediction,
                    test_log_path=test_output_path,
                    include_tests_status=True,
                )
                text = json.dumps(report, indent=4)
            except Exception:
                report_errors[case["id"]] = traceback.format_exc(limit=3)
            reports[case["id"]] = text
        report_file = case.get("report_file", "graded")
        if report_file == "graded":
            if text is not None:
                with open(log_dir / LOG_REPORT, "w") as f:
                    f.write(text)
        elif isinstance(report_file, dict):
            with open(log_dir / LOG_REPORT, "w") as f:
                f.write(report_file["text"])
        if case.get("junk"):
            for name in (LOG_TEST_OUTPUT, LOG_INSTANCE):
                if (log_dir / name).exists():
                    with open(log_dir / name, "ab") as f:
                        f.write(bytes(case["junk"]))

    for run in corpus["runs"]:
        run_id = run["run_id"]
        predictions = {p["instance_id"]: p for p in run["predictions"]}
        full_dataset = [rows[iid] for iid in run["dataset_ids"]]
        try:
            # make_run_report prints its counts; keep them out of our output.
            with contextlib.redirect_stdout(io.StringIO()):
                path = make_run_report(
                    predictions, full_dataset, run_id, None, f"run-reports/{run_id}"
                )
            runs[run_id] = Path(path).read_text()
        except Exception:
            runs[run_id] = None
            run_errors[run_id] = traceback.format_exc(limit=3)

    os.chdir("/")
    scratch.cleanup()
    out = {
        "version": version,
        "reports": reports,
        "report_errors": report_errors,
        "runs": runs,
        "run_errors": run_errors,
        "seconds": time.monotonic() - started,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
