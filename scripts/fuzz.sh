#!/usr/bin/env bash
# Fuzzes each cargo-fuzz target for SECONDS (default 600), FUZZ_PARALLEL at a time (default: the
# number of cores), then prints one line per target: executions, coverage, corpus, crashes.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]        (make fuzz FUZZ_SECONDS=600)
#
# Needs a nightly toolchain (cargo-fuzz uses sanitizer flags); cargo-fuzz itself is installed from
# crates.io when missing. New corpus entries go to fuzz/work/<target> (ignored by git); the
# committed seeds in fuzz/corpus/<target> are only read. Crashes land in fuzz/artifacts/<target>:
# minimise one (`cargo +nightly fuzz tmin TARGET FILE`), copy it to fuzz/regressions/<target>/
# under a name that says what broke, fix the bug, and `make test` replays it from then on.
set -euo pipefail
secs=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fer2013_csv ckplus_files dlib_model cascade_xml shard_reader)
fi
cd "$(dirname "$0")/../fuzz"

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: a nightly toolchain is needed: rustup toolchain install nightly --profile minimal" >&2
  exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo +nightly fuzz build

mkdir -p work logs
run_one() {
  local t=$1 secs=$2
  mkdir -p "work/$t" "artifacts/$t"
  # -timeout: an input running 10 s is a hang and is reported as a crash.
  cargo +nightly fuzz run "$t" "work/$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"logs/$t.log" 2>&1 || true
}
export -f run_one
printf '%s\n' "${targets[@]}" | xargs -P "${FUZZ_PARALLEL:-$(nproc)}" -I{} bash -c "run_one {} $secs"

# "seconds" is libFuzzer's own count for a run that ended normally, "stopped" for one that ended on
# a crash or hang (its input is in artifacts/).
printf '\n%-14s %8s %12s %10s %8s %8s %8s\n' target seconds executions exec/s cov corpus crashes
for t in "${targets[@]}"; do
  log="logs/$t.log"
  ran=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | awk '{print $5}')
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | awk '{print $2}')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -1 | awk '{print $2}')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  corpus=$(find "work/$t" -type f | wc -l)
  crashes=$(find "artifacts/$t" -type f | wc -l)
  printf '%-14s %8s %12s %10s %8s %8s %8s\n' "$t" "${ran:-stopped}" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$corpus" "$crashes"
done
