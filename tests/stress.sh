#!/usr/bin/env bash
# Stress: the README's test command, with two CPU hogs running, several
# times in a row (3 unless told otherwise); every run must pass. Tests
# assert orders and counts, never durations or rates, so a saturated
# machine may make them slower but must not make them fail.
#
#   tests/stress.sh [runs]
#
# Prints each run's result and time and the load average, and exits non-zero
# at the first failing run. The hogs are killed on every exit path.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-3}
hogs=()
stop_hogs() {
  for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${hogs[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_hogs EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in 1 2; do
  yes > /dev/null &
  hogs+=("$!")
done
echo "stress: $runs runs of 'go test -race -count=1 -timeout 30m ./...' with 2 CPU hogs (pids ${hogs[*]}) on $(nproc) CPUs"

for ((i = 1; i <= runs; i++)); do
  start=$SECONDS
  if go test -race -count=1 -timeout 30m ./...; then
    echo "stress: run $i of $runs passed in $((SECONDS - start)) s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  else
    echo "stress: run $i of $runs FAILED after $((SECONDS - start)) s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    exit 1
  fi
done
echo "stress: $runs of $runs runs passed"
