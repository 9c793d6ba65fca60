"""librdkafka errors -> the contract's typed errors. Messages never carry a client config.

An authorization failure (the broker's ACLs) says "not authorized" and, where the caller says
what was asked (``denied=``), which operation on what: "not authorized to Write to topic 'orders'"
(Kafka's own names for ACL operations), with a hint that does not suggest retrying.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from workbench.broker import (
    AccessDenied,
    BrokerError,
    InvalidRequest,
    NotFound,
    Timeout,
    Unreachable,
)

_NOT_FOUND = {
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError.GROUP_ID_NOT_FOUND,
    KafkaError.UNKNOWN_TOPIC_ID,
}
#: Refused by the ACLs, and on what kind of resource.
_NOT_AUTHORIZED = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "the topic",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "the consumer group",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "the cluster",
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "the transactional id",
    KafkaError.DELEGATION_TOKEN_AUTHORIZATION_FAILED: "delegation tokens",
}
_DENIED = {
    *_NOT_AUTHORIZED,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError._AUTHENTICATION,
}
#: What an AccessDenied for an ACL refusal tells the user to do.
DENIED_HINT = "the cluster's ACLs do not allow this user that: ask its administrators, or use a profile that may"
#: Slow: no answer in time, or a broker that answers "not yet" (a group coordinator still loading its
#: offsets after a restart or a fenced broker coming back): asking again later is the cure.
_TIMEOUT = {
    KafkaError._TIMED_OUT,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError._MSG_TIMED_OUT,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
}
_UNREACHABLE = {
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
    KafkaError._SSL,
    KafkaError.NETWORK_EXCEPTION,
    KafkaError.BROKER_NOT_AVAILABLE,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}
_INVALID = {
    KafkaError.MSG_SIZE_TOO_LARGE,
    KafkaError.RECORD_LIST_TOO_LARGE,
    KafkaError.TOPIC_EXCEPTION,
    KafkaError.INVALID_PARTITIONS,
    KafkaError.INVALID_REPLICATION_FACTOR,
    KafkaError.INVALID_CONFIG,
    KafkaError.INVALID_REQUEST,
    KafkaError.POLICY_VIOLATION,
    KafkaError.TOPIC_ALREADY_EXISTS,
    KafkaError.OFFSET_OUT_OF_RANGE,
    KafkaError.INVALID_RECORD,
    KafkaError.INVALID_MSG,
    KafkaError.INVALID_TIMESTAMP,
    KafkaError._INVALID_ARG,
    KafkaError._INVALID_TYPE,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.NON_EMPTY_GROUP,
    KafkaError.GROUP_SUBSCRIBED_TO_TOPIC,
    KafkaError.STALE_MEMBER_EPOCH,
    KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
}


def kafka_error(exc: BaseException | KafkaError | None) -> KafkaError | None:
    """The KafkaError inside a KafkaException (or the error itself)."""
    if isinstance(exc, KafkaError):
        return exc
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def describe_error(err: KafkaError) -> str:
    text = err.str() or err.name()
    name = err.name()
    return text if name in text else f"{text} ({name})"


def is_not_authorized(exc: BaseException | KafkaError | None) -> bool:
    """Refused by the broker's ACLs (not an authentication failure)."""
    err = kafka_error(exc)
    return err is not None and err.code() in _NOT_AUTHORIZED


def not_authorized(where: str, denied: str, err: KafkaError | None = None) -> AccessDenied:
    """``{where}: not authorized to {denied}`` (e.g. "Write to topic 'orders'"), the code appended."""
    code = f" ({err.name()})" if err is not None else ""
    return AccessDenied(f"{where}: not authorized to {denied}{code}", hint=DENIED_HINT)


def map_error(exc: BaseException | KafkaError, where: str, *, denied: str | None = None) -> BrokerError:
    """A typed error for a librdkafka failure; ``where`` says what was being done, ``denied`` what
    an ACL refusal refused ("Write to topic 'orders'")."""
    if isinstance(exc, BrokerError):
        return exc
    err = kafka_error(exc)
    if err is None:
        return BrokerError(f"{where}: {exc}")
    code = err.code()
    message = f"{where}: {describe_error(err)}"
    if code in _NOT_FOUND:
        return NotFound(message)
    if code in (KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._AUTHENTICATION):
        return AccessDenied(f"{where}: authentication failed: {describe_error(err)}")
    if code in _NOT_AUTHORIZED:
        if denied is not None:
            return not_authorized(where, denied, err)
        return AccessDenied(f"{where}: not authorized on {_NOT_AUTHORIZED[code]} ({err.name()})", hint=DENIED_HINT)
    if code in _DENIED:
        return AccessDenied(message)
    if code in _TIMEOUT:
        return Timeout(message)
    if code in _UNREACHABLE:
        return Unreachable(message)
    if code in _INVALID:
        return InvalidRequest(message)
    return BrokerError(message)
