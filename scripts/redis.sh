#!/usr/bin/env bash
# A local Redis on 127.0.0.1 from Debian's redis-server (installed when missing).
#
#   scripts/redis.sh up | down | status
#
# Environment (defaults): KIZUNA_REDIS_PORT 16379, KIZUNA_RUN_DIR <repo>/.cache/run.
# No persistence: the read model is rebuilt by the worker.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${KIZUNA_REDIS_PORT:-16379}"
RUN_DIR="${KIZUNA_RUN_DIR:-$ROOT/.cache/run}"
RDIR="$RUN_DIR/redis-$PORT"
PID_FILE="$RDIR/redis.pid"

say() { echo "redis: $*" >&2; }

install_redis() {
  command -v redis-server >/dev/null && return
  say "installing redis-server from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq redis-server >/dev/null
}

ping() { redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; }

up() {
  if ping; then say "already running on 127.0.0.1:$PORT"; return; fi
  install_redis
  mkdir -p "$RDIR"
  redis-server --bind 127.0.0.1 --port "$PORT" --daemonize yes --save "" --appendonly no \
    --dir "$RDIR" --pidfile "$PID_FILE" --logfile "$RDIR/redis.log"
  for _ in $(seq 1 100); do ping && { say "ready on 127.0.0.1:$PORT"; return; }; sleep 0.1; done
  tail -20 "$RDIR/redis.log" >&2
  say "did not answer PING on 127.0.0.1:$PORT"
  exit 1
}

down() {
  if ping; then redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; say "stopped"; fi
  rm -f "$PID_FILE"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) ping ;;
  *) echo "usage: scripts/redis.sh up | down | status" >&2; exit 2 ;;
esac
