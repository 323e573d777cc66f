#!/usr/bin/env bash
# A local single-node Apache Kafka (KRaft, combined broker+controller) on 127.0.0.1.
#
#   scripts/kafka.sh up | down [--purge] | status | logs [N]
#
# The broker jars and their runtime dependencies come from Maven Central
# (scripts/kafka/pom.xml) into .cache/kafka/<version>/libs once; later runs
# reuse them. Environment (defaults):
#   KIZUNA_KAFKA_VERSION          4.4.0   (see docs/kafka-version.md)
#   KIZUNA_KAFKA_PORT             19092
#   KIZUNA_KAFKA_CONTROLLER_PORT  19093
#   KIZUNA_KAFKA_PARTITIONS       4       (num.partitions for auto-created topics)
#   KIZUNA_KAFKA_HEAP             768m
#   KIZUNA_KAFKA_START_TIMEOUT    90      (seconds)
#   KIZUNA_RUN_DIR                <repo>/.cache/run
# Config, pid file, log and data live in $KIZUNA_RUN_DIR/kafka-<port>/.
# Switching to an older Kafka version needs `down --purge` first (the data
# is formatted at the newer metadata.version).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${KIZUNA_KAFKA_VERSION:-4.4.0}"
PORT="${KIZUNA_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${KIZUNA_KAFKA_CONTROLLER_PORT:-19093}"
PARTITIONS="${KIZUNA_KAFKA_PARTITIONS:-4}"
HEAP="${KIZUNA_KAFKA_HEAP:-768m}"
START_TIMEOUT="${KIZUNA_KAFKA_START_TIMEOUT:-90}"
RUN_DIR="${KIZUNA_RUN_DIR:-$ROOT/.cache/run}"
LIBS="$ROOT/.cache/kafka/$VERSION/libs"
KDIR="$RUN_DIR/kafka-$PORT"
PID_FILE="$KDIR/kafka.pid"
LOG_FILE="$KDIR/kafka.log"
DATA_DIR="$KDIR/data"

say() { echo "kafka: $*" >&2; }
die() { say "$*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Our broker: the pid in the pid file is alive and is a kafka.Kafka JVM (not a
# recycled pid).
running() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *" kafka.Kafka "* ]]
}

# A Metadata v4 request (no topics) over bash's /dev/tcp: ready once the
# broker answers with our correlation id and at least one live (unfenced)
# broker. Needs no client library.
broker_answers() {
  local reply
  # shellcheck disable=SC2016  # $1 expands in the inner bash, on purpose
  reply="$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    # size=21 | api_key=3 api_version=4 correlation_id=1 client_id="kizuna" | topics=[] allow_auto_create=false
    printf "\x00\x00\x00\x15\x00\x03\x00\x04\x00\x00\x00\x01\x00\x06kizuna\x00\x00\x00\x00\x00" >&3
    head -c 16 <&3 | od -An -v -tx1' _ "$PORT" 2>/dev/null)" || return 1
  reply="${reply//[[:space:]]/}"
  # size(4) correlation_id(4) throttle_time_ms(4) brokers.length(4)
  [[ ${#reply} -eq 32 && ${reply:8:8} == 00000001 && ${reply:24:8} != 00000000 ]]
}

fetch_jars() {
  [[ -f "$LIBS/.complete" ]] && return
  command -v mvn >/dev/null || die "Maven (mvn) is required to fetch the broker jars"
  local tmp="$LIBS.tmp.$$"
  say "fetching Kafka $VERSION jars from Maven Central into $LIBS"
  rm -rf "$tmp"
  if ! mvn -q -B -Dstyle.color=never -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
      -Dkafka.version="$VERSION" -DincludeScope=runtime -DoutputDirectory="$tmp" \
      >"$RUN_DIR/mvn.log" 2>&1; then
    rm -rf "$tmp"
    tail -30 "$RUN_DIR/mvn.log" >&2
    die "Maven could not fetch the Kafka $VERSION jars (log: $RUN_DIR/mvn.log)"
  fi
  [[ -f "$tmp/kafka_2.13-$VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$VERSION.jar missing after Maven ran"; }
  touch "$tmp/.complete"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
}

write_config() {
  mkdir -p "$KDIR"
  cat >"$KDIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=$PARTITIONS
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=-1
log.segment.bytes=67108864
num.io.threads=2
num.network.threads=2
num.recovery.threads.per.data.dir=1
PROPS
  # Warnings only, plus the start-up line; Kafka 4.x logs through log4j2.
  cat >"$KDIR/log4j2.properties" <<PROPS
rootLogger.level=WARN
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.server.name=kafka.server.KafkaRaftServer
logger.server.level=INFO
PROPS
}

java_cmd() {
  java "-Xmx$HEAP" -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$KDIR/log4j2.properties" -cp "$LIBS/*" "$@"
}

# A Kafka cluster id: 16 random bytes, URL-safe base64 without padding
# (what `StorageTool random-uuid` prints), never starting with '-'.
cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && { echo "$id"; return; }
  done
}

format_storage() {
  [[ -f "$DATA_DIR/meta.properties" ]] && return
  say "formatting storage in $DATA_DIR"
  java_cmd kafka.tools.StorageTool format -t "$(cluster_id)" \
    -c "$KDIR/server.properties" --ignore-formatted >>"$LOG_FILE" 2>&1 || {
    tail -30 "$LOG_FILE" >&2; die "storage format failed (log: $LOG_FILE)"; }
}

# The pid in the pid file is alive. Only for the process this script just
# started: right after the fork its cmdline is still this shell's, so
# `running` would call a starting broker dead.
alive() {
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! alive; then
      tail -40 "$LOG_FILE" >&2
      rm -f "$PID_FILE"
      die "broker process exited during start-up (log: $LOG_FILE)"
    fi
    if port_open "$PORT" && broker_answers; then return 0; fi
    sleep 0.3
  done
  tail -40 "$LOG_FILE" >&2
  die "broker did not become ready on 127.0.0.1:$PORT within ${START_TIMEOUT}s (still running, pid $(cat "$PID_FILE"); log: $LOG_FILE)"
}

up() {
  mkdir -p "$RUN_DIR"
  if running; then
    if port_open "$PORT" && broker_answers; then
      say "already running on 127.0.0.1:$PORT (pid $(cat "$PID_FILE"))"
      return
    fi
    say "already starting (pid $(cat "$PID_FILE")); waiting for it"
    wait_ready
    say "ready on 127.0.0.1:$PORT"
    return
  fi
  rm -f "$PID_FILE"
  port_open "$PORT" && die "port $PORT is taken by another process"
  port_open "$CONTROLLER_PORT" && die "controller port $CONTROLLER_PORT is taken by another process"
  command -v java >/dev/null || die "Java 17+ is required to run the broker"
  fetch_jars
  write_config
  [[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
  : >"$LOG_FILE"
  format_storage
  say "starting Kafka $VERSION on 127.0.0.1:$PORT"
  nohup java "-Xmx$HEAP" -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$KDIR/log4j2.properties" -cp "$LIBS/*" \
    kafka.Kafka "$KDIR/server.properties" >>"$LOG_FILE" 2>&1 </dev/null 9>&- &
  echo $! >"$PID_FILE"
  wait_ready
  say "ready on 127.0.0.1:$PORT"
}

down() {
  local purge="${1:-}"
  [[ -z "$purge" || "$purge" == "--purge" ]] || { echo "usage: scripts/kafka.sh down [--purge]" >&2; exit 2; }
  if running; then
    local pid; pid="$(cat "$PID_FILE")"
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      say "broker did not stop within 30s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 20; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
    say "stopped"
  else
    say "not running"
  fi
  rm -f "$PID_FILE"
  if [[ "$purge" == "--purge" ]]; then rm -rf "$DATA_DIR"; say "data purged"; fi
}

# One `up` or `down` at a time for this port (a second `up` waits, then finds
# the broker running).
lock() {
  mkdir -p "$KDIR"
  exec 9>"$KDIR/.lock"
  flock -w $((START_TIMEOUT + 60)) 9 || die "another scripts/kafka.sh holds $KDIR/.lock"
}

case "${1:-}" in
  up) lock; up ;;
  down) lock; down "${2:-}" ;;
  status) running && port_open "$PORT" ;;
  logs) [[ -f "$LOG_FILE" ]] || die "no log at $LOG_FILE"; tail -n "${2:-100}" "$LOG_FILE" ;;
  *) echo "usage: scripts/kafka.sh up | down [--purge] | status | logs [N]" >&2; exit 2 ;;
esac
