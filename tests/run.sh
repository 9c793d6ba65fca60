#!/usr/bin/env bash
# The project's test command (the README's, and what .ci/run calls):
# installs the package with its test extras, starts the real Kafka and RabbitMQ brokers on
# loopback (idempotent), then runs the whole suite. Extra arguments go to pytest.
# Benchmarks are not part of it: run them with `python3 -m pytest tests/benchmarks -m benchmark -s`.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "tests: installing event-workbench with its test extras" >&2
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

bash tests/brokers/brokers.sh up

python3 -m pytest -m "not benchmark" "$@"
