#!/usr/bin/env bash
# Bring the whole local stack (Kafka + Redis, on 127.0.0.1) up or down.
#
#   scripts/stack.sh up | down [--purge] | status
#
# Configured by the environment of scripts/kafka.sh and scripts/redis.sh
# (KIZUNA_KAFKA_*, KIZUNA_REDIS_PORT, KIZUNA_RUN_DIR); exports nothing.
# `up` prints the connection settings as KEY=VALUE lines on stdout, so a
# caller can `eval "$(scripts/stack.sh up)"`; progress goes to stderr.
# `status` exits 0 when both are running.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "${1:-}" in
  up)
    "$HERE/redis.sh" up
    "$HERE/kafka.sh" up
    echo "KIZUNA_BROKER=kafka://127.0.0.1:${KIZUNA_KAFKA_PORT:-19092}"
    echo "KIZUNA_REDIS_URL=redis://127.0.0.1:${KIZUNA_REDIS_PORT:-16379}/0"
    ;;
  down)
    [[ -z "${2:-}" || "${2:-}" == "--purge" ]] || { echo "usage: scripts/stack.sh down [--purge]" >&2; exit 2; }
    rc=0
    "$HERE/kafka.sh" down ${2:+"$2"} || rc=$?
    "$HERE/redis.sh" down || rc=$?
    exit "$rc"
    ;;
  status) "$HERE/redis.sh" status && "$HERE/kafka.sh" status ;;
  *) echo "usage: scripts/stack.sh up | down [--purge] | status" >&2; exit 2 ;;
esac
