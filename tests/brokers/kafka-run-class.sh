#!/usr/bin/env bash
# Run a Kafka main class from the jars cached by brokers.sh, e.g.
#   tests/brokers/kafka-run-class.sh org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
. "$here/env.sh"

if [[ $# -lt 1 ]]; then
    echo "usage: $(basename "$0") MAIN_CLASS [ARGS...]" >&2
    exit 2
fi
if [[ ! -f "$EW_KAFKA_LIBS/.complete" ]]; then
    echo "kafka-run-class: no Kafka $EW_KAFKA_VERSION jars in $EW_KAFKA_LIBS; run tests/brokers/brokers.sh up" >&2
    exit 3
fi
class="$1"
shift
# shellcheck disable=SC2086  # the option strings are meant to be word-split
exec "$EW_JAVA" $EW_KAFKA_TOOL_OPTS -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/tools-log4j2.properties" \
    -cp "$EW_KAFKA_LIBS/*" "$class" "$@"
