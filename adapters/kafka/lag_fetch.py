"""The group fetcher `lag` uses: it describes only the groups that have members.

Measured on the single test broker with 10,000 groups (all Empty, as a shared cluster's are
mostly): describing them took 2.5-3.2 s of broker time and fetching their committed offsets
2.1-2.3 s; together 3.5 s. A group the listing calls Empty or Dead has no member by definition,
so describing it tells nothing its listing did not: its state comes from the listing, its
members are none. Only the groups with members (Stable, rebalancing ...) are described, for
their members' assignments (partitions assigned but never committed, who owns which partition).

Same worker process and the same safety as ``groups.py`` (a librdkafka abort there is a
Timeout, not the end of the workbench); the request names which groups to describe:
``(group_ids, with_offsets, describe)``, ``describe`` None meaning all of them.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, wait
from typing import Any, BinaryIO

from workbench import broker
from workbench.broker import BrokerError, Timeout

from .groups import GroupFetcher, Infos, Offsets, _group_info

#: Groups per batch: offset requests in flight at once (few are described, see above).
GROUP_BATCH = 64
#: Listing states whose groups have no members: their description is not asked for.
MEMBERLESS_STATES = frozenset({"Empty", "Dead"})


class LagFetcher(GroupFetcher):
    """A :class:`GroupFetcher` whose fetch can leave groups undescribed."""

    @classmethod
    def like(cls, other: GroupFetcher) -> LagFetcher:
        """One with the same settings (the connection's; ``other`` is closed by the caller)."""
        return cls(other._conf, other._timeout, other._where, other._scrub)

    def fetch(
        self,
        group_ids: Sequence[str],
        *,
        with_offsets: bool,
        on_batch: Callable[[int, int], None] | None = None,
        describe: Collection[str] | None = None,
    ) -> tuple[Infos, Offsets]:
        """Blocking: committed offsets (if asked) of every group, infos of those in ``describe``
        (all when None); a group not described has no entry in the infos."""
        infos: Infos = {}
        offsets: Offsets = {}
        if not group_ids:
            return infos, offsets
        with self._lock:
            proc = self._worker()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                pickle.dump((list(group_ids), with_offsets, None if describe is None else list(describe)), proc.stdin)
                proc.stdin.flush()
            except OSError:
                raise self._died(proc) from None
            while True:
                message = self._receive(proc, proc.stdout)
                if message[0] == "done":
                    return infos, offsets
                if message[0] == "error":
                    _, kind, text = message
                    error_type = getattr(broker, kind, BrokerError)
                    raise error_type(self._scrub(text))
                _, batch_infos, batch_offsets, done, total = message
                infos.update(batch_infos)
                offsets.update(batch_offsets)
                if on_batch is not None:
                    on_batch(done, total)

    def _worker(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self.close()
        proc = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # librdkafka's own logging, and its abort message
            close_fds=True,
        )
        assert proc.stdin is not None
        pickle.dump((self._conf, self._timeout), proc.stdin)
        proc.stdin.flush()
        self._proc = proc
        return proc


# ---------------------------------------------------------------------- the worker


def _fetch_batch(
    admin: Any, batch: list[str], with_offsets: bool, timeout: float, described: Collection[str] | None
) -> tuple[Infos, Offsets]:
    from confluent_kafka import ConsumerGroupTopicPartitions

    from .errors import map_error

    to_describe = batch if described is None else [g for g in batch if g in described]
    descriptions = admin.describe_consumer_groups(to_describe, request_timeout=timeout) if to_describe else {}
    fetches: dict[str, Future] = {}
    if with_offsets:
        for group_id in batch:
            request = [ConsumerGroupTopicPartitions(group_id)]
            fetches[group_id] = admin.list_consumer_group_offsets(request, request_timeout=timeout)[group_id]
    pending = [*descriptions.values(), *fetches.values()]
    _, not_done = wait(pending, timeout=timeout + 5)
    if not_done:
        raise Timeout(f"no answer within {timeout:g} s")
    infos: Infos = {}
    for group_id, future in descriptions.items():
        infos[group_id] = None if future.exception() else _group_info(future.result())
    offsets: Offsets = {}
    for group_id, future in fetches.items():
        exc = future.exception()
        if exc is not None:
            raise map_error(exc, f"offsets of group {group_id!r}")
        offsets[group_id] = {
            (tp.topic, tp.partition): (None if tp.offset < 0 else tp.offset)
            for tp in future.result().topic_partitions or ()
            if tp.error is None
        }
    return infos, offsets


def _serve(requests: BinaryIO, replies: BinaryIO) -> None:
    from confluent_kafka.admin import AdminClient

    conf, timeout = pickle.load(requests)
    admin = AdminClient(conf)

    def send(message: tuple) -> None:
        pickle.dump(message, replies, protocol=pickle.HIGHEST_PROTOCOL)
        replies.flush()

    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        group_ids, with_offsets, *rest = request
        described = None if not rest or rest[0] is None else frozenset(rest[0])
        try:
            total = len(group_ids)
            for start in range(0, total, GROUP_BATCH):
                batch = group_ids[start : start + GROUP_BATCH]
                infos, offsets = _fetch_batch(admin, batch, with_offsets, timeout, described)
                send(("batch", infos, offsets, min(start + GROUP_BATCH, total), total))
            send(("done",))
        except BrokerError as exc:
            send(("error", type(exc).__name__, str(exc)))
        except Exception as exc:  # noqa: BLE001 - the parent raises it as a broker error
            send(("error", "BrokerError", f"{type(exc).__name__}: {exc}"))


def main() -> None:
    """The worker: requests on stdin, answers on the original stdout (fd 1 then points nowhere)."""
    replies = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    _serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
