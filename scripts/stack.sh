#!/usr/bin/env bash
# Bring the whole local stack (Kafka + Redis) up or down.
#
#   scripts/stack.sh up | down [--purge] | status
#
# `up` prints the connection settings as KEY=VALUE lines on stdout, so a
# caller can `eval "$(scripts/stack.sh up)"` (progress goes to stderr).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "${1:-}" in
  up)
    "$HERE/redis.sh" up
    "$HERE/kafka.sh" up
    echo "KIZUNA_BROKER=kafka://127.0.0.1:${KIZUNA_KAFKA_PORT:-19092}"
    echo "KIZUNA_REDIS_URL=redis://127.0.0.1:${KIZUNA_REDIS_PORT:-16379}/0"
    ;;
  down) "$HERE/kafka.sh" down "${2:-}"; "$HERE/redis.sh" down ;;
  status) "$HERE/redis.sh" status && "$HERE/kafka.sh" status ;;
  *) echo "usage: scripts/stack.sh up | down [--purge] | status" >&2; exit 2 ;;
esac
