#!/usr/bin/env bash
# A single-node Apache Kafka broker on loopback, for the Kafka reporter's tests
# and benchmarks (docs/reporters.md). No container: the broker's jars come from
# Maven Central (scripts/kafka/pom.xml) and run on the machine's Java 17.
#
#   scripts/kafka.sh start    start the broker (fetching the jars once), wait
#                             until it answers, print bootstrap=127.0.0.1:PORT
#   scripts/kafka.sh stop     stop it (TERM, then KILL after 30 s); its data stays,
#                             so a later start brings the same broker back
#   scripts/kafka.sh status   "running bootstrap=..." (exit 0) or "stopped" (exit 3)
#   scripts/kafka.sh clean    stop it and delete its state directory
#
# Environment:
#   OTUS_KAFKA_HOME   jar cache (default /var/tmp/otus-kafka; must be ours, mode 0700)
#   OTUS_KAFKA_STATE  this broker's state: config, data, kafka.log, and the
#                     `state` file (bootstrap=, controller=, pid=)
#                     (default $OTUS_KAFKA_HOME/state; one broker per directory)
#   OTUS_KAFKA_START_TIMEOUT  seconds to wait for it to answer (default 120)
#   OTUS_KAFKA_OWNER  a pid: when that process is gone, the broker is killed
#                     and its state directory removed (a test run killed
#                     mid-file never runs its own clean-up)
#   OTUS_KAFKA_AUTO_CREATE  true (default) or false: auto.create.topics.enable,
#                     set when the broker's state is first made
#
# A first start formats a fresh KRaft directory and picks two free loopback
# ports (PLAINTEXT, CONTROLLER); a start after a stop or a crash reuses both.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
home="${OTUS_KAFKA_HOME:-/var/tmp/otus-kafka}"
state="${OTUS_KAFKA_STATE:-$home/state}"
timeout_s="${OTUS_KAFKA_START_TIMEOUT:-120}"
auto_create="${OTUS_KAFKA_AUTO_CREATE:-true}"
case "$auto_create" in true|false) ;; *) echo "kafka.sh: OTUS_KAFKA_AUTO_CREATE must be true or false, not \"$auto_create\"" >&2; exit 2 ;; esac
lib="$home/lib-4.1.1"
props="$state/server.properties"
log="$state/kafka.log"

die() { echo "kafka.sh: $*" >&2; exit 1; }

# A directory we create 0700, or one that already is ours and not writable by others.
own_dir() {
  local d="$1"
  if [ ! -e "$d" ]; then mkdir -p -m 0700 "$d"; return; fi
  [ -d "$d" ] || die "$d: not a directory"
  [ "$(stat -c %u "$d")" = "$(id -u)" ] || die "$d: owned by someone else; set OTUS_KAFKA_HOME"
  [ $(( 0$(stat -c %a "$d") & 022 )) -eq 0 ] || die "$d: writable by others; set OTUS_KAFKA_HOME"
}

field() { sed -n "s/^$1=//p" "$state/state" 2>/dev/null | tail -n1; }

# The pid in the state file, if that process is still this state's broker.
running_pid() {
  local pid
  pid="$(field pid)"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $props" || return 1
  echo "$pid"
}

fetch_jars() {
  [ -f "$lib/.complete" ] && return
  command -v java >/dev/null || die "java not found (scripts/setup.sh --test installs it)"
  command -v mvn >/dev/null || die "mvn not found (scripts/setup.sh --test installs it)"
  exec 9>"$home/.fetch.lock"
  flock 9
  if [ ! -f "$lib/.complete" ]; then
    rm -rf "$lib"
    mvn -q -B -f "$here/kafka/pom.xml" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$lib" >"$home/fetch.log" 2>&1 ||
      die "fetching the broker's jars failed: see $home/fetch.log"
    touch "$lib/.complete"
  fi
  exec 9>&-
}

write_config() {
  local port="$1" cport="$2"
  cat >"$props" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$state/data
num.partitions=3
auto.create.topics.enable=$auto_create
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# A restart after a crash waits for the dead session to expire before the broker registers again.
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=1000
EOF
}

start() {
  own_dir "$home"
  own_dir "$state"
  if pid="$(running_pid)"; then
    echo "bootstrap=$(field bootstrap)"
    return
  fi
  fetch_jars
  local port cport
  if [ -f "$props" ] && [ -f "$state/data/meta.properties" ]; then
    port="$(field bootstrap)"
    port="${port##*:}"
    cport="$(field controller)"
    cport="${cport##*:}"
    [ -n "$port" ] && [ -n "$cport" ] || die "$state/state: no ports; run clean first"
  else
    rm -rf "$state/data"
    { read -r port; read -r cport; } < <(node "$here/kafka/probe.mjs" ports 2)
    write_config "$port" "$cport"
    # A KRaft cluster id: 16 random bytes, base64url. One starting with '-' would read as an option to StorageTool.
    local id=-
    while [ "${id#[-_]}" != "$id" ]; do id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"; done
    java -cp "$lib/*" kafka.tools.StorageTool format --standalone -t "$id" -c "$props" >>"$log" 2>&1 ||
      die "formatting $state/data failed: see $log"
  fi
  printf 'bootstrap=127.0.0.1:%s\ncontroller=127.0.0.1:%s\n' "$port" "$cport" >"$state/state"
  # Its own session: a terminal's ^C to the caller does not reach it.
  setsid java -Xmx512m -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
    -cp "$lib/*" kafka.Kafka "$props" >>"$log" 2>&1 </dev/null &
  local pid=$!
  echo "pid=$pid" >>"$state/state"
  if [ -n "${OTUS_KAFKA_OWNER:-}" ]; then
    # Ends with the broker (a stop, a kill, a restart's new watchdog takes over) or kills it when the owner is gone.
    setsid bash -c 'while kill -0 "$1" 2>/dev/null; do kill -0 "$2" 2>/dev/null || exit 0; sleep 1; done
      kill -KILL "$2" 2>/dev/null || exit 0
      while kill -0 "$2" 2>/dev/null; do sleep 0.1; done
      rm -rf "$3"' owner-watch "$OTUS_KAFKA_OWNER" "$pid" "$state" >/dev/null 2>&1 </dev/null &
  fi
  local deadline=$((SECONDS + timeout_s))
  until node "$here/kafka/probe.mjs" answers "$port"; do
    kill -0 "$pid" 2>/dev/null || die "the broker exited while starting: see $log"
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      die "the broker did not answer within ${timeout_s} s: see $log"
    fi
    sleep 0.5
  done
  echo "bootstrap=127.0.0.1:$port"
}

stop() {
  local pid
  pid="$(running_pid)" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 60); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  kill -KILL "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if running_pid >/dev/null; then echo "running bootstrap=$(field bootstrap)"; else echo stopped; exit 3; fi
    ;;
  clean)
    stop
    [ -d "$state" ] && rm -rf "$state"
    ;;
  *)
    echo "usage: $0 start|stop|status|clean" >&2
    exit 2
    ;;
esac
