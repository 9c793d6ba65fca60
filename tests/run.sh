#!/usr/bin/env bash
# The project's test command (the README's, and what .ci/run calls):
# installs the package with its test extras (and tmux, which the TUI crash test drives), starts the
# real Kafka and RabbitMQ brokers on loopback (idempotent), then runs the whole suite against a Kafka
# shaped like a shared cluster (10,000 unrelated consumer groups), and fails when a test left
# anything behind on either broker (see tests/conftest.py). Extra arguments go to pytest.
#
#   EW_TEST_SEED=N bash tests/run.sh   runs the tests in a shuffled order (pytest-randomly, seed N)
#
# Benchmarks are not part of it: run them with `python3 -m pytest tests/benchmarks -m benchmark -s`.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "tests: installing event-workbench with its test extras" >&2
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

if ! command -v tmux >/dev/null; then
    echo "tests: installing tmux with apt-get" >&2
    [[ $EUID -eq 0 ]] || { echo "tests: tmux is missing and installing it needs root (apt-get install tmux)" >&2; exit 1; }
    { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends tmux; } >/dev/null
fi

bash tests/brokers/brokers.sh up

if [[ -n ${EW_TEST_SEED:-} ]]; then
    order=(-p randomly "--randomly-seed=$EW_TEST_SEED")
else
    order=(-p no:randomly)
fi

EW_SUITE_CHECKS=1 python3 -m pytest -m "not benchmark" "${order[@]}" "$@"
