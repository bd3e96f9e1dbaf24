#!/bin/bash
# The budget ladder behind the stability rule (docs/results/stability.md): every method of a
# scenario trained for E1 epochs, then resumed to E2, E3, ... (each rung copies the last rung's
# run folder and continues it with ckpt_path=last, so a run of 2B epochs is the run of B epochs
# carried on, and the ladder costs the longest rung only). Two one-thread runs at a time.
#
#   benchmarks/budget_ladder.sh <out dir> <scenario> <epochs> [<epochs> ...] [-- <overrides>]
#   benchmarks/budget_ladder.sh outputs/ladder noiseless 3 6 12 -- data.image_size=32
#   python -m ssmri.report.stability outputs/ladder/noiseless/e3 outputs/ladder/noiseless/e6 ...
#
# JOBS (default 2) runs at a time; METHODS (default: the scenario's leaderboard methods) a
# space-separated list. A run whose metrics.json exists is kept, so an interrupted ladder
# restarts where it stopped.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '7,9p' "$0" >&2
  exit 2
fi
out=$1 scenario=$2
shift 2
rungs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do rungs+=("$1"); shift; done
[ $# -gt 0 ] && shift
overrides=("$@")
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$root/.venv/bin/python}
methods=${METHODS:-$("$python" -c "from ssmri.report.leaderboard import scenario_methods as m; print(' '.join(m('$scenario')))")}

run_one() {  # run_one <method> <epochs> [<previous epochs>]
  local method=$1 epochs=$2 previous=${3:-}
  local dir=$out/$scenario/e$epochs/$method
  [ -f "$dir/metrics.json" ] && return 0
  mkdir -p "$out/$scenario/e$epochs"
  local resume=()
  if [ -n "$previous" ]; then
    rm -rf "$dir"
    cp -r "$out/$scenario/e$previous/$method" "$dir"
    rm -f "$dir/metrics.json" "$dir/failed.json" "$dir/test_per_image.csv"
    resume=(ckpt_path=last)
  fi
  local started=$SECONDS status=0
  (cd "$root" && OMP_NUM_THREADS=1 "$python" train.py experiment=cpu_quick scenario="$scenario" \
    loss="$method" trainer.max_epochs="$epochs" logger=csv hydra.run.dir="$(realpath "$dir")" \
    ${resume[@]+"${resume[@]}"} ${overrides[@]+"${overrides[@]}"}) > "$dir.log" 2>&1 || status=$?
  echo "$scenario $method e$epochs exit=$status $((SECONDS - started)) s" | tee -a "$out/ladder.log"
}
export -f run_one
export out scenario python root
export OVERRIDES_FILE
OVERRIDES_FILE=$(mktemp)
trap 'rm -f "$OVERRIDES_FILE"' EXIT
printf '%s\n' ${overrides[@]+"${overrides[@]}"} > "$OVERRIDES_FILE"

previous=""
for epochs in "${rungs[@]}"; do
  for method in $methods; do echo "$method $epochs${previous:+ $previous}"; done |
    xargs -P "${JOBS:-2}" -L 1 bash -c 'mapfile -t overrides < "$OVERRIDES_FILE"; run_one "$@"' _
  previous=$epochs
done
