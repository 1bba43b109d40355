#!/usr/bin/env bash
# Start (or resume) the main job in the background, in a run directory outside this checkout:
# a clone of this checkout's HEAD (so the code it runs stays fixed while work on main goes on),
# its own .venv, `make reproduce` (on the offline archive DATA when set, else the official
# release from the per-user cache), niced, in its own process session.
#
#   tools/start_main_run.sh [RUNS_DIR]   # a new run of HEAD in RUNS_DIR/main-<commit> (default ../runs)
#   tools/start_main_run.sh RUN_DIR      # resume that run (a clone this script made) at its own commit
#   DATA=/path/to/cifar10-jpeg.tar.gz tools/start_main_run.sh ...
#   CONFIGFILE=config/three-seeds.yaml tools/start_main_run.sh ...   # a preset over config.yaml
#   ADVANCE=1 tools/start_main_run.sh RUN_DIR   # move that run to this checkout's HEAD, then resume
#
# After a lost sitting, start it again (HEAD unchanged, or name the run directory): the same
# clone is reused, Snakemake's lock is released, finished jobs are kept and a training job
# resumes from its last epoch; the record lists every sitting. The log is <run dir>/run.log
# (appended per sitting).
#
# ADVANCE=1 moves a stopped run's clone to this checkout's HEAD before resuming, so that work
# that changed only later steps (e.g. the latency instrument) reruns those and keeps the
# training: Snakemake reruns a job whose code, params or inputs changed. Dry runs at the run's
# commit and at HEAD count the training and data jobs (train_*, teacher_targets, the data rules)
# each would run; if HEAD would run more of any (finished training redone), the clone goes back
# to its commit and nothing starts (ADVANCE=force moves it anyway). Training not yet finished
# simply goes on at HEAD. Each sitting records the commit it ran (results/sittings.json, the record).
set -euo pipefail
here=$(git rev-parse --show-toplevel)
target=$(realpath -m "${1:-$here/../runs}")
if [ -f "$target/Snakefile" ] && [ -d "$target/.git" ]; then  # an existing run: resume it
    dir=$target
    sha=$(git -C "$dir" rev-parse --short HEAD)
else
    sha=$(git -C "$here" rev-parse --short HEAD)
    dir=$target/main-$sha
fi
case "$dir/" in
    "$here"/*) echo "$dir is inside this checkout ($here): a run needs its own directory outside it" >&2; exit 2 ;;
esac
data=
if [ -n "${DATA:-}" ]; then
    data=$(realpath -m "$DATA")
    test -f "$data" || { echo "DATA=$DATA: no such archive" >&2; exit 2; }
fi
if [ ! -d "$dir" ]; then
    if [ -n "$(git -C "$here" status --porcelain --untracked-files=no)" ]; then
        echo "note: uncommitted changes in $here are not in the run (it runs commit $sha)" >&2
    fi
    mkdir -p "$(dirname "$dir")"
    git clone --quiet "$here" "$dir"
fi
cd "$dir"
test -z "$(git status --porcelain --untracked-files=no)" || { echo "$dir has local changes: refusing to run a dirty clone" >&2; exit 2; }  # run.log is untracked
# A sitting holds run.lock for as long as it runs (released when it ends, however it ends).
if ! flock -n run.lock true; then
    echo "$dir: a sitting is still running (pid $(cat run.pid 2>/dev/null)); not starting another" >&2
    exit 2
fi
if [ -n "${ADVANCE:-}" ]; then
    # MAIN_JOB_DRYRUN: what lists the jobs a sitting would run, a "rule count" line per rule (the tests replace it).
    dry=${MAIN_JOB_DRYRUN:-"make --quiet install >/dev/null && .venv/bin/snakemake --dry-run --quiet rules --cores 1${CONFIGFILE:+ --configfile '$CONFIGFILE'}${data:+ --config 'data={source: images, path: $data}'}"}
    training() {  # "rule count" of the training and data jobs a sitting at the checked-out commit would run
        local plan
        plan=$(bash -c "$dry" 2>&1) || { printf '%s\n' "$plan" >&2; echo "$dir: the dry run at $(git rev-parse --short HEAD) failed" >&2; return 1; }
        printf '%s\n' "$plan" | grep -E '^(download_data|prepare_data|teacher_targets|train_[a-z_]+)[[:space:]]+[0-9]+' | awk '{print $1, $2}' | sort -u || true  # snakemake 9 prints its job table twice
    }
    old=$(git rev-parse HEAD)
    before=$(training) || exit 2
    git fetch --quiet "$here" HEAD
    git checkout --quiet --detach FETCH_HEAD
    new=$(git rev-parse --short HEAD)
    after=$(training) || { git checkout --quiet --detach "$old"; exit 2; }
    # training the move would add: a rule with more jobs at HEAD than at the run's commit
    added=$(join -a 2 -e 0 -o 0,1.2,2.2 <(printf '%s\n' "$before" | sed '/^$/d') <(printf '%s\n' "$after" | sed '/^$/d') | awk '$3 > $2 {printf "%s%s +%d", sep, $1, $3 - $2; sep = ", "}')
    if [ -n "$added" ] && [ "$ADVANCE" != force ]; then
        git checkout --quiet --detach "$old"
        echo "$dir: at $new the run would train again ($added); it stays at ${old:0:7} (ADVANCE=force to move it anyway)" >&2
        exit 2
    fi
    left=$(printf '%s\n' "$after" | sed '/^$/d' | paste -sd, - | sed 's/,/, /g')
    echo "moved $dir from ${old:0:7} to $new; training and data jobs still to run: ${left:-none}"
    sha=$new
fi
# MAIN_JOB_CMD: what a sitting runs (the tests replace it with a quick command).
cmd=${MAIN_JOB_CMD:-"make unlock && make reproduce${data:+ DATA='$data'}${CONFIGFILE:+ CONFIGFILE='$CONFIGFILE'}"}
printf '\n== sitting started %s on %s\n' "$(date -u +%FT%TZ)" "$(hostname)" >> run.log
setsid flock -n run.lock nice -n 10 bash -c "$cmd" >> run.log 2>&1 < /dev/null &
echo $! > run.pid
echo "main job of $sha running in $dir (pid $!; log: $dir/run.log)"
