#!/usr/bin/env bash
# Kafka's own kafka-topics.sh, run from the jars cached by brokers.sh (same arguments as upstream).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
