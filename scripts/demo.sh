#!/usr/bin/env bash
# The main job, end to end on this machine: bring up Kafka and Redis, start a
# Kizuna worker, publish the sample events (samples/events.jsonl), and show
# the resulting customer state, counters, dead letters and triggers. The
# worker runs on the wall clock: the sample's win-back timers fell due months
# ago, so they fire at once (catch-up), stamped with the real time.
#
#   scripts/demo.sh [EVENTS.jsonl]
#
# Topics and Redis keys live under the prefix "demo." (KIZUNA_TOPIC_PREFIX to
# change it). Publishing the same file again changes nothing: events carry ids.
# The worker is stopped at the end; the stack keeps running for `kizuna`
# commands (stop it with: scripts/stack.sh down).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
EVENTS="${1:-samples/events.jsonl}"
[[ -f "$EVENTS" ]] || { echo "demo: expected a JSON-lines events file, got '$EVENTS'" >&2; exit 2; }
scripts/bootstrap.sh
while IFS='=' read -r key value; do export "$key=$value"; done < <(scripts/stack.sh up)
export KIZUNA_TOPIC_PREFIX="${KIZUNA_TOPIC_PREFIX:-demo.}"
export KIZUNA_REDIS_PREFIX="${KIZUNA_REDIS_PREFIX:-demo:}"
# The worker's RocksDB files are only a local cache of its changelog topics; start
# without them so a broker that was reset (stack.sh down --purge) cannot disagree.
export KIZUNA_DATA_DIR="${KIZUNA_DATA_DIR:-.cache/run/demo-worker-data}"
rm -rf "$KIZUNA_DATA_DIR"
KIZUNA=.venv/bin/kizuna
LOG=.cache/run/demo-worker.log
mkdir -p .cache/run

processed() {
  $KIZUNA stats | .venv/bin/python -c 'import json,sys; s=json.load(sys.stdin); print(sum(v for k,v in s.items() if k.startswith("events.") or k=="dead_letter.total"))'
}

$KIZUNA topics >/dev/null
before="$(processed)"
echo "== starting a worker (log: $LOG)" >&2
$KIZUNA worker >"$LOG" 2>&1 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; wait $WORKER 2>/dev/null || true' EXIT

echo "== publishing $EVENTS" >&2
$KIZUNA publish "$EVENTS"
lines="$(grep -c . "$EVENTS")"
for _ in $(seq 1 240); do
  kill -0 $WORKER 2>/dev/null || { tail -40 "$LOG" >&2; echo "demo: the worker exited" >&2; exit 1; }
  (( $(processed) - before >= lines )) && break
  sleep 0.5
done
sleep 1  # one more read-model flush and producer flush

for customer in c-1001 c-1002 c-1004; do
  echo "== kizuna customer $customer" >&2
  $KIZUNA customer "$customer" | .venv/bin/python -c 'import json,sys; d=json.load(sys.stdin); d.pop("state"); print(json.dumps(d, indent=2, ensure_ascii=False))'
done
echo "== kizuna stats" >&2
$KIZUNA stats
echo "== kizuna dead-letters" >&2
$KIZUNA dead-letters --brief
echo "== kizuna triggers (the same ids as: kizuna backtest $EVENTS --until <now>)" >&2
$KIZUNA triggers --brief
