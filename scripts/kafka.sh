#!/usr/bin/env bash
# A local single-node Apache Kafka (KRaft, combined broker+controller) on 127.0.0.1.
#
#   scripts/kafka.sh up | down [--purge] | status | logs
#
# The broker jars and their runtime dependencies come from Maven Central
# (scripts/kafka/pom.xml) into .cache/kafka/<version>/libs once; later runs
# reuse them. Environment (defaults):
#   KIZUNA_KAFKA_VERSION          4.4.0   (see docs/kafka-version.md)
#   KIZUNA_KAFKA_PORT             19092
#   KIZUNA_KAFKA_CONTROLLER_PORT  19093
#   KIZUNA_KAFKA_PARTITIONS       4       (num.partitions for auto-created topics)
#   KIZUNA_KAFKA_HEAP             768m
#   KIZUNA_RUN_DIR                <repo>/.cache/run
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${KIZUNA_KAFKA_VERSION:-4.4.0}"
PORT="${KIZUNA_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${KIZUNA_KAFKA_CONTROLLER_PORT:-19093}"
PARTITIONS="${KIZUNA_KAFKA_PARTITIONS:-4}"
HEAP="${KIZUNA_KAFKA_HEAP:-768m}"
RUN_DIR="${KIZUNA_RUN_DIR:-$ROOT/.cache/run}"
LIBS="$ROOT/.cache/kafka/$VERSION/libs"
KDIR="$RUN_DIR/kafka-$PORT"
PID_FILE="$KDIR/kafka.pid"
LOG_FILE="$KDIR/kafka.log"
DATA_DIR="$KDIR/data"

say() { echo "kafka: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() {
  [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

fetch_jars() {
  if [[ -f "$LIBS/.complete" ]]; then return; fi
  command -v mvn >/dev/null || { say "Maven (mvn) is required to fetch the broker jars"; exit 1; }
  command -v java >/dev/null || { say "Java 17+ is required to run the broker"; exit 1; }
  say "fetching Kafka $VERSION jars from Maven Central into $LIBS"
  rm -rf "$LIBS"
  if ! mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
      -Dkafka.version="$VERSION" -DincludeScope=runtime -DoutputDirectory="$LIBS" >"$RUN_DIR/mvn.log" 2>&1; then
    tail -30 "$RUN_DIR/mvn.log" >&2
    say "Maven could not fetch the jars (log: $RUN_DIR/mvn.log)"
    exit 1
  fi
  touch "$LIBS/.complete"
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
  cat >"$KDIR/log4j2.properties" <<PROPS
rootLogger.level=WARN
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka.server.KafkaRaftServer
logger.kafka.level=INFO
PROPS
}

java_cmd() {
  java "-Xmx$HEAP" "-Xms256m" -XX:+UseG1GC -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$KDIR/log4j2.properties" -cp "$LIBS/*" "$@"
}

format_storage() {
  if [[ -f "$DATA_DIR/meta.properties" ]]; then return; fi
  say "formatting storage in $DATA_DIR"
  java_cmd kafka.tools.StorageTool format -t "$(java_cmd kafka.tools.StorageTool random-uuid)" \
    -c "$KDIR/server.properties" --ignore-formatted >>"$LOG_FILE" 2>&1 || {
    tail -30 "$LOG_FILE" >&2; say "storage format failed"; exit 1; }
}

wait_ready() {
  local deadline=$((SECONDS + ${KIZUNA_KAFKA_START_TIMEOUT:-90}))
  while ((SECONDS < deadline)); do
    if ! running; then
      tail -40 "$LOG_FILE" >&2; say "broker process exited during start-up (log: $LOG_FILE)"; exit 1
    fi
    if port_open "$PORT" && java_cmd_ready; then return 0; fi
    sleep 0.5
  done
  tail -40 "$LOG_FILE" >&2
  say "broker did not become ready on 127.0.0.1:$PORT within ${KIZUNA_KAFKA_START_TIMEOUT:-90}s"
  exit 1
}

# The broker is ready once it has registered and answers metadata requests;
# the "Kafka Server started" line marks that.
java_cmd_ready() { grep -q "Kafka Server started" "$LOG_FILE" 2>/dev/null; }

up() {
  mkdir -p "$RUN_DIR"
  if running && port_open "$PORT"; then say "already running on 127.0.0.1:$PORT (pid $(cat "$PID_FILE"))"; return; fi
  if port_open "$PORT"; then say "port $PORT is taken by another process"; exit 1; fi
  fetch_jars
  write_config
  : >"$LOG_FILE"
  format_storage
  say "starting Kafka $VERSION on 127.0.0.1:$PORT"
  nohup java "-Xmx$HEAP" "-Xms256m" -XX:+UseG1GC -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$KDIR/log4j2.properties" -cp "$LIBS/*" \
    kafka.Kafka "$KDIR/server.properties" >>"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  wait_ready
  say "ready on 127.0.0.1:$PORT"
}

down() {
  if running; then
    local pid; pid="$(cat "$PID_FILE")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then say "broker did not stop in 30s; killing"; kill -9 "$pid" 2>/dev/null || true; fi
    say "stopped"
  fi
  rm -f "$PID_FILE"
  if [[ "${1:-}" == "--purge" ]]; then rm -rf "$DATA_DIR"; say "data purged"; fi
}

case "${1:-}" in
  up) up ;;
  down) shift; down "${1:-}" ;;
  status) running && port_open "$PORT" ;;
  logs) tail -n "${2:-100}" "$LOG_FILE" ;;
  *) echo "usage: scripts/kafka.sh up | down [--purge] | status | logs [N]" >&2; exit 2 ;;
esac
