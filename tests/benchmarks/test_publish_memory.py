"""Kafka publish in bounded memory (issue 14): 2,000,000 events take the same peak RSS as 200,000.

``workbench publish T --file F`` checks the whole file in one streaming pass, then reads it again and
sends it batch by batch: nothing is kept per event. Both runs write ~200-byte JSONL envelopes to
fresh 3-partition topics; the 2,000,000-event file is ~500 MB. Targets: peak RSS under 150 MB for
2,000,000 events, and within 20 % of the 200,000-event run's. The figures (and the rates, over the
whole command) are printed for the README.

Peak RSS is measured by a small wrapper process that forks the command and waits for it: the
resource usage of a child started straight from pytest starts at pytest's own RSS (Linux keeps the
high-water mark across the exec), which would hide the figure being measured.

Needs Kafka on 127.0.0.1:9092 (``bash tests/brokers/brokers.sh up``); without it this fails.
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.benchmarks.conftest import measure, report
from tests.benchmarks.test_kafka_throughput import BOOTSTRAP, admin, make_topic  # noqa: F401 - fixtures
from tests.benchmarks.test_local_throughput import make_input

SMALL, LARGE = 200_000, 2_000_000

PEAK_RSS = r"""
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\nPEAK_RSS_KB {usage.ru_maxrss}\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_mb(run) -> float:
    """The command's own peak RSS, as the wrapper above reports it."""
    return int(run.stderr.rsplit(b"PEAK_RSS_KB ", 1)[1].split()[0]) / 1024


@pytest.mark.timeout(1800)
def test_publish_2m_in_the_memory_of_200k(tmp_path, make_topic):  # noqa: F811
    small, large = tmp_path / "200k.jsonl", tmp_path / "2m.jsonl"
    make_input(small, SMALL)
    make_input(large, LARGE)
    wb = [sys.executable, "-m", "workbench", "--broker", f"kafka://{BOOTSTRAP}"]
    runs = {}
    for n, source in ((SMALL, small), (LARGE, large)):
        run = measure([sys.executable, "-c", PEAK_RSS, *wb, "publish", make_topic("mem"), "--file", str(source)])
        assert f"{n:,} confirmed, 0 failed".encode() in run.stdout, run.stdout
        runs[n] = peak_rss_mb(run)
        report(
            f"kafka-publish-{n // 1000}k-memory",
            events_per_s=n / run.seconds,
            peak_rss_mb=runs[n],
            input_mb=os.path.getsize(source) / 1e6,
        )
    ratio = runs[LARGE] / runs[SMALL]
    report("kafka-publish-rss-2m-vs-200k", ratio=ratio, load_average=os.getloadavg()[0])
    assert runs[LARGE] < 150, f"peak RSS {runs[LARGE]:.0f} MB for 2,000,000 events"
    assert 0.8 <= ratio <= 1.2, f"2,000,000 events took {ratio:.2f}x the peak RSS of 200,000"
