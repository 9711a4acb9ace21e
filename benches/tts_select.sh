#!/usr/bin/env bash
# Cost of `tts select`: containers started and wall time for one instance with K samples
# (D distinct patches) and M kept reproduction tests, against the naive plan of one
# container per (sample, test) pair, whose cost is estimated from a one-candidate,
# one-test selection timed in the same session.
#
# Usage: benches/tts_select.sh [K] [M]   (defaults 8 and 4; D = 4; needs scripts/setup-tests)
set -euo pipefail
cd "$(dirname "$0")/.."
k="${1:-8}"
m="${2:-4}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME}/.cache/cwm-bench/target}"
cargo build --quiet --bin cwm-bench
bin="${CARGO_TARGET_DIR}/debug/cwm-bench"
"${bin}" images build-fixtures >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
id=fixtures__daterange-1
python3 - "${work}" "${k}" "${m}" <<'PY'
import json, sys
work, k, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gold = next(json.loads(l)["patch"] for l in open("datasets/fixtures/fixtures.jsonl")
            if json.loads(l)["instance_id"] == "fixtures__daterange-1")
patches = [gold] + [
    f"diff --git a/wrong{i}.txt b/wrong{i}.txt\nnew file mode 100644\n--- /dev/null\n+++ b/wrong{i}.txt\n@@ -0,0 +1 @@\n+wrong\n"
    for i in range(3)]
def turn(body):
    return "ok\n</think>\n" + body + "\n---\n"
for s in range(k):
    patch = patches[s % len(patches)]
    with open(f"{work}/sample-{s}.txt", "w") as f:
        f.write(turn(f"<tool: bash>\ncat > /tmp/patch.diff <<'END_PATCH'\n{patch}\nEND_PATCH\n</tool>")
                + turn("<tool: submit>\n/tmp/patch.diff\n</tool>") + "ok\n</think>\ndone\n")
script = ("import datetime as dt\ntry:\n    from calrange import add_months\n"
          "    result = add_months(dt.date(2024, 1, 31), 1)\nexcept ValueError:\n"
          "    print(\"Issue reproduced\")\nelse:\n"
          "    print(\"Issue resolved\" if result == dt.date(2024, 2, 29) else \"Other issues\")\n")
for t in range(m):
    body = f"# test {t}\n" + script
    with open(f"{work}/test-{t}.txt", "w") as f:
        f.write(turn(f"<tool: bash>\ncat > reproduce_issue.py <<'END_TEST'\n{body}END_TEST\n"
                     "git add -N reproduce_issue.py && git diff -- reproduce_issue.py > /tmp/test.diff\n</tool>")
                + turn("<tool: submit>\n/tmp/test.diff\n</tool>") + "ok\n</think>\ndone\n")
PY
runs="${work}/runs"
"${bin}" run --quiet --runs-dir "${runs}" --run-id bench --model "replay:${work}/sample-{sample}.txt" \
    --samples "${k}" --evaluate --instances "${id}" >/dev/null 2>&1
"${bin}" tts gen-tests --quiet --runs-dir "${runs}" --run bench --count "${m}" \
    --model "replay:${work}/test-{sample}.txt" >/dev/null 2>&1
seconds() { python3 -c "import time; print(time.monotonic())"; }
start=$(seconds)
"${bin}" tts select --runs-dir "${runs}" --run bench >/dev/null 2>&1
end=$(seconds)
containers=$(wc -l < "${runs}/bench/tts/candidates.jsonl")
ours=$(python3 -c "print(f'{${end} - ${start}:.1f}')")
# One container, one candidate, one test: the unit of the naive plan.
"${bin}" run --quiet --runs-dir "${runs}" --run-id unit --model "replay:${work}/sample-0.txt" \
    --samples 2 --evaluate --instances "${id}" >/dev/null 2>&1
"${bin}" tts gen-tests --quiet --runs-dir "${runs}" --run unit --count 1 \
    --model "replay:${work}/test-0.txt" >/dev/null 2>&1
start=$(seconds)
"${bin}" tts select --runs-dir "${runs}" --run unit >/dev/null 2>&1
end=$(seconds)
unit=$(python3 -c "print(f'{${end} - ${start}:.1f}')")
naive=$(python3 -c "print(f'{${k} * ${m} * (${end} - ${start}):.1f}')")
ratio=$(python3 -c "print(f'{${k} * ${m} * (${end} - ${start}) / (${ours}):.1f}')")
echo "| K | M | distinct | containers | wall | naive containers | naive wall (est.) | ratio |"
echo "|---|---|---|---|---|---|---|---|"
echo "| ${k} | ${m} | 4 | ${containers} | ${ours} s | $((k * m)) | ${naive} s (${unit} s each) | ${ratio}x |"
