#!/usr/bin/env bash
# make test-learning: every test that asserts that training learns (named `learns_*` or
# `*_learns_*`), under 5 seeds and under every CPU kernel set libtorch offers on this host
# (ATEN_CPU_CAPABILITY = default, avx2, avx512 where the CPU has them: on another CPU the kernels
# are another seed), then one table of the worst margin of every checked bound.
#
#   scripts/test_learning.sh [SEEDS]        SEEDS default 0,1,2,3,4
#
# Each test prints `learning-margin <test> <quantity> seed=… observed=… bound=… margin=… ok|FAIL`
# (crates/testkit); this script gathers those lines. Exit status non-zero if any run failed.
# Needs the release test binaries (make build) and the models (make setup).
set -uo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-0,1,2,3,4}
OUT=${LEARNING_OUT:-target/test-learning}
mkdir -p "$OUT"
rm -f "$OUT"/*.log

caps=(default)
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
[[ $flags == *" avx2 "* ]] && caps+=(avx2)
if [[ $flags == *" avx512f "* && $flags == *" avx512bw "* && $flags == *" avx512vl "* && $flags == *" avx512dq "* ]]; then
  caps+=(avx512)
fi
echo "test-learning: seeds $SEEDS; kernel sets ${caps[*]} (this CPU)"

status=0
t0=$(date +%s)
for cap in "${caps[@]}"; do
  seen=$(ATEN_CPU_CAPABILITY=$cap target/release/train env 2>/dev/null | awk '/cpu kernels/ {print $3}')
  echo "test-learning: ATEN_CPU_CAPABILITY=$cap (libtorch dispatches to: ${seen:-?})"
  for suite in train e2e; do
    log="$OUT/$cap-$suite.log"
    # The e2e learning test builds the synthetic fixture once per process, so all seeds run in it.
    if ! ATEN_CPU_CAPABILITY=$cap FER_LEARNING_SEEDS=$SEEDS \
        cargo test --release --workspace --test "$suite" learns_ -- --nocapture >"$log" 2>&1; then
      echo "test-learning: FAILED under $cap ($suite): see $log"
      grep -E "^test .* FAILED|panicked" "$log" | head -5
      status=1
    fi
  done
done
echo "test-learning: $(( $(date +%s) - t0 )) s"

python3 - "$OUT" "${caps[@]}" <<'PY'
import collections, glob, os, re, sys
out, caps = sys.argv[1], sys.argv[2:]
pat = re.compile(r"^learning-margin (\S+) (\S+) ([<>]) (\S+) seed=(\d+) observed=(\S+) margin=(\S+) (ok|FAIL)$")
rows = collections.defaultdict(list)
for cap in caps:
    for log in sorted(glob.glob(os.path.join(out, f"{cap}-*.log"))):
        for line in open(log, errors="replace"):
            m = pat.match(line.strip())
            if m:
                test, q, op, bound, seed, obs, margin, ok = m.groups()
                rows[(test, q, op, float(bound))].append((float(margin), float(obs), cap, int(seed), ok))
if not rows:
    print("test-learning: no learning-margin lines found (did the tests run?)")
    sys.exit(1)
print()
print("| test | bound | runs | worst observed | worst margin | at | " + " | ".join(f"worst margin, {c}" for c in caps) + " |")
print("|---|---|---|---|---|---|" + "---|" * len(caps))
for (test, q, op, bound), v in sorted(rows.items()):
    worst = min(v)
    per = [f"{min(x for x in v if x[2] == c)[0]:+.3f}" if any(x[2] == c for x in v) else "-" for c in caps]
    fails = sum(1 for x in v if x[4] != "ok")
    runs = f"{len(v)}" + (f" ({fails} FAIL)" if fails else "")
    print(f"| {test} | {q} {'>' if op == '>' else '<'} {bound:g} | {runs} | {worst[1]:.3f} | {worst[0]:+.3f} | "
          f"{worst[2]}, seed {worst[3]} | " + " | ".join(per) + " |")
PY
py=$?
[[ $py -ne 0 ]] && status=1
exit $status
