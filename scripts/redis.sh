#!/usr/bin/env bash
# A local Redis on 127.0.0.1 from Debian's redis-server (installed when missing).
#
#   scripts/redis.sh up | down | status
#
# Environment (defaults): KIZUNA_REDIS_PORT 16379, KIZUNA_RUN_DIR <repo>/.cache/run.
# Pid file and log live in $KIZUNA_RUN_DIR/redis-<port>/. No persistence
# (save "", appendonly no): the read model is rebuilt by the worker.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${KIZUNA_REDIS_PORT:-16379}"
RUN_DIR="${KIZUNA_RUN_DIR:-$ROOT/.cache/run}"
RDIR="$RUN_DIR/redis-$PORT"
PID_FILE="$RDIR/redis.pid"
LOG_FILE="$RDIR/redis.log"

say() { echo "redis: $*" >&2; }
die() { say "$*"; exit 1; }

install_redis() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return
  say "installing redis-server from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq redis-server >/dev/null
  command -v redis-server >/dev/null || die "redis-server still missing after apt-get install"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

ping() {
  command -v redis-cli >/dev/null || return 1
  [[ "$(timeout 3 redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" == PONG ]]
}

pid_alive() { [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

up() {
  if ping; then say "already running on 127.0.0.1:$PORT"; return; fi
  port_open && die "port $PORT is taken by a process that does not answer Redis PING"
  install_redis
  mkdir -p "$RDIR"
  rm -f "$PID_FILE"
  redis-server --bind 127.0.0.1 --port "$PORT" --daemonize yes \
    --save "" --appendonly no --dir "$RDIR" --pidfile "$PID_FILE" --logfile "$LOG_FILE" 9>&- \
    || { tail -20 "$LOG_FILE" >&2 2>/dev/null || true; die "redis-server failed to start"; }
  local i
  for ((i = 0; i < 100; i++)); do
    ping && { say "ready on 127.0.0.1:$PORT"; return; }
    sleep 0.1
  done
  tail -20 "$LOG_FILE" >&2 || true
  die "did not answer PING on 127.0.0.1:$PORT within 10s (log: $LOG_FILE)"
}

down() {
  local pid=""
  [[ -f "$PID_FILE" ]] && pid="$(cat "$PID_FILE")"
  if ping; then
    redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  elif pid_alive; then
    kill -TERM "$pid" 2>/dev/null || true
  else
    say "not running"
    rm -f "$PID_FILE"
    return
  fi
  local i
  for ((i = 0; i < 50; i++)); do
    { [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; } && ! port_open && break
    sleep 0.1
  done
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    say "redis-server did not stop within 5s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  say "stopped"
}

lock() {
  mkdir -p "$RDIR"
  exec 9>"$RDIR/.lock"
  flock -w 60 9 || die "another scripts/redis.sh holds $RDIR/.lock"
}

case "${1:-}" in
  up) lock; up ;;
  down) lock; down ;;
  status) ping ;;
  *) echo "usage: scripts/redis.sh up | down | status" >&2; exit 2 ;;
esac
