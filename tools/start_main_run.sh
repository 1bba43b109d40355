#!/usr/bin/env bash
# Start (or resume) the main job in the background, in a run directory outside this checkout:
# a clone of this checkout's HEAD (so the code it runs stays fixed while work on main goes on),
# its own .venv, `make reproduce` on the offline archive, niced, in its own process session.
#
#   tools/start_main_run.sh [RUNS_DIR]      # default: ../runs beside the checkout
#   DATA=/path/to/cifar10-jpeg.tar.gz tools/start_main_run.sh
#
# Run it again after a lost sitting: the same clone is reused (same commit), Snakemake's lock
# is released, finished jobs are kept and a training job resumes from its last epoch; the
# record lists every sitting. The log is <run dir>/run.log (appended per sitting).
set -euo pipefail
here=$(git rev-parse --show-toplevel)
sha=$(git -C "$here" rev-parse --short HEAD)
runs=$(realpath -m "${1:-$here/../runs}")
dir=$runs/main-$sha
data=$(realpath "${DATA:-$here/../shared/data/cifar10-jpeg.tar.gz}")
test -f "$data" || { echo "no archive at $data (set DATA=)" >&2; exit 2; }
if [ -n "$(git -C "$here" status --porcelain --untracked-files=no)" ]; then
    echo "note: uncommitted changes in $here are not in the run (it runs commit $sha)" >&2
fi
mkdir -p "$runs"
test -d "$dir" || git clone --quiet "$here" "$dir"
cd "$dir"
test -z "$(git status --porcelain)" || { echo "$dir has local changes: refusing to run a dirty clone" >&2; exit 2; }
printf '\n== sitting started %s on %s\n' "$(date -u +%FT%TZ)" "$(hostname)" >> run.log
setsid nice -n 10 bash -c "make unlock && make reproduce DATA='$data'" >> run.log 2>&1 < /dev/null &
echo "main job of $sha running in $dir (pid $!; log: $dir/run.log)"
