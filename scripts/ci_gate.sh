#!/usr/bin/env bash
# CI regression gate: rerun the small real benchmark that made results/baseline.jsonl and compare.
#
#   scripts/ci_gate.sh                   # run the benchmark now, compare it with the baseline (.ci/run)
#   scripts/ci_gate.sh NEW.jsonl         # compare results measured already with the baseline
#   scripts/ci_gate.sh --refresh         # remake results/baseline.jsonl, baseline.md and baseline.png
#   scripts/ci_gate.sh --speed-only      # only the A/B speed gate (baseline's commit vs HEAD, here)
#
# Exit status is compare's: 0 nothing regressed, 1 a regression, 2 bad input or a broken run.
# Quality is gated against the committed baseline; speed by an A/B run of the baseline's own
# commit against HEAD on this machine (see ab_gate), never against figures from another machine.
# Extra arguments go to `mindbench compare` (e.g. --speed-tol 0.1); MINDBENCH_GATE_BENCH
# overrides the benchmark's arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

MINDBENCH=${MINDBENCH:-$( [ -x .venv/bin/mindbench ] && echo .venv/bin/mindbench || echo mindbench )}
# Small but able to see a real drop. The README's quick run (10 code tasks) cannot: 3 of 10 tasks
# lost is inside two standard errors. So the gate scores the packaged model on all 49 easy code
# problems (`code:easy`, where it passes about half, so a broken prompt or kernel shows as a
# large drop against a standard error of ~7 points), at fp32 and int4 (the full-precision path and
# the quantized one), with 3 speed repeats. About 6 minutes on 2 CPU cores.
BENCH_ARGS=${MINDBENCH_GATE_BENCH:-"--suite code:easy --full --precisions fp32,int4"}
BASELINE=${MINDBENCH_BASELINE:-results/baseline.jsonl}

if [ "${1:-}" = "--refresh" ]; then
    shift
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    # Write to a temp file first: a failed refresh must not leave a half-made baseline behind.
    start=$(date +%s)
    $MINDBENCH run $BENCH_ARGS --out "$tmp/baseline.jsonl" "$@"
    echo "benchmark took $(( $(date +%s) - start )) s" >&2
    # A baseline is evidence: one whose speed was measured contended (other processes took the
    # CPU, mindbench.measure.speed) would mislead every later reader. Refuse it unless told.
    pyb=${MINDBENCH_PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
    if [ "${MINDBENCH_REFRESH_ALLOW_CONTENDED:-0}" != 1 ] && ! "$pyb" -c 'import sys
from mindbench.store import results
bad = [r.config.precision for r in results.read(sys.argv[1]) if r.speed.verdict == "contended"]
if bad:
    sys.exit("Error: speed measured contended in the new baseline (" + ", ".join(bad) + "): rerun on a "
             "quiet machine, or set MINDBENCH_REFRESH_ALLOW_CONTENDED=1")' "$tmp/baseline.jsonl"; then
        exit 1
    fi
    mv "$tmp/baseline.jsonl" "$BASELINE"
    $MINDBENCH report "$BASELINE" --format md -o results/baseline.md --plot results/baseline.png
    $MINDBENCH report "$BASELINE" --format html -o results/baseline.html  # the page to share
    exit 0
fi

[ -f "$BASELINE" ] || { echo "Error: $BASELINE is missing; make it with scripts/ci_gate.sh --refresh" >&2; exit 2; }

# --- speed: A/B against the baseline's own commit, on this machine, in this run (issue 17) -------
# A speed figure from another machine (or the same machine at another time) can't gate: an AVX2
# host runs int4 4x slower than the AVX-512 host that made the baseline, with the same CPU name.
# So, as asv's `continuous` does, the baseline's commit (its records' software.commit) is checked
# out in a git worktree and measured beside HEAD, interleaved A, B, A, B..., with the same venv;
# only speed is judged here (compare --ab). Quality is still gated against the committed baseline.
# MINDBENCH_FAULT applies to HEAD only (the code under test; slow_decode:0.05 is a 5 % slower
# decode, the size the gate is sized to catch). MINDBENCH_GATE_SPEED=0 skips it.
# The measurement is scripts/ab_interleave.py: one live process per side, each loads the packaged
# model at fp32 and int4 once, and the two are timed repeat by repeat (A B, then B A) at 128 prompt
# + 32 new tokens, so each pair shares its stretch of the host's load; compare --ab judges the pairs
# (compare_interleaved). It looks at the pairs MINDBENCH_AB_LOOKS times (each at Pocock's level) and
# stops once every decode check is decided, at MINDBENCH_AB_PAIRS pairs, or when another pair would
# pass MINDBENCH_AB_BUDGET_S seconds of timing. The numbers were chosen by benchmarks/gate_power.py
# (docs/gate.md).
AB_PAIRS=${MINDBENCH_AB_PAIRS:-48}
AB_LOOKS=${MINDBENCH_AB_LOOKS:-3}
AB_BUDGET_S=${MINDBENCH_AB_BUDGET_S:-300}
AB_PRECISIONS=${MINDBENCH_AB_PRECISIONS:-fp32,int4}
PY=${MINDBENCH_PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
PY=$(cd "$(dirname "$(command -v "$PY")")" && pwd)/$(basename "$PY")   # absolute, symlink kept (a venv)

ab_run() {  # one interleaved A/B run: the baseline's tree ($1) against this one, pairs to $2
    "$PY" "$PWD/scripts/ab_interleave.py" --a "$1" --b "$PWD" --out "$2" \
        --max-pairs "$AB_PAIRS" --looks "$AB_LOOKS" --budget-s "$AB_BUDGET_S" --precisions "$AB_PRECISIONS" >&2
}

ab_gate() {
    [ "${MINDBENCH_GATE_SPEED:-1}" = 0 ] && { echo "speed not gated (MINDBENCH_GATE_SPEED=0)" >&2; return 0; }
    local commit dir rc=0 start
    commit=$("$PY" -c 'import json,sys
for line in open(sys.argv[1]):
    c = (json.loads(line).get("software") or {}).get("commit")
    if c: print(c.removesuffix("-dirty")); break' "$BASELINE" 2>/dev/null || true)
    if [ -z "$commit" ] || ! git cat-file -e "$commit^{commit}" 2>/dev/null; then
        echo "speed not gated: baseline commit unavailable (${commit:-none recorded}; a shallow clone?)" >&2
        return 0
    fi
    dir=$(mktemp -d)
    if ! git worktree add --quiet --detach "$dir/base" "$commit" >/dev/null 2>&1; then
        echo "speed not gated: baseline commit unavailable (git worktree add $commit failed)" >&2
        rm -rf "$dir"; return 0
    fi
    start=$(date +%s)
    # A: the baseline's code (its own package, same interpreter and libraries); B: HEAD, which alone
    # gets MINDBENCH_FAULT (the code under test)
    ab_run "$dir/base" "$dir/ab.json" || rc=2
    echo "A/B speed run (baseline commit ${commit:0:12} vs HEAD, two live processes) took $(( $(date +%s) - start )) s" >&2
    if [ "$rc" -eq 0 ]; then
        PYTHONPATH="$PWD" "$PY" -m mindbench.cli compare "$dir/ab.json" --ab "$@" || rc=$?
    else
        echo "Error: the A/B speed run failed; see above" >&2
    fi
    # A flagged regression is timed again by a fresh pair of processes before it fails the gate,
    # and is cleared only when that run rules the 5 % target out in every cell (a second flag or a
    # NOT DECIDED keeps the failure). On the recorded runs this takes false alarms from 1.9 % to
    # 0.5 % of honest gate runs and keeps a 5 % slowdown caught 97 times in 100 (docs/gate.md,
    # benchmarks/gate_power.py analyse-live). Honest runs rarely pay for it; MINDBENCH_AB_CONFIRM=0
    # skips it.
    if [ "$rc" -eq 1 ] && [ "${MINDBENCH_AB_CONFIRM:-1}" != 0 ]; then
        echo "the A/B run flagged a regression: timing again with a fresh pair of processes to confirm it" >&2
        local again=0
        ab_run "$dir/base" "$dir/ab2.json" || again=2
        if [ "$again" -eq 0 ]; then
            PYTHONPATH="$PWD" "$PY" -m mindbench.cli compare "$dir/ab2.json" --ab "$@" || true
            local verdict
            verdict=$(PYTHONPATH="$PWD" "$PY" -m mindbench.cli compare "$dir/ab2.json" --ab --json "$@" 2>/dev/null) || true
            if printf '%s' "$verdict" | "$PY" -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(0 if r["regressions"] == 0 and r["undecided"] == 0 else 1)' 2>/dev/null; then
                echo "not confirmed: fresh processes rule the slowdown out in every cell; the first flag was noise" >&2
                rc=0
            else
                echo "confirmed: the second A/B run does not rule the slowdown out (REGRESSION stands)" >&2
            fi
        else
            echo "Error: the confirming A/B run failed; see above (the first run's REGRESSION stands)" >&2
        fi
    fi
    # Python-level calls per decoded token, each side's own code (scripts/decode_work.py): a count
    # no neighbour can move, gated exactly, so added per-token Python work fails even on a noisy
    # host. The fault switch is off here: slow_decode's spin loop is a timing fault for the gate
    # above, not a code change to count. MINDBENCH_GATE_WORK=0 skips it.
    if [ "${MINDBENCH_GATE_WORK:-1}" != 0 ] && [ "$rc" -ne 2 ]; then
        local w=0 work_script=$PWD/scripts/decode_work.py
        if ( cd "$dir/base" && env -u MINDBENCH_FAULT PYTHONPATH="$dir/base" "$PY" "$work_script" --out "$dir/work_a.json" >/dev/null ) \
           && env -u MINDBENCH_FAULT PYTHONPATH="$PWD" "$PY" "$work_script" --out "$dir/work_b.json" >/dev/null; then
            "$PY" "$work_script" --compare "$dir/work_a.json" "$dir/work_b.json" || w=$?
        else
            echo "decode work not compared: counting failed on one side (see above)" >&2
        fi
        rc=$(worst "$rc" "$w")
    fi
    git worktree remove --force "$dir/base" >/dev/null 2>&1 || true
    rm -rf "$dir"
    return "$rc"
}

gate() {
    # Quality (and status, memory) against the committed baseline; speed comes from ab_gate.
    # Rows match on the same memory class. A CI machine with other RAM than the baseline's has
    # no matching rows (exit 2): then gate quality alone across machines, where greedy decoding
    # still scores the same tasks the same way, and leave memory out.
    local out=$1; shift
    local rc=0
    # Peak RSS at int4 is one sample of a noisy figure: six runs of unchanged code on the 2-core
    # CI host (2026-12-06) peaked at 1497 (the baseline, quiet), 1670, 1682, 1714, 1717 and 1835 MB
    # (+23 %, which failed compare's default 20 %), while fp32 stayed within 0.4 %. 30 % still
    # catches a kept fp32 copy of the weights at int4 (+34 %). MINDBENCH_GATE_MEMORY_TOL overrides.
    local mem_tol=${MINDBENCH_GATE_MEMORY_TOL:-0.30}
    $MINDBENCH compare "$BASELINE" "$out" --no-speed --memory-tol "$mem_tol" "$@" || rc=$?
    if [ "$rc" -eq 2 ] && [ -f "$out" ] && [ -f "$BASELINE" ]; then
        echo "no rows matched on this machine's memory class: gating quality across machines" >&2
        rc=0
        $MINDBENCH compare "$BASELINE" "$out" --hardware any --no-speed --memory-tol "$mem_tol" "$@" || rc=$?
    fi
    return "$rc"
}

worst() {  # 2 (broken) over 1 (regression) over 0
    if [ "$1" -eq 2 ] || [ "$2" -eq 2 ]; then echo 2; elif [ "$1" -eq 1 ] || [ "$2" -eq 1 ]; then echo 1; else echo 0; fi
}

if [ "${1:-}" = "--speed-only" ]; then
    shift
    rc=0; ab_gate "$@" || rc=$?
    exit "$rc"
fi

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    # Results measured already (by .ci/run's main command): gate them without measuring twice.
    out=$1
    shift
    $MINDBENCH report "$out" --format md || true  # the table is for people; compare decides
    q=0; gate "$out" "$@" || q=$?
    s=0; ab_gate "$@" || s=$?
    exit "$(worst "$q" "$s")"
fi
out=${MINDBENCH_GATE_OUT:-$(mktemp -d)/ci.jsonl}
start=$(date +%s)
# A benchmark that cannot run at all is a broken gate (2), not a regression (1); failed cells
# inside a run are records with their status, and compare flags them as regressions.
$MINDBENCH run $BENCH_ARGS --out "$out" || { echo "Error: mindbench run failed; see above" >&2; exit 2; }
echo "benchmark took $(( $(date +%s) - start )) s; results in $out" >&2
$MINDBENCH report "$out" --format md || true
q=0; gate "$out" "$@" || q=$?
s=0; ab_gate "$@" || s=$?
exit "$(worst "$q" "$s")"
