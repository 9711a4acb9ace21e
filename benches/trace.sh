#!/usr/bin/env bash
# Tracer cost: each fixture's FAIL_TO_PASS tests run in one container (gold and test patches
# applied) without tracing and under benches' copy of the tracer with the default limits;
# the wall time of each, best of 3, and the ratio. Goal: under 10x.
#
# Usage: benches/trace.sh    (needs scripts/setup-tests)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME}/.cache/cwm-bench/target}"
cargo build --quiet --bin cwm-bench
bin="${CARGO_TARGET_DIR}/debug/cwm-bench"
"${bin}" images build-fixtures >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
cp src/pipeline/trace/cwm_tracer.py "${work}/"
echo "| fixture | tests | plain | traced | ratio |"
echo "|---|---:|---:|---:|---:|"
python3 - "${work}" <<'PY' | while IFS=$'\t' read -r id image plain traced n; do
import json, shlex, sys
work = sys.argv[1]
for line in open("datasets/fixtures/fixtures.jsonl"):
    r = json.loads(line)
    if r["log_parser"] != "parse_log_pytest":
        continue  # the pytest fixtures: one command runs all their FAIL_TO_PASS ids
    iid = r["instance_id"]
    open(f"{work}/{iid}.gold", "w").write(r["patch"])
    open(f"{work}/{iid}.test", "w").write(r["test_patch"])
    f2p = r["FAIL_TO_PASS"]
    f2p = json.loads(f2p) if isinstance(f2p, str) else f2p
    # Ids the official parser cut at a space select their whole function (as `trace` does).
    def target(t):
        head, _, params = t.partition("[")
        whole = params.endswith("]") and t.count("[") == t.count("]")
        return t if not params or whole else head
    ids = " ".join(sorted(set(shlex.quote(target(t)) for t in f2p)))
    plain = f"python3 -m pytest -q -p no:cacheprovider {ids}"
    traced = f"python3 /w/cwm_tracer.py --out /tmp/t.jsonl --root /testbed -- -m pytest -q -p no:cacheprovider {ids}"
    print("\t".join([iid, r["image"], plain, traced, str(len(f2p))]))
PY
    script="cd /testbed && git apply /w/${id}.gold /w/${id}.test >/dev/null
best() { b=999; for i in 1 2 3; do s=\$(date +%s.%N); bash -c \"\$1\" >/dev/null 2>&1; e=\$(date +%s.%N); b=\$(python3 -c \"print(min(\$b, \$e - \$s))\"); done; echo \$b; }
p=\$(best \"${plain//\"/\\\"}\"); t=\$(best \"${traced//\"/\\\"}\")
python3 -c \"print('%.3f s\t%.3f s\t%.1fx' % (\$p, \$t, \$t / \$p))\""
    result=$(docker run --rm --network none -v "${work}:/w:ro" "${image}" bash -c "${script}")
    echo "| ${id} | ${n} | ${result//$'\t'/ | } |"
done

# The worst case: a workload over pure-Python standard-library modules with the library as
# the root, so every call is traced (tests/data/trace_corpus/stdlib_work.py), on the
# machine's python3: plain, under the default limits (500 examples), and unlimited.
lib="$(python3 -c 'import os; print(os.path.dirname(os.__file__))')"
workload=tests/data/trace_corpus/stdlib_work.py
seconds() {
    local b=999 s e
    for _ in 1 2 3; do
        s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
        b=$(python3 -c "print(min(${b}, ${e} - ${s}))")
    done
    echo "${b}"
}
plain=$(seconds python3 "${workload}")
limited=$(seconds python3 "${work}/cwm_tracer.py" --out "${work}/w.jsonl" --root "${lib}" -- "${workload}")
all=$(seconds python3 "${work}/cwm_tracer.py" --out "${work}/w.jsonl" --root "${lib}" --max-examples 1000000 -- "${workload}")
events=$(python3 -c "import json, sys; print(sum(len(json.loads(l)['frames']) for l in open(sys.argv[1])))" "${work}/w.jsonl")
echo
echo "| stdlib workload | plain | default limits | every call | events | per event |"
echo "|---|---:|---:|---:|---:|---:|"
python3 -c "p, l, a, n = ${plain}, ${limited}, ${all}, ${events}; print('| %s | %.3f s | %.3f s (%.1fx) | %.2f s (%.0fx) | %d | %.0f us |' % ('$(python3 -V | cut -d' ' -f2)', p, l, l / p, a, a / p, n, (a - p) / n * 1e6))"
