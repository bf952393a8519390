#!/usr/bin/env bash
# Interleaved before/after benchmark of the issue-20 refactor: "No figure worse" on the
# encode benchmark, streaming memory, Ray against local and the serve benchmark.
#
#   bash benchmarks/ab_refactor.sh              # ~15 min on a QUIET 2-core machine
#   AB_SMOKE=1 bash benchmarks/ab_refactor.sh   # tiny sizes, proves the pipeline (<= ~7.5 min)
#
# Before = commit $AB_BEFORE (default 66b70e0, main before this work), checked out as a git
# worktree under $AB_ROOT (default /tmp/recfeat-ab) and imported through a mapping folder
# ($AB_ROOT/pkg/recfeat: the old core/ plus plugins/ and exporters/ as subfolders, the
# layout pyproject's package-dir gives the installed package) put first on PYTHONPATH. That
# matters: the editable install's finder maps recfeat.plugins / recfeat.exporters to THIS
# tree, so a plain `recfeat -> old/core` link would load the new tree's built-in plugins
# into the old core. A preflight checks where recfeat, recfeat.plugins and
# recfeat.exporters come from on each side and stops when one is wrong.
# After = this working tree (the editable install, PYTHONPATH unset).
#
# Each measurement is one fresh process (benchmarks/ab_measure.py) run by the SAME harness
# code for both sides; pairs alternate which side goes first (round 1 before->after, round
# 2 after->before, ...), so drift on a shared machine hits both sides alike.
#
# Bounded: a before/after pair is not started once it would end past $AB_BUDGET seconds
# (default 780) of measuring (estimated from the same bench's previous pair; Ray goes last
# in a round, so it is what a tight budget drops first); each measurement gets at most
# $AB_MEASURE_TIMEOUT s (default 240); the whole measuring phase runs under a hard
# `timeout` of budget + 120 s. The report is written from whatever finished, and lists
# what was skipped.
#
# Outputs: benchmarks/results/refactor_issue20.{md,json,png} (smoke: $AB_ROOT/smoke-results/
# refactor_issue20_smoke.*), raw JSON lines and a log in $AB_ROOT/runs/<stamp>/.
#
# Knobs (env): AB_ROUNDS (3), AB_BENCHES ("encode-bf16 encode-fp32 memory-stream serve
# ray-vs-local"),
# AB_ENCODE_TEXTS (1000), AB_MEMORY_SIZES (10000,20000), AB_RAY_ROWS (200),
# AB_SERVE_LEVELS (1:30,8:120,64:240), AB_SERVE_OFFLINE (240), AB_BUDGET (780),
# AB_OUT (results folder), AB_TOL (0.05),
# AB_SETUP_ONLY=1 (worktree, mapping, preflight and inputs only; measures nothing).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PY=${AB_PYTHON:-$REPO/.venv/bin/python}
ROOT=${AB_ROOT:-/tmp/recfeat-ab}
BEFORE_REF=${AB_BEFORE:-66b70e0}
OLD=$ROOT/before
PKG=$ROOT/pkg
DATA=${RECFEAT_DATA_DIR:-$(cd "$REPO/.." && pwd)/shared/data}

if [[ "${AB_SMOKE:-0}" == 1 ]]; then
  : "${AB_ROUNDS:=2}" "${AB_ENCODE_TEXTS:=60}" "${AB_MEMORY_SIZES:=500,2000}" "${AB_RAY_ROWS:=20}"
  : "${AB_SERVE_LEVELS:=1:8,8:16}" "${AB_SERVE_OFFLINE:=16}" "${AB_SERVE_BATCH1:=5}"
  : "${AB_SERVE_WARMUP:=4}" "${AB_BUDGET:=420}" "${AB_OUT:=$ROOT/smoke-results}"
  STEM=refactor_issue20_smoke
  WORK=$ROOT/work-smoke
else
  : "${AB_ROUNDS:=3}" "${AB_ENCODE_TEXTS:=1000}" "${AB_MEMORY_SIZES:=10000,20000}" "${AB_RAY_ROWS:=200}"
  : "${AB_SERVE_LEVELS:=1:30,8:120,64:240}" "${AB_SERVE_OFFLINE:=240}" "${AB_SERVE_BATCH1:=30}"
  : "${AB_SERVE_WARMUP:=16}" "${AB_BUDGET:=780}" "${AB_OUT:=$REPO/benchmarks/results}"
  STEM=refactor_issue20
  WORK=$ROOT/work
fi
: "${AB_BENCHES:=encode-bf16 encode-fp32 memory-stream serve ray-vs-local}" "${AB_MEASURE_TIMEOUT:=240}" "${AB_TOL:=0.05}"
HARD=$((AB_BUDGET + 120))
export AB_ROUNDS AB_ENCODE_TEXTS AB_MEMORY_SIZES AB_RAY_ROWS AB_SERVE_LEVELS AB_SERVE_OFFLINE \
  AB_SERVE_BATCH1 AB_SERVE_WARMUP AB_BUDGET AB_BENCHES AB_MEASURE_TIMEOUT PY ROOT OLD PKG DATA WORK

say() { echo "[$(date +%H:%M:%S)] ab_refactor: $*"; }

# -- the measuring phase (re-entered under `timeout` below) --------------------------------
measure_phase() {
  local run=$1 raw=$1/raw.jsonl start deadline
  start=$(date +%s)
  deadline=$((start + AB_BUDGET))
  run_one() {  # side bench round order
    local side=$1 bench=$2 round=$3 order=$4 now remaining t rc args
    now=$(date +%s)
    remaining=$((deadline - now))
    if ((remaining < 15)); then
      say "SKIP $bench $side round $round: budget spent"
      echo "{\"bench\": \"$bench\", \"side\": \"$side\", \"round\": $round, \"skipped\": \"budget spent\"}" >>"$raw"
      return
    fi
    t=$((remaining < AB_MEASURE_TIMEOUT ? remaining : AB_MEASURE_TIMEOUT))
    case $bench in
      encode-bf16) args=(encode --kind bf16 --texts "$AB_ENCODE_TEXTS") ;;
      encode-fp32) args=(encode --kind fp32 --texts "$AB_ENCODE_TEXTS") ;;
      memory-stream) args=(memory --sizes "$AB_MEMORY_SIZES") ;;
      ray-vs-local) args=(ray --rows "$AB_RAY_ROWS") ;;
      serve) args=(serve --levels "$AB_SERVE_LEVELS" --offline-texts "$AB_SERVE_OFFLINE"
                   --batch1 "$AB_SERVE_BATCH1" --warmup "$AB_SERVE_WARMUP") ;;
      *) say "unknown bench $bench"; return ;;
    esac
    say "round $round/$AB_ROUNDS  $bench  $side  (elapsed $((now - start)) s of $AB_BUDGET; limit $t s)"
    if [[ $side == before ]]; then
      (cd "$REPO" && PYTHONPATH=$PKG timeout --foreground -k 10 $((t + 30)) "$PY" "$HERE/ab_measure.py" "${args[@]}" \
        --side "$side" --round "$round" --order "$order" --raw "$raw" --work "$WORK" \
        --scratch "$run/scratch" --data-dir "$DATA" --timeout "$t")
    else
      (cd "$REPO" && env -u PYTHONPATH timeout --foreground -k 10 $((t + 30)) "$PY" "$HERE/ab_measure.py" "${args[@]}" \
        --side "$side" --round "$round" --order "$order" --raw "$raw" --work "$WORK" \
        --scratch "$run/scratch" --data-dir "$DATA" --timeout "$t")
    fi
    rc=$?
    if ((rc != 0)); then
      say "FAILED $bench $side round $round (exit $rc)"
      echo "{\"bench\": \"$bench\", \"side\": \"$side\", \"round\": $round, \"error\": \"exit $rc\"}" >>"$raw"
    fi
  }
  local r first second p0 est now
  declare -A took  # bench -> seconds its last pair took
  for ((r = 1; r <= AB_ROUNDS; r++)); do
    if ((r % 2)); then first=before second=after; else first=after second=before; fi
    for bench in $AB_BENCHES; do
      now=$(date +%s)
      est=${took[$bench]:-0}
      if ((now + est > deadline)); then
        say "SKIP $bench round $r: its last pair took $est s, $((deadline - now)) s of the budget left"
        for side in $first $second; do
          echo "{\"bench\": \"$bench\", \"side\": \"$side\", \"round\": $r, \"skipped\": \"budget: the last pair took $est s, $((deadline - now)) s left\"}" >>"$raw"
        done
        continue
      fi
      p0=$now
      run_one "$first" "$bench" "$r" 0
      run_one "$second" "$bench" "$r" 1
      took[$bench]=$(($(date +%s) - p0))
    done
    say "round $r done ($(($(date +%s) - start)) s elapsed)"
  done
}

if [[ "${1:-}" == "--measure-phase" ]]; then
  measure_phase "$2"
  exit 0
fi

# -- set-up ----------------------------------------------------------------------------------
T_START=$(date +%s)
RUN=$ROOT/runs/$(date +%Y%m%d-%H%M%S)$([[ "${AB_SMOKE:-0}" == 1 ]] && echo -smoke)
mkdir -p "$RUN/scratch" "$AB_OUT"
exec > >(tee -a "$RUN/log.txt") 2>&1
say "run folder $RUN; budget $AB_BUDGET s (hard stop $HARD s); rounds $AB_ROUNDS; benches: $AB_BENCHES"

want=$(git -C "$REPO" rev-parse --verify "$BEFORE_REF^{commit}") || { say "no commit $BEFORE_REF"; exit 1; }
if [[ ! -e "$OLD/.git" ]]; then
  say "creating the before worktree $OLD at $BEFORE_REF"
  git -C "$REPO" worktree add -f --detach "$OLD" "$want" >/dev/null || exit 1
fi
have=$(git -C "$OLD" rev-parse HEAD)
if [[ "$have" != "$want" ]] || [[ -n "$(git -C "$OLD" status --porcelain --untracked-files=no)" ]]; then
  say "$OLD is at $have (or has local changes), not a clean $want: remove it (git worktree remove --force $OLD) and rerun"
  exit 1
fi
# the mapping folder: recfeat = old core/ + plugins/ + exporters/ (pyproject package-dir)
rm -rf "$PKG" && mkdir -p "$PKG/recfeat"
for f in "$OLD"/core/* "$OLD"/core/.[!.]*; do
  [[ -e "$f" ]] && ln -s "$f" "$PKG/recfeat/$(basename "$f")"
done
[[ -e "$PKG/recfeat/plugins" || -e "$PKG/recfeat/exporters" ]] && { say "old core/ has its own plugins/ or exporters/: mapping unclear"; exit 1; }
ln -s "$OLD/plugins" "$PKG/recfeat/plugins"
ln -s "$OLD/exporters" "$PKG/recfeat/exporters"

# Ray: token authentication (Ray 2.5x); the runs start a local Ray of their own
if [[ ! -s "$HOME/.ray/auth_token" && -z "${RAY_AUTH_TOKEN:-}" ]]; then
  say "generating a Ray auth token (~/.ray/auth_token)"
  "$(dirname "$PY")/ray" get-auth-token --generate >/dev/null || say "could not generate a Ray token"
fi
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-token}
unset RAY_ADDRESS

# preflight: each side imports its own tree
ok=1
for side in before after; do
  if [[ $side == before ]]; then
    w=$(cd "$REPO" && PYTHONPATH=$PKG "$PY" "$HERE/ab_measure.py" where) || ok=0
    prefix=$PKG/recfeat/
  else
    w=$(cd "$REPO" && env -u PYTHONPATH "$PY" "$HERE/ab_measure.py" where) || ok=0
    prefix=$REPO/
  fi
  say "preflight $side: $w"
  for k in '"recfeat"' '"recfeat.plugins"' '"recfeat.exporters"'; do
    p=$(printf '%s' "$w" | "$PY" -c "import json,sys; print(json.load(sys.stdin)[$k])" 2>/dev/null)
    [[ "$p" == "$prefix"* ]] || { say "preflight $side: $k imported from $p, expected under $prefix"; ok=0; }
  done
done
((ok)) || { say "preflight failed: not measuring"; exit 1; }

say "preparing the shared inputs in $WORK"
(cd "$REPO" && env -u PYTHONPATH timeout 600 "$PY" "$HERE/ab_measure.py" prepare --work "$WORK" \
  --data-dir "$DATA" --memory-sizes "$AB_MEMORY_SIZES" --ray-rows "$AB_RAY_ROWS") || { say "prepare failed"; exit 1; }

env -u PYTHONPATH "$PY" "$HERE/ab_report.py" meta --phase start --meta "$RUN/meta.json" \
  --before-dir "$OLD" --before-ref "$BEFORE_REF" --after-dir "$REPO" --setup-s $(($(date +%s) - T_START)) \
  --settings "rounds=$AB_ROUNDS; benches=$AB_BENCHES; encode texts=$AB_ENCODE_TEXTS; memory sizes=$AB_MEMORY_SIZES; ray rows=$AB_RAY_ROWS; serve levels=$AB_SERVE_LEVELS (offline $AB_SERVE_OFFLINE, batch-1 $AB_SERVE_BATCH1, warm-up $AB_SERVE_WARMUP); budget=$AB_BUDGET s; smoke=${AB_SMOKE:-0}"

if [[ "${AB_SETUP_ONLY:-0}" == 1 ]]; then say "AB_SETUP_ONLY=1: set-up and preflight done, nothing measured"; exit 0; fi

# -- measure (hard-bounded), then report whatever finished ----------------------------------
timeout -k 20 "$HARD" bash "${BASH_SOURCE[0]}" --measure-phase "$RUN"
rc=$?
((rc == 124 || rc == 137)) && say "the measuring phase hit the hard limit ($HARD s); reporting what finished"

env -u PYTHONPATH "$PY" "$HERE/ab_report.py" meta --phase end --meta "$RUN/meta.json" \
  --before-dir "$OLD" --before-ref "$BEFORE_REF" --after-dir "$REPO"
env -u PYTHONPATH "$PY" "$HERE/ab_report.py" report --raw "$RUN/raw.jsonl" --meta "$RUN/meta.json" \
  --out "$AB_OUT/$STEM" --tol "$AB_TOL" || exit 1
say "total $(($(date +%s) - T_START)) s; raw: $RUN/raw.jsonl; table: $AB_OUT/$STEM.md"
