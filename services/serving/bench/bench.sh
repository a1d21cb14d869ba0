#!/usr/bin/env bash
# Serving load benchmark, side by side with the shared anchors in the same run: the FastAPI +
# scikit-learn app and the Go floor (../shared/bench/serving), and Flywheel serving's own API
# and Open Inference Protocol infer call with logistic regression and a 200-tree GBDT
# (1 card: 12 card_activity features read from Redis + 4 request-time fields, every prediction
# logged to Kafka).
#   A. vegeta constant rate (RATES, default 500 1000 2000 5000) × REPS, servers in turn
#   B. saturation: wrk -t2 -c64 × REPS (fastapi, floor, flywheel own API with each model)
#   C. batch: 100 instances per call at 100 calls/s
# usage: services/serving/bench/bench.sh [REPS]  (env RATES, DUR, WRK_DUR, OUT, PHASES, SERVERS)
# Needs: the test stack's Kafka (make stack-test-up), vegeta, wrk, and the anchor's Python
# packages (make bench-serving installs them). Starts and stops its own redis-server on
# 127.0.0.1:16400, uvicorn :18080, the floor :18090 and serving :18084.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
ANCHOR="$ROOT/../shared/bench/serving"
. "$ROOT/../shared/bench/benchlib.sh"
REPS="${1:-3}"; RATES="${RATES:-500 1000 2000 5000}"; DUR="${DUR:-20s}"; WRK_DUR="${WRK_DUR:-20s}"
PHASES="${PHASES:-A B C}"
SERVERS="${SERVERS:-fastapi floor predict_fraud predict_fraud_gbdt v2_fraud v2_fraud_gbdt}"
RP=16400; PY_PORT=18080; GO_PORT=18090; FW_PORT=18084
W=/tmp/serving-bench; OUT="${OUT:-$ROOT/.flywheel/bench/serving}"; mkdir -p "$W" "$OUT"; rm -f "$OUT"/*
ulimit -n "$(ulimit -Hn)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$W/redis.pid" ] && kill "$(cat "$W/redis.pid")" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait_http() { for i in $(seq 150); do curl -s -o /dev/null "$1" && return; sleep 0.2; done; echo "no answer from $1" >&2; exit 1; }

echo "== $(date -u +%FT%TZ) $(nproc) vCPU, load $(cat /proc/loadavg)" | tee "$OUT/conditions.txt"
redis-server --port $RP --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --pidfile "$W/redis.pid" --logfile "$W/redis.log"
sleep 0.5; RPID=$(cat "$W/redis.pid")

# the anchors, exactly as their own bench.sh runs them
/usr/bin/python3 "$ANCHOR/prep.py" --redis-port $RP --cards 10000 --out "$W"
(cd "$ANCHOR" && MODEL_PATH="$W/model.joblib" REDIS_PORT=$RP exec /usr/bin/python3 -m uvicorn app:app \
   --host 127.0.0.1 --port $PY_PORT --workers 2 --no-access-log) >"$W/uvicorn.log" 2>&1 &
PIDS+=($!)
FLOOR="$W/floor"; (cd "$ANCHOR/floor" && go build -o "$FLOOR" .)
"$FLOOR" -addr 127.0.0.1:$GO_PORT -redis 127.0.0.1:$RP >"$W/floor.log" 2>&1 &
PIDS+=($!)
/usr/bin/python3 "$ANCHOR/targets.py" "http://127.0.0.1:$PY_PORT/predict" 10000 >"$W/t_fastapi.json"
/usr/bin/python3 "$ANCHOR/targets.py" "http://127.0.0.1:$GO_PORT/predict" 10000 >"$W/t_floor.json"

# Flywheel serving: card states seeded as the features service writes them, two models in
# its local cache (no registry needed), the prediction log to the test stack's Kafka
(cd "$ROOT" && go build -o "$W/serving" ./services/serving/cmd/serving && go build -o "$W/servebench" ./services/serving/cmd/servebench)
rm -rf "$W/cache"
"$W/servebench" -redis 127.0.0.1:$RP -prefix bench: -cards 10000 -cache "$W/cache" -targets "$W" -url "http://127.0.0.1:$FW_PORT"
set -a; . "$ROOT/.flywheel/test-stack/env"; set +a
FLYWHEEL_SERVING_ADDR=127.0.0.1:$FW_PORT FLYWHEEL_SERVING_CACHE_DIR="$W/cache" FLYWHEEL_SERVING_REDIS_PREFIX=bench: \
  FLYWHEEL_REDIS_ADDR=127.0.0.1:$RP FLYWHEEL_SERVING_REGISTRY_URL=http://127.0.0.1:1 FLYWHEEL_NATS_URL=nats://127.0.0.1:1 \
  FLYWHEEL_SERVING_GRPC_ADDR=127.0.0.1:18094 FLYWHEEL_LOG_LEVEL=warn "$W/serving" >"$W/serving.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PY_PORT/healthz"; wait_http "http://127.0.0.1:$FW_PORT/readyz"
for i in $(seq 50); do curl -s -o /dev/null -X POST -d '{}' "http://127.0.0.1:$GO_PORT/" && break; sleep 0.2; done
/usr/bin/python3 - "$W" <<'PY'
# a batch target: 100 instances per call
import base64, json, random, sys
w = sys.argv[1]; rnd = random.Random(7)
with open(f"{w}/batch_fraud_gbdt.json", "w") as out:
    for k in range(200):
        inst = [{"card_id": f"c-{rnd.randrange(10000)}", "amount": round(rnd.expovariate(1/60), 2), "merchant_category": "grocery",
                 "channel": rnd.choice(["pos", "ecom", "atm"]), "country": "DE"} for _ in range(100)]
        body = json.dumps({"instances": inst})
        out.write(json.dumps({"method": "POST", "url": "http://127.0.0.1:18084/v1/models/fraud_gbdt:predict",
                              "body": base64.b64encode(body.encode()).decode(), "header": {"Content-Type": ["application/json"]}}) + "\n")
PY
for s in $SERVERS; do
  t="$W/t_$s.json"; [ -f "$t" ] || t="$W/$s.json"
  echo "sample $s: $(head -1 "$t" | /usr/bin/python3 -c 'import json,sys,base64,subprocess; t=json.load(sys.stdin); print(subprocess.run(["curl","-s","-XPOST","-H","Content-Type: application/json","--data-binary",base64.b64decode(t["body"]),t["url"]],capture_output=True,text=True).stdout[:200])')" | tee -a "$OUT/conditions.txt"
done
{ echo "serving $(go version -m "$W/serving" | head -1 | cut -f2-), GOMAXPROCS default, Kafka: test stack (kfake) $FLYWHEEL_KAFKA_BROKERS, Redis $(redis-server --version | cut -d' ' -f3)"; } | tee -a "$OUT/conditions.txt"
OWN=("$RPID")
target() { local t="$W/t_$1.json"; [ -f "$t" ] || t="$W/$1.json"; echo "$t"; }

if [[ " $PHASES " == *" A "* ]]; then
  echo "-- A. warm-up 10 s at 500/s each, then constant rates"
  for s in $SERVERS; do attack "$s" "$(target "$s")" 500 10s "$OUT" warmup "${OWN[@]}"; done
  for k in $(seq 1 "$REPS"); do
    for rate in $RATES; do
      for s in $SERVERS; do
        [ "$s" = fastapi ] && [ "$rate" -gt 3000 ] && continue   # collapses there (anchor README); it would leave uvicorn degraded
        attack "$s" "$(target "$s")" "$rate" "$DUR" "$OUT" "rep$k" "${OWN[@]}"; sleep 2
      done
    done
  done
fi
if [[ " $PHASES " == *" B "* ]]; then
  echo "-- B. saturation: wrk -t2 -c64 -d$WRK_DUR"
  for k in $(seq 1 "$REPS"); do
    for s in fastapi floor predict_fraud predict_fraud_gbdt; do
      case $s in
        fastapi) url="http://127.0.0.1:$PY_PORT/predict"; lua="$ANCHOR/post.lua" ;;
        floor) url="http://127.0.0.1:$GO_PORT/predict"; lua="$ANCHOR/post.lua" ;;
        predict_*) url="http://127.0.0.1:$FW_PORT/v1/models/${s#predict_}:predict"; lua="$HERE/post.lua" ;;
      esac
      $Q wait --max-busy "$MAXBUSY" --timeout 900 >/dev/null
      wrk -t2 -c64 -d"$WRK_DUR" --latency -s "$lua" "$url" >"$OUT/${s}_wrk_rep$k.txt"
      echo "$s wrk rep$k: $(grep -E 'Requests/sec' "$OUT/${s}_wrk_rep$k.txt") $(grep -E 'Non-2xx' "$OUT/${s}_wrk_rep$k.txt" || true)"
    done
  done
  echo "-- B'. right after saturation, 500/s again on serving"
  attack predict_fraud_gbdt "$(target predict_fraud_gbdt)" 500 10s "$OUT" postsaturation "${OWN[@]}"
fi
if [[ " $PHASES " == *" C "* ]]; then
  echo "-- C. batch: 100 instances per call at 100 calls/s"
  for k in $(seq 1 "$REPS"); do attack batch_fraud_gbdt "$W/batch_fraud_gbdt.json" 100 "$DUR" "$OUT" "rep$k" "${OWN[@]}"; done
fi
curl -s "http://127.0.0.1:$FW_PORT/metrics" | grep -E '^serving_(shed_total|prediction_log_(published|dropped)_total)' | tee -a "$OUT/conditions.txt"
echo "== done $(date -u +%FT%TZ), load $(cat /proc/loadavg)" | tee -a "$OUT/conditions.txt"
/usr/bin/python3 "$ANCHOR/vsum.py" "$OUT" "${SERVERS// /,},batch_fraud_gbdt" | tee "$OUT/summary.md"
