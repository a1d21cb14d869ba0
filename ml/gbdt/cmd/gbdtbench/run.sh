#!/usr/bin/env bash
# Side-by-side benchmark: gbdtbench (this package) against the trainer anchors' XGBoost and
# scikit-learn HistGradientBoosting on the same data, one process per fit, models round-robin,
# REPS reps (default 3). Needs /tmp/anchor-data (shared/bench/trainer/anchor.py gen) and
# Debian's /usr/bin/python3 with python3-xgboost and python3-sklearn.
#   usage: ml/gbdt/cmd/gbdtbench/run.sh [REPS]      (from the repository root)
# Shared-machine hygiene as in shared/bench/trainer/run.sh: each fit starts once the machine is
# quiet (< MAXBUSY cores over 3 s); the CPU seconds other processes used meanwhile are recorded,
# and a fit during which they averaged > MAXOTHER cores is redone (up to TRIES tries, default 3;
# the last try is kept).
set -euo pipefail
REPS="${1:-3}"
OUT="${OUT:-/tmp/gbdtbench-results}"; mkdir -p "$OUT"; RAW="$OUT/raw.jsonl"; : >"$RAW"
SHARED="${SHARED:-$(cd "$(dirname "$0")/../../../../.." && pwd)/shared}"
ANCHOR="$SHARED/bench/trainer/anchor.py"
Q="/usr/bin/python3 $SHARED/bench/quiet.py"
MAXBUSY="${MAXBUSY:-0.25}"; MAXOTHER="${MAXOTHER:-0.15}"; TRIES="${TRIES:-3}"
(cd ml && go build -o "$OUT/gbdtbench" ./gbdt/cmd/gbdtbench)

fit() { # task model
  local task=$1 model=$2 try=1 out s0 s1 other t0 t1 el
  while :; do
    $Q wait --max-busy "$MAXBUSY" --timeout 1800 >/dev/null
    s0=$($Q snap $$); t0=$(date +%s.%N)
    if [ "$model" = go ]; then
      out=$("$OUT/gbdtbench" -data /tmp/anchor-data -task "$task")
    else
      out=$(/usr/bin/python3 "$ANCHOR" fit --task "$task" --model "$model")
    fi
    s1=$($Q snap $$); t1=$(date +%s.%N)
    other=$($Q other $s0 $s1); el=$(echo "$t1 - $t0" | bc)
    if awk -v o="$other" -v e="$el" -v m="$MAXOTHER" 'BEGIN{exit !(o/e > m)}' && [ $try -lt "$TRIES" ]; then
      echo "   contended ($other CPU-s by others in ${el}s), retry $try: $task $model" >&2; try=$((try+1)); continue
    fi
    break
  done
  /usr/bin/python3 -c 'import json,sys; a=sys.argv; d=json.loads(a[1]); d.update(bench_model=a[2], other_cpu_s=float(a[3]), process_s=round(float(a[4]),2), tries=int(a[5]), load1=a[6]); print(json.dumps(d))' \
    "$(echo "$out" | grep '^{' | tail -1)" "$model" "$other" "$el" "$try" "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$RAW"
}

echo "== $(date -u +%FT%TZ) $(nproc) vCPU, load $(cat /proc/loadavg)"
for rep in $(seq 1 "$REPS"); do
  for task in fraud regression; do
    for model in go xgb hgb; do fit "$task" "$model"; done
  done
done
echo "== done $(date -u +%FT%TZ), load $(cat /proc/loadavg)"
/usr/bin/python3 - "$RAW" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| task | model | fit s, median (min–max) | test metric | peak RSS during fit MiB | other procs CPU-s per fit |")
print("| --- | --- | --- | --- | --- | --- |")
for task in ("fraud", "regression"):
    for m in ("go", "xgb", "hgb"):
        rs = [r for r in rows if r["task"] == task and r["bench_model"] == m]
        if not rs:
            continue
        f = [r["fit_s"] for r in rs]
        metric = "AUC %.4f" % rs[0]["auc"] if task == "fraud" else "RMSE %.4f" % rs[0]["rmse"]
        rss = statistics.median(r["peak_rss_during_fit_mib"] for r in rs)
        oth = ", ".join("%.1f" % r["other_cpu_s"] for r in rs)
        print(f"| {task} | {m} | {statistics.median(f):.2f} ({min(f):.2f}–{max(f):.2f}) | {metric} | {rss:.0f} | {oth} |")
PY
