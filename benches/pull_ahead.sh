#!/usr/bin/env bash
# Pull-ahead benchmark: wall time of a 9-instance run whose images come from a registry, with
# and without `run --prefetch`.
#
# Each fixture image gets a layer of random bytes of its own (BALLAST_MB, default 24), so a
# pull downloads that much whatever the machine already holds; the images are pushed to a
# throttled local registry (Debian's docker-registry behind benches/throttle_proxy.py at
# RATE_MBPS per connection, default 6), and their local copies removed before each run.
# Episodes are a replay script that works for EPISODE_SECS (default 8) and submits an empty
# patch (no grading): the shape of a real run, whose episodes take minutes and whose images
# take a minute to pull.
#
# Usage: benches/pull_ahead.sh [ROUNDS]   (needs scripts/setup-tests; ~4 min per round)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-1}"
ballast_mb="${BALLAST_MB:-24}"
rate_mbps="${RATE_MBPS:-6}"
episode_secs="${EPISODE_SECS:-8}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME}/.cache/cwm-bench/target}"
# The debug build the tests use: this measures waiting for pulls, not code speed.
cargo build --quiet --bin cwm-bench
bin="${CARGO_TARGET_DIR}/debug/cwm-bench"
"${bin}" images build-fixtures >/dev/null

work="$(mktemp -d)"
registry_pid="" proxy_pid=""
cleanup() {
    [ -n "${proxy_pid}" ] && kill "${proxy_pid}" 2>/dev/null || true
    [ -n "${registry_pid}" ] && kill "${registry_pid}" 2>/dev/null || true
    docker images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost:5[0-9]*/pullahead/' \
        | xargs -r docker rmi -f >/dev/null 2>&1 || true
    docker ps -aq --filter 'label=cwm-bench.run' --filter 'name=pullahead' | xargs -r docker rm -f >/dev/null 2>&1 || true
    rm -rf "${work}"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
registry_port="$(free_port)"
proxy_port="$(free_port)"
cat > "${work}/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${work}/data
http:
  addr: 127.0.0.1:${registry_port}
YAML
docker-registry serve "${work}/registry.yml" 2>"${work}/registry.log" &
registry_pid=$!
python3 benches/throttle_proxy.py "${proxy_port}" "${registry_port}" $((rate_mbps * 1000 * 1000)) &
proxy_pid=$!
until curl -fs "http://127.0.0.1:${registry_port}/v2/" >/dev/null; do sleep 0.2; done

direct="localhost:${registry_port}/pullahead"
proxied="localhost:${proxy_port}/pullahead"
dataset="${work}/pullahead.jsonl"
: > "${dataset}"
# "id image" of every fixture.
python3 -c 'import json
for line in open("datasets/fixtures/fixtures.jsonl"):
    row = json.loads(line)
    print(row["instance_id"], row["image"])' > "${work}/fixtures.txt"
while read -r id fixture; do
    tag="$(echo "${id}" | tr 'A-Z_' 'a-z-')"
    container="pullahead-ballast-$$"
    docker run --name "${container}" "${fixture}" sh -c "head -c $((ballast_mb * 1024 * 1024)) /dev/urandom > /opt/cwm-ballast" >/dev/null
    docker commit "${container}" "${direct}/${tag}:latest" >/dev/null
    docker rm -f "${container}" >/dev/null
    docker push --quiet "${direct}/${tag}:latest" >/dev/null
    docker rmi "${direct}/${tag}:latest" >/dev/null
    python3 -c 'import json, sys
for line in open("datasets/fixtures/fixtures.jsonl"):
    row = json.loads(line)
    if row["instance_id"] == sys.argv[1]:
        row["image"] = sys.argv[2]
        print(json.dumps(row))' "${id}" "${proxied}/${tag}:latest" >> "${dataset}"
done < "${work}/fixtures.txt"

script="${work}/episode.txt"
printf 'ok\n</think>\n<tool: bash>\nsleep %s\n</tool>\n---\nok\n</think>\ndone\n' "${episode_secs}" > "${script}"

run_once() {
    local prefetch="$1" round="$2"
    docker images --format '{{.Repository}}:{{.Tag}}' | grep "^${proxied}/" | xargs -r docker rmi >/dev/null
    local started ended
    started=$(date +%s.%N)
    "${bin}" run --quiet --model "replay:${script}" --dataset "${dataset}" --prefetch "${prefetch}" \
        --run-id "pullahead-${prefetch}-${round}-$$" --runs-dir "${work}/runs" >/dev/null
    ended=$(date +%s.%N)
    python3 -c "print(f'{${ended} - ${started}:.1f}')"
}

echo "9 instances, ${ballast_mb} MB of layer each at ${rate_mbps} MB/s per connection, ${episode_secs} s episodes"
echo "| round | --prefetch 0 | --prefetch 2 |"
echo "|---|---|---|"
for round in $(seq 1 "${rounds}"); do
    without=$(run_once 0 "${round}")
    with=$(run_once 2 "${round}")
    echo "| ${round} | ${without} s | ${with} s |"
done
