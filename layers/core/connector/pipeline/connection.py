"""A connection's health and its clients, in one place for the poll, the export, the setup checks and the API.

- ``check_sevdesk_account``: only sevDesk bookkeeping 2.0 is written to (bookkeeping.md), checked before writes;
- ``mark_broken``: a connection that cannot work until its user acts (a rejected credential, bookkeeping 1.0, an
  unreadable secret) is set to ERROR with the reason, and its cached clients and secret are forgotten, so a credential
  replaced right now is read at once instead of the cache;
- ``interactive_clients``: clients for a request someone is waiting on (short timeouts, one retry, a short wait for a
  rate-limit slot), built by the same ``Runtime.build_clients`` as the workers' cached ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from connector.errors import AuthError
from connector.observability import logger
from connector.pipeline.runtime import ConnectionClients, Runtime
from connector.secrets import CredentialsUnavailable
from connector.settings.model import Credentials
from connector.store.dynamo import StoredConnection
from connector.transport import RetryPolicy

SUPPORTED_BOOKKEEPING_VERSION = "2.0"
# An interactive request must not hang on one slow call the way the export worker may (it has 120 s).
INTERACTIVE_TIMEOUT_SECONDS = 4.0
INTERACTIVE_RETRY = RetryPolicy(attempts=2, base_delay=0.3, max_delay=1.0, max_retry_after=3.0)
INTERACTIVE_MAX_RATE_WAIT_SECONDS = 3.0


class ConnectionBroken(Exception):
    """The connection cannot work until its user acts (bad token, bookkeeping 1.0): stop, no retry storm."""


# What makes a connection unusable until someone acts: the poll and the export stop on these and say why.
BROKEN = (ConnectionBroken, CredentialsUnavailable, AuthError)


def check_sevdesk_account(clients: ConnectionClients) -> None:
    """Only sevDesk bookkeeping 2.0 is written to (bookkeeping.md); checked before the first write."""
    if clients.checked_version is None:
        clients.checked_version = clients.sevdesk.bookkeeping_version()
    if clients.checked_version != SUPPORTED_BOOKKEEPING_VERSION:
        raise ConnectionBroken(
            f"the sevDesk account uses bookkeeping version {clients.checked_version}; the connector writes only to "
            "version 2.0 (taxRule/accountDatev). Switch the account to sevdesk-Update 2.0"
        )


def broken_reason(exc: Exception) -> str:
    """What the user must do, in words; never a credential."""
    if isinstance(exc, AuthError):
        if exc.api == "sevdesk":
            return "sevDesk rejected the API token (wrong or revoked); enter a valid admin token for this connection"
        return "Billbee rejected the API key, user name or API password (or the API is not activated for the account)"
    return str(exc)


def mark_broken(runtime: Runtime, stored: StoredConnection, exc: Exception) -> str:
    """Set the connection to ERROR with the reason and forget its clients and cached secret; returns the reason."""
    reason = broken_reason(exc)
    connection_id = stored.settings.connection_id
    runtime.store.set_connection_status(connection_id, "ERROR", reason)
    runtime.forget_clients(connection_id)
    runtime.secrets.forget(stored.secret_id)  # a credential replaced right now must be read, not the cache
    logger.error("connection broken", extra={"connection": connection_id, "reason": reason})
    return reason


@contextmanager
def interactive_clients(
    runtime: Runtime, connection_id: str, credentials: Credentials
) -> Iterator[ConnectionClients]:
    """Clients for a request someone is waiting on. They share the connection's Billbee rate limiter with the poll
    and the export workers, but not their cached clients, whose patient retry policy suits a queue."""
    clients = runtime.build_clients(
        connection_id,
        credentials,
        timeout=min(runtime.config.http_timeout, INTERACTIVE_TIMEOUT_SECONDS),
        retry=INTERACTIVE_RETRY,
        max_rate_wait=INTERACTIVE_MAX_RATE_WAIT_SECONDS,
    )
    try:
        yield clients
    finally:
        clients.billbee.close()
        clients.sevdesk.close()
