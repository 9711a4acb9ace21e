#!/usr/bin/env bash
# Fuzzes the parsers: builds every cargo-fuzz target in fuzz/ and runs each for SECONDS
# (default 180), one after another, then prints per target the executions, exec/s, coverage
# (libFuzzer's `cov` edges and `ft` features), corpus size and crashes. Exits 1 when any
# target crashed (a panic, an out-of-memory or a timeout); the inputs are kept under
# $FUZZ_WORK/artifacts/TARGET/ for a regression test. Not part of CI.
#
#   benches/fuzz.sh [SECONDS] [TARGET...]
#
# cargo-fuzz needs nightly flags; on stable Rust they are enabled with RUSTC_BOOTSTRAP=1.
# The build goes to its own target dir so the main build is not invalidated. The code is
# safe Rust (`forbid(unsafe_code)`), so the targets are built without a sanitizer, with
# optimisations and debug assertions (overflow checks): a panic is the finding.
#
# Environment: FUZZ_WORK (corpora, crashes, logs; default ~/.cache/cwm-bench/fuzz),
# FUZZ_TARGET_DIR (default ~/.cache/cwm-bench/fuzz-target), FUZZ_RSS_MB (default 2048),
# TMPDIR (where the targets write their input files; default /dev/shm).
set -euo pipefail

seconds=${1:-180}
shift || true
case $seconds in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 2
    ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
tools=$HOME/.cache/cwm-bench/tools
work=${FUZZ_WORK:-$HOME/.cache/cwm-bench/fuzz}
export PATH=$tools/bin:$PATH
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$HOME/.cache/cwm-bench/fuzz-target}
flags=(-O -a -s none)
# The trajectory and dataset targets write each input to a file: keep those in memory.
if [[ -z ${TMPDIR:-} && -w /dev/shm ]]; then
    export TMPDIR=/dev/shm
fi

if ! command -v cargo-fuzz >/dev/null; then
    cargo install cargo-fuzz --root "$tools"
fi

cd "$root/fuzz"
if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
echo "building ${#targets[@]} targets..." >&2
cargo fuzz build "${flags[@]}" >&2

results=()
crashed=0
for target in "${targets[@]}"; do
    corpus=$work/corpus/$target
    artifacts=$work/artifacts/$target
    log=$work/logs/$target.log
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    seeds=()
    [[ -d seeds/$target ]] && seeds=("seeds/$target")
    before=$(find "$artifacts" -type f | wc -l)
    echo "fuzzing $target for ${seconds}s..." >&2
    status=0
    cargo fuzz run "${flags[@]}" "$target" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
        -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -artifact_prefix="$artifacts/" \
        >"$log" 2>&1 || status=$?
    after=$(find "$artifacts" -type f | wc -l)
    crashes=$((after - before))
    if ((status != 0 && crashes == 0)); then
        crashes="?" # failed without an artifact (e.g. the build); see the log
    fi
    if ((status != 0)); then
        crashed=1
        echo "$target failed (exit $status); log: $log" >&2
        grep -E "^(thread|==[0-9]+== ERROR|SUMMARY|artifact_prefix|Test unit written)" "$log" | head -5 >&2 || true
    fi
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    execs=$(stat number_of_executed_units)
    rate=$(stat average_exec_per_sec)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    results+=("$(printf '| %s | %s | %s | %s | %s | %s | %s | %s |' \
        "$target" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes")")
done

echo "| target | seconds | execs | exec/s | cov (edges) | ft (features) | corpus | crashes |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${results[@]}"
exit "$crashed"
