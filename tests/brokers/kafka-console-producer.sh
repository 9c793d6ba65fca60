#!/usr/bin/env bash
# Kafka's own kafka-console-producer.sh, run from the jars cached by brokers.sh (same arguments as upstream).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.ConsoleProducer "$@"
