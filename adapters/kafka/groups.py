"""Consumer groups' descriptions and committed offsets, fetched in a worker process.

Describing groups and fetching their committed offsets are coordinator-bound admin requests. When
the broker connection drops while such requests wait for their coordinator (a broker frozen past
librdkafka's 60 s socket timeout, a broker restart during a refresh), librdkafka 2.x frees a request
twice and aborts the whole process (``rd_kafka_enq_once_del_source_return: Assertion
'eonce->refcnt > 0' failed``: its issue 4605, fix proposed in its PR 5397). No setting avoids that
window, so these requests run in a small process of their own: if librdkafka aborts there, the
workbench (a TUI, a `lag --watch`) gets a Timeout, says the broker was slow, and the next call starts
a new worker.

Inside the worker, requests are bounded too: groups go GROUP_BATCH at a time (one describe request
and GROUP_BATCH offset requests in flight), never thousands at once.

Protocol (pickle over the worker's stdin/stdout): the parent sends ``(conf, timeout_s)`` once, then
one ``(group_ids, with_offsets)`` per fetch; the worker answers each with ``("batch", infos,
offsets, done, total)`` messages and a final ``("done",)``, or ``("error", kind, message)``.
``infos`` maps a group id to its :class:`GroupInfo` (None when describing it failed).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, wait
from typing import IO, Any, BinaryIO

from workbench import broker
from workbench.broker import BrokerError, GroupInfo, GroupMember, Timeout

GROUP_BATCH = 64  # groups described (and offset requests in flight) at once
#: Listing states whose groups have no members: `lag` does not ask for their description.
MEMBERLESS_STATES = frozenset({"Empty", "Dead"})
WATCHDOG_EXTRA_S = 30.0  # a worker silent this long past its own timeouts is killed

Infos = dict[str, GroupInfo | None]
Offsets = dict[str, dict[tuple[str, int], int | None]]


_GROUP_STATE_NAMES = {
    "STABLE": "Stable",
    "EMPTY": "Empty",
    "DEAD": "Dead",
    "PREPARING_REBALANCING": "PreparingRebalance",
    "PREPARING_REBALANCE": "PreparingRebalance",
    "COMPLETING_REBALANCING": "CompletingRebalance",
    "COMPLETING_REBALANCE": "CompletingRebalance",
    "ASSIGNING": "Assigning",
    "RECONCILING": "Reconciling",
    "UNKNOWN": "Unknown",
}


def group_state_name(state: Any) -> str:
    """Kafka's own name for a group state (``Stable``, ``Empty``, ``PreparingRebalance`` ...)."""
    if state is None:
        return "Unknown"
    name = getattr(state, "name", str(state))
    return _GROUP_STATE_NAMES.get(name.upper(), name.replace("_", " ").title().replace(" ", ""))


# ---------------------------------------------------------------------- the workbench's side


class GroupFetcher:
    """The parent's handle on the worker: started on first use, replaced after it died."""

    def __init__(self, conf: Mapping[str, Any], timeout_s: float, where: str, scrub: Callable[[str], str]) -> None:
        self._conf = {k: v for k, v in conf.items() if not callable(v)}  # never shown: may hold secrets
        self._timeout = timeout_s
        self._where = where
        self._scrub = scrub
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one fetch at a time per worker

    def __repr__(self) -> str:
        return f"<GroupFetcher {self._where}>"

    def fetch(
        self,
        group_ids: Sequence[str],
        *,
        with_offsets: bool,
        on_batch: Callable[[int, int], None] | None = None,
        describe: Collection[str] | None = None,
    ) -> tuple[Infos, Offsets]:
        """Blocking (run it in a thread): committed offsets (if asked) of every group, and infos of
        those in ``describe`` (all when None: a group not described has no entry in the infos;
        `lag` describes only groups with members, the others' listing says all it would)."""
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

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for pipe in (proc.stdin, proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

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

    def _receive(self, proc: subprocess.Popen[bytes], stream: IO[bytes]) -> tuple:
        """The worker's next message; it is killed if it says nothing for longer than it may take."""
        watchdog = threading.Timer(2 * self._timeout + WATCHDOG_EXTRA_S, proc.kill)
        watchdog.start()
        try:
            return pickle.load(stream)
        except (EOFError, OSError, pickle.UnpicklingError):
            raise self._died(proc) from None
        finally:
            watchdog.cancel()

    def _died(self, proc: subprocess.Popen[bytes]) -> BrokerError:
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        self._proc = None
        how = f"was ended by signal {-code}" if code < 0 else f"exited with {code}"
        return Timeout(
            f"{self._where}: the client fetching consumer groups {how} while the broker was slow or "
            "away (a known librdkafka fault, its issue 4605); the next refresh starts a new one"
        )


# ---------------------------------------------------------------------- the worker


def _group_info(desc: Any) -> GroupInfo:
    members = []
    for m in desc.members or ():
        assignment = m.assignment.topic_partitions if m.assignment else []
        members.append(
            GroupMember(
                client_id=m.client_id or "",
                host=(m.host or "").lstrip("/"),
                assignment=tuple(sorted((tp.topic, tp.partition) for tp in assignment or ())),
            )
        )
    return GroupInfo(
        group_id=desc.group_id,
        state=group_state_name(getattr(desc, "state", None)),
        protocol=desc.partition_assignor or "",
        members=tuple(members),
    )


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
            group_ids, with_offsets, describe = pickle.load(requests)
        except EOFError:
            return
        described = None if describe is None else frozenset(describe)
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
    """The worker: requests on stdin, answers on the original stdout (fd 1 then points nowhere,
    so nothing printed by a library can corrupt the answers)."""
    replies = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    _serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
