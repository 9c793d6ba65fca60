#!/usr/bin/env bash
# A production-shaped Kafka for the tests that need one: three KRaft nodes on 127.0.0.1, replicated,
# with SASL over TLS and ACLs. The single-node PLAINTEXT broker of brokers.sh stays the default for
# the rest of the suite; this cluster runs only while tests need it.
#
# Usage: tests/brokers/kafka-cluster.sh [up|down|status|kill-node N|start-node N|pids|reset]
#   up            make what is missing (certificates, users, configs, formatted storage), start the
#                 nodes that are not running, wait until all three answer; creates the ACLs.
#                 Does nothing (fast) when the cluster already answers.
#   down          stop the three nodes (TERM, then KILL after $EW_CLUSTER_STOP_TIMEOUT s).
#   status        one line naming kafka-cluster with the bootstrap addresses (PLAINTEXT, then
#                 SASL_SSL); exit 0 only when all three nodes answer.
#   kill-node N   SIGKILL node N (1..3), for failover tests; waits until it is gone.
#   start-node N  start node N again and wait until it answers.
#   pids          "N PID" per running node.
#   reset         down, then delete the cluster's state (data, certificates, users), then up.
#
# What runs (each node is broker and controller in one JVM; the three form the controller quorum):
#   node N (N=1..3)  PLAINTEXT 127.0.0.1:1909(N+1)   inter-broker listener; unauthenticated
#                                                    (User:ANONYMOUS, a super user): the harness's
#                                                    own door, like the single broker's 9092
#                    SASL_SSL  127.0.0.1:1919(N+1)   SCRAM-SHA-512 and OAUTHBEARER (unsecured JWT
#                                                    validator), TLS with the cluster's own CA
#                    CONTROLLER 127.0.0.1:1929(N+1)  KRaft quorum (dynamic, 3 voters)
#   node 1 also      MISMATCH  127.0.0.1:19392       SASL_SSL presenting a certificate of the same CA
#                                                    for another host name (hostname-mismatch tests)
#   Why combined nodes: on a 2-core machine three JVMs cost less than six (memory, GC and JIT
#   threads, start-up); a quorum of three still survives the loss of any one node.
#   Topics: default.replication.factor=3, min.insync.replicas=2, internal topics RF 3 / min ISR 2,
#   auto.create.topics.enable=false.
#   Users (SCRAM-SHA-512, created at format time with kafka-storage --add-scram): admin (super
#   user) and oncall, passwords random per state directory. ACLs (StandardAuthorizer, created with
#   Kafka's AclCommand over SASL_SSL as admin): oncall may Describe, Read and DescribeConfigs every
#   topic and Describe every group; nothing else (no Write, no Alter, no Create, no Delete, no
#   Read on groups: that would let it commit, i.e. reset, a group's offsets).
#   Tests read addresses, users, passwords and CA files from $EW_BROKERS_STATE_DIR/kafka-cluster/
#   cluster.json (tests/brokers/cluster.py). tls/untrusted-ca.crt is a second CA that signed
#   nothing the cluster presents (untrusted-CA tests).
#
# Environment overrides (beside those of env.sh):
#   EW_CLUSTER_HEAP_OPTS      JVM heap of each node (default -Xms64m -Xmx256m)
#   EW_CLUSTER_JVM_OPTS       other JVM options of each node (GC, JIT)
#   EW_CLUSTER_TIMEOUT        seconds to wait for the nodes to answer (default 180)
#   EW_CLUSTER_STOP_TIMEOUT   seconds to wait after TERM before KILL (default 30)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$HERE/env.sh"
LOG_PREFIX=kafka-cluster
# shellcheck source=lib.sh
. "$HERE/lib.sh"

HOST=127.0.0.1
NODES=(1 2 3)
PLAIN_BASE=19091
SASL_BASE=19191
CONTROLLER_BASE=19291
MISMATCH_PORT=19392
MISMATCH_NODE=1
TIMEOUT="${EW_CLUSTER_TIMEOUT:-180}"
STOP_TIMEOUT="${EW_CLUSTER_STOP_TIMEOUT:-30}"
# Three nodes share two cores beside the suite: small heaps, the serial collector (no concurrent GC
# threads; what the JVM itself picks on small machines) and the C1 compiler only (quicker start-up,
# less JIT CPU). Measured: RSS about 200-250 MiB a node, start-up 10-15 s.
HEAP_OPTS="${EW_CLUSTER_HEAP_OPTS:--Xms64m -Xmx256m}"
JVM_OPTS="${EW_CLUSTER_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=64m}"

STATE="$EW_BROKERS_STATE_DIR/kafka-cluster"
TLS="$STATE/tls"
USERS_FILE="$STATE/users.env"
ADMIN_CLIENT_CONFIG="$STATE/admin-client.properties"
INFO_FILE="$STATE/cluster.json"
ACLS_MARKER="$STATE/acls.ok"
MARKER="# Managed by Event Workbench tests/brokers/kafka-cluster.sh (loopback-only test cluster)."

plain_port() { echo $((PLAIN_BASE + $1)); }
sasl_port() { echo $((SASL_BASE + $1)); }
controller_port() { echo $((CONTROLLER_BASE + $1)); }
node_dir() { echo "$STATE/node-$1"; }
node_config() { echo "$STATE/node-$1/server.properties"; }
node_log() { echo "$STATE/node-$1/server.log"; }
node_pid_file() { echo "$STATE/node-$1/node.pid"; }

# join SEP WORD...: the words joined with SEP.
join() {
    local sep=$1 out="" word
    shift
    for word in "$@"; do out+="${out:+$sep}$word"; done
    echo "$out"
}

bootstrap_of() { # bootstrap_of plain|sasl|controller
    local n addresses=()
    for n in "${NODES[@]}"; do addresses+=("$HOST:$("${1}_port" "$n")"); done
    join , "${addresses[@]}"
}

# kafka_uuid: a random Kafka Uuid (16 bytes, URL-safe base64 without padding, not starting
# with '-' as Kafka's own Uuid.randomUuid guarantees). No JVM start for it.
kafka_uuid() {
    local id
    while :; do
        id=$(openssl rand -base64 16 | tr '+/' '-_' | tr -d '=\n')
        [[ $id != -* ]] && break
    done
    echo "$id"
}

# ---------------------------------------------------------------- processes

# node_pid N: the pid of node N's JVM (pid file, else its command line).
node_pid() {
    local n=$1 pid="" config
    config=$(node_config "$n")
    [[ -f $(node_pid_file "$n") ]] && pid=$(<"$(node_pid_file "$n")")
    if proc_matches "$pid" "kafka.Kafka $config" && alive "$pid"; then
        echo "$pid"
        return 0
    fi
    for pid in $(pgrep -f 'kafka[.]Kafka' || true); do
        if proc_matches "$pid" "kafka.Kafka $config" && alive "$pid"; then
            echo "$pid" >"$(node_pid_file "$n")"
            echo "$pid"
            return 0
        fi
    done
    return 1
}

node_answers() { kafka_answers_on "$HOST" "$(plain_port "$1")"; }

all_answer() {
    local n
    for n in "${NODES[@]}"; do node_answers "$n" || return 1; done
}

# ---------------------------------------------------------------- what the cluster needs

make_tls() {
    [[ -s $TLS/ca.crt && -s $TLS/broker.pem && -s $TLS/mismatch.pem && -s $TLS/untrusted-ca.crt ]] && return 0
    command -v openssl >/dev/null || die "openssl is needed to make the cluster's certificates"
    local tmp
    rm -rf "$TLS"
    tmp=$(mktemp -d "$STATE/.tls.XXXXXX")
    (
        cd "$tmp"
        umask 077
        ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
        ca() { # ca NAME CN
            ec "$1.key"
            openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 3650 -subj "/O=Event Workbench tests/CN=$2" \
                -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        }
        leaf() { # leaf NAME CN SAN
            ec "$1.key"
            openssl req -new -key "$1.key" -out "$1.csr" -subj "/O=Event Workbench tests/CN=$2"
            printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
                "$3" >"$1.ext"
            openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
                -extfile "$1.ext" -out "$1.crt" 2>/dev/null
            # Kafka's PEM key store: an unencrypted PKCS#8 key, then the certificate chain.
            cat "$1.key" "$1.crt" ca.crt >"$1.pem"
            rm -f "$1.csr" "$1.ext"
        }
        ca ca "kafka-cluster test CA"
        leaf broker "kafka-cluster" "IP:127.0.0.1,DNS:localhost"
        leaf mismatch "wrong-host.invalid" "DNS:wrong-host.invalid"
        ca untrusted-ca "an untrusted test CA"
        rm -f ./*.srl
        chmod 0644 ./*.crt
    ) || die "openssl could not make the certificates"
    mv "$tmp" "$TLS"
    log "made a CA and broker certificates in $TLS"
}

make_users() {
    [[ -s $USERS_FILE ]] && return 0
    (
        umask 077
        printf 'ADMIN_PASSWORD=%s\nONCALL_PASSWORD=%s\n' "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" >"$USERS_FILE"
    )
    log "chose passwords for the SCRAM users admin and oncall ($USERS_FILE)"
}

# write_files: users, the Java tools' client config, each node's server.properties, cluster.json.
write_files() {
    mkdir -p "$STATE"
    make_tls
    make_users
    # shellcheck source=/dev/null
    . "$USERS_FILE"
    (
        umask 077
        write_if_changed "$ADMIN_CLIENT_CONFIG" 0600 <<EOF || true
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.crt
EOF
    )
    local n voters
    voters=$(bootstrap_of controller)
    for n in "${NODES[@]}"; do
        mkdir -p "$(node_dir "$n")/data"
        local listeners advertised mismatch_conf=""
        listeners="PLAINTEXT://$HOST:$(plain_port "$n"),SASL_SSL://$HOST:$(sasl_port "$n"),CONTROLLER://$HOST:$(controller_port "$n")"
        advertised="PLAINTEXT://$HOST:$(plain_port "$n"),SASL_SSL://$HOST:$(sasl_port "$n")"
        if [[ $n == "$MISMATCH_NODE" ]]; then
            listeners+=",MISMATCH://$HOST:$MISMATCH_PORT"
            advertised+=",MISMATCH://$HOST:$MISMATCH_PORT"
            mismatch_conf="
# MISMATCH: SASL_SSL like the others, with a certificate for another host name.
listener.name.mismatch.ssl.keystore.location=$TLS/mismatch.pem
listener.name.mismatch.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.mismatch.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"kafka-cluster\";
listener.name.mismatch.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler"
        fi
        if write_if_changed "$(node_config "$n")" 0644 <<EOF; then
$MARKER
# Node $n of 3: broker and controller in one JVM; the three nodes are the controller quorum.
process.roles=broker,controller
node.id=$n
controller.quorum.bootstrap.servers=$voters
controller.listener.names=CONTROLLER
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,MISMATCH:SASL_SSL
# Replication and the quorum talk PLAINTEXT on loopback (no TLS cost on a 2-core machine).
inter.broker.listener.name=PLAINTEXT
log.dirs=$(node_dir "$n")/data

# Authorization: ACLs in the metadata log. PLAINTEXT and CONTROLLER clients are User:ANONYMOUS,
# which the quorum, replication and the harness need; every SASL_SSL user is checked.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:ANONYMOUS
allow.everyone.if.no.acl.found=false

# SASL_SSL: SCRAM-SHA-512 users (kafka-storage --add-scram) and OAUTHBEARER with Kafka's
# unsecured JWT validator (the real mechanism without an identity provider; test use only).
sasl.enabled.mechanisms=SCRAM-SHA-512,OAUTHBEARER
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="kafka-cluster";
listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler
ssl.keystore.type=PEM
ssl.keystore.location=$TLS/broker.pem
ssl.client.auth=none
$mismatch_conf

# Replication as in production: every topic on all three nodes, writes need two in sync.
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
share.coordinator.state.topic.num.partitions=3
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
# Unknown topics are errors; tests create the topics they use.
auto.create.topics.enable=false

# Fewer threads than the defaults: three nodes share two cores.
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
# The cleaner's dedupe buffer is on the heap (128 MiB by default): 16 MiB holds ~700,000 keys a pass.
log.cleaner.dedupe.buffer.size=16777216
EOF
            log "wrote $(node_config "$n")"
            if node_pid "$n" >/dev/null; then
                log "node $n runs with its previous configuration until it is restarted (down, then up)"
            fi
        fi
    done
    write_info
}

write_info() {
    # shellcheck source=/dev/null
    . "$USERS_FILE"
    local n nodes=()
    for n in "${NODES[@]}"; do
        nodes+=("{\"id\": $n, \"plaintext\": \"$HOST:$(plain_port "$n")\", \"sasl_ssl\": \"$HOST:$(sasl_port "$n")\", \"controller\": \"$HOST:$(controller_port "$n")\", \"pid_file\": \"$(node_pid_file "$n")\", \"log\": \"$(node_log "$n")\"}")
    done
    (
        umask 077
        write_if_changed "$INFO_FILE" 0600 <<EOF || true
{
  "name": "kafka-cluster",
  "plaintext": "$(bootstrap_of plain)",
  "sasl_ssl": "$(bootstrap_of sasl)",
  "controllers": "$(bootstrap_of controller)",
  "mismatch": "$HOST:$MISMATCH_PORT",
  "ca": "$TLS/ca.crt",
  "untrusted_ca": "$TLS/untrusted-ca.crt",
  "users": {"admin": "$ADMIN_PASSWORD", "oncall": "$ONCALL_PASSWORD"},
  "super_users": ["admin"],
  "script": "$HERE/kafka-cluster.sh",
  "nodes": [
    $(join $',\n    ' "${nodes[@]}")
  ]
}
EOF
    )
}

# format: every node formatted with the same cluster id, the SCRAM users and the initial quorum.
# A node without storage while others have it means the state is broken: all are formatted anew.
format() {
    local n missing=0
    for n in "${NODES[@]}"; do
        [[ -f $(node_dir "$n")/data/meta.properties ]] || missing=$((missing + 1))
    done
    ((missing == 0)) && return 0
    if ((missing < ${#NODES[@]})); then
        log "only some nodes have storage; formatting all three anew"
    fi
    # shellcheck source=/dev/null
    . "$USERS_FILE"
    local cluster_id initial=() pids=() started=$SECONDS
    cluster_id=$(kafka_uuid)
    for n in "${NODES[@]}"; do initial+=("$n@$HOST:$(controller_port "$n"):$(kafka_uuid)"); done
    rm -f "$ACLS_MARKER"
    for n in "${NODES[@]}"; do
        rm -rf "$(node_dir "$n")/data"
        mkdir -p "$(node_dir "$n")/data"
        "$HERE/kafka-run-class.sh" kafka.tools.StorageTool format -t "$cluster_id" -c "$(node_config "$n")" \
            --initial-controllers "$(join , "${initial[@]}")" \
            --add-scram "SCRAM-SHA-512=[name=admin,password=$ADMIN_PASSWORD]" \
            --add-scram "SCRAM-SHA-512=[name=oncall,password=$ONCALL_PASSWORD]" \
            >"$(node_dir "$n")/format.log" 2>&1 8>&- &
        pids+=($!)
    done
    for n in "${NODES[@]}"; do
        if ! wait "${pids[$((n - 1))]}"; then
            show_log "$(node_dir "$n")/format.log"
            die "formatting node $n failed"
        fi
    done
    log "formatted the three nodes (cluster id $cluster_id, SCRAM users admin and oncall) in $((SECONDS - started))s"
}

# ---------------------------------------------------------------- start and stop

launch_node() {
    local n=$1 pid
    if pid=$(node_pid "$n"); then
        return 0
    fi
    local port
    for port in "$(plain_port "$n")" "$(sasl_port "$n")" "$(controller_port "$n")"; do
        port_open "$HOST" "$port" && die "port $port (node $n) is taken by a process this script did not start"
    done
    rotate_log "$(node_log "$n")"
    # shellcheck disable=SC2086  # option strings are meant to be word-split
    setsid "$EW_JAVA" $HEAP_OPTS $JVM_OPTS -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$HERE/broker-log4j2.properties" \
        -Dkafka.logs.dir="$(node_dir "$n")" \
        -cp "$EW_KAFKA_LIBS/*" kafka.Kafka "$(node_config "$n")" \
        >>"$(node_log "$n")" 2>&1 </dev/null 8>&- 9>&- &
    pid=$!
    echo "$pid" >"$(node_pid_file "$n")"
    log "started node $n, pid $pid (log: $(node_log "$n"))"
}

# wait_nodes N...: until each node answers on its PLAINTEXT and accepts on its SASL_SSL port.
wait_nodes() {
    local n pid deadline=$((SECONDS + TIMEOUT)) waiting
    while :; do
        waiting=()
        for n in "$@"; do
            if node_answers "$n" && port_open "$HOST" "$(sasl_port "$n")"; then continue; fi
            waiting+=("$n")
            if ! pid=$(node_pid "$n"); then
                show_log "$(node_log "$n")"
                die "node $n exited during start-up"
            fi
        done
        ((${#waiting[@]} == 0)) && return 0
        if ((SECONDS >= deadline)); then
            for n in "${waiting[@]}"; do show_log "$(node_log "$n")"; done
            die "node(s) ${waiting[*]} did not answer within ${TIMEOUT}s (still running; 'down' stops them)"
        fi
        sleep 0.5
    done
}

# The ACLs, one AclCommand argument list a line (no quoting: split on blanks, never globbed).
# oncall reads: Describe, Read and DescribeConfigs on every topic; Describe on every group (list
# groups, their members and committed offsets). Not Read on groups: Kafka authorizes OffsetCommit
# (and so an offsets reset) with Read on the group, and the on-call user must not move offsets.
# The workbench reads with assign() and never commits, so it needs no group Read.
ACL_SPECS="--allow-principal User:oncall --operation Describe --operation Read --operation DescribeConfigs --topic *
--allow-principal User:oncall --operation Describe --group *"

acl() {
    "$HERE/kafka-run-class.sh" org.apache.kafka.tools.AclCommand --bootstrap-server "$(bootstrap_of sasl)" \
        --command-config "$ADMIN_CLIENT_CONFIG" "$@"
}

# make_acls: with Kafka's AclCommand over SASL_SSL as admin (which also proves TLS, SCRAM and the
# super user work). The marker holds the specs last applied: specs no longer wanted are removed,
# new ones added, nothing is done when they are the same.
make_acls() {
    local applied=""
    [[ -f $ACLS_MARKER ]] && applied=$(<"$ACLS_MARKER")
    [[ -f $ACLS_MARKER && $applied == "$ACL_SPECS" ]] && return 0
    local started=$SECONDS line args pid pids=() logs=() i=0 failed=""
    while IFS= read -r line; do
        [[ -z $line ]] || grep -qxF -- "$line" <<<"$ACL_SPECS" && continue
        read -ra args <<<"$line"
        acl --remove --force "${args[@]}" >"$STATE/acls.$i.log" 2>&1 8>&- &
        pids+=($!) logs+=("$STATE/acls.$i.log") i=$((i + 1))
    done <<<"$applied"
    # Removals first (a removed spec may overlap an added one), then the additions.
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    pids=()
    while IFS= read -r line; do
        [[ -n $applied ]] && grep -qxF -- "$line" <<<"$applied" && continue
        read -ra args <<<"$line"
        acl --add "${args[@]}" >"$STATE/acls.$i.log" 2>&1 8>&- &
        pids+=($!) logs+=("$STATE/acls.$i.log") i=$((i + 1))
    done <<<"$ACL_SPECS"
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    cat "${logs[@]}" >"$STATE/acls.log" 2>/dev/null </dev/null || true
    rm -f "${logs[@]}"
    if [[ $failed ]]; then
        show_log "$STATE/acls.log"
        die "changing the ACLs failed"
    fi
    printf '%s' "$ACL_SPECS" >"$ACLS_MARKER"
    log "ACLs for oncall: Describe, Read, DescribeConfigs on topics; Describe on groups ($((SECONDS - started))s)"
}

lock() {
    mkdir -p "$STATE"
    exec 8>"$STATE/.lock"
    flock -w 600 8 || die "another kafka-cluster.sh holds $STATE/.lock"
}

cmd_up() {
    local started=$SECONDS n launched=""
    lock
    if all_answer && [[ -f $ACLS_MARKER && $(<"$ACLS_MARKER") == "$ACL_SPECS" ]]; then
        log "already running: $(bootstrap_of plain)"
        return 0
    fi
    [[ -f $EW_KAFKA_LIBS/.complete ]] || die "no Kafka jars in $EW_KAFKA_LIBS; run tests/brokers/brokers.sh up kafka first"
    write_files
    format
    for n in "${NODES[@]}"; do
        node_pid "$n" >/dev/null || launched=1
        launch_node "$n"
    done
    wait_nodes "${NODES[@]}"
    make_acls
    local rss=()
    for n in "${NODES[@]}"; do rss+=("node $n $(rss_mib "$(node_pid "$n")") MiB"); done
    log "up in $((SECONDS - started))s${launched:+ (RSS: $(join ', ' "${rss[@]}"))}"
}

# stop_nodes N...: TERM each (side by side), KILL what is left after STOP_TIMEOUT seconds.
stop_nodes() {
    local n pid pids=() i
    for n in "$@"; do
        if pid=$(node_pid "$n"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$(node_pid_file "$n")"
    done
    ((${#pids[@]} == 0)) && return 0
    for ((i = 0; i < STOP_TIMEOUT * 2; i++)); do
        local left=()
        for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
        ((${#left[@]} == 0)) && return 0
        sleep 0.5
    done
    for pid in "${pids[@]}"; do
        if alive "$pid"; then
            log "pid $pid did not stop within ${STOP_TIMEOUT}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    sleep 0.5
}

cmd_down() {
    local started=$SECONDS
    lock
    stop_nodes "${NODES[@]}"
    log "stopped ($((SECONDS - started))s)"
}

cmd_status() {
    local n pid down=() pids=()
    for n in "${NODES[@]}"; do
        if node_answers "$n"; then
            pid=$(node_pid "$n") || pid="?"
            pids+=("$n:$pid")
        else
            down+=("$n")
        fi
    done
    if ((${#down[@]} == 0)); then
        echo "brokers: kafka-cluster running  $(bootstrap_of plain) (PLAINTEXT)  $(bootstrap_of sasl) (SASL_SSL)" \
            "(nodes $(join ' ' "${pids[@]}"); $INFO_FILE)"
        return 0
    fi
    if ((${#down[@]} == ${#NODES[@]})); then
        echo "brokers: kafka-cluster not running"
    else
        echo "brokers: kafka-cluster degraded: node(s) ${down[*]} do not answer; $(bootstrap_of plain) (PLAINTEXT)" \
            "$(bootstrap_of sasl) (SASL_SSL)"
    fi
    return 1
}

node_arg() {
    [[ ${1:-} =~ ^[1-3]$ ]] || die "a node id is needed: 1, 2 or 3"
}

cmd_kill_node() {
    local n=$1 pid i
    lock
    if ! pid=$(node_pid "$n"); then
        log "node $n is not running"
        return 0
    fi
    kill -KILL "$pid"
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    alive "$pid" && die "node $n (pid $pid) survived SIGKILL"
    rm -f "$(node_pid_file "$n")"
    log "killed node $n (pid $pid, SIGKILL)"
}

cmd_start_node() {
    local n=$1 started=$SECONDS
    lock
    [[ -f $(node_dir "$n")/data/meta.properties ]] || die "node $n has no storage; run 'up'"
    launch_node "$n"
    wait_nodes "$n"
    log "node $n answers ($((SECONDS - started))s)"
}

cmd_pids() {
    local n pid
    for n in "${NODES[@]}"; do
        if pid=$(node_pid "$n"); then echo "$n $pid"; fi
    done
}

cmd_reset() {
    cmd_down
    rm -rf -- "$STATE"
    log "deleted the cluster's state ($STATE)"
    exec 8>&-
    cmd_up
}

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

main() {
    local command=${1:-up}
    [[ $# -gt 0 ]] && shift
    case $command in
    up | start) cmd_up ;;
    down | stop) cmd_down ;;
    status) cmd_status ;;
    kill-node)
        node_arg "${1:-}"
        cmd_kill_node "$1"
        ;;
    start-node)
        node_arg "${1:-}"
        cmd_start_node "$1"
        ;;
    pids) cmd_pids ;;
    reset) cmd_reset ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
}

main "$@"
