"""What a function needs at run time, built once per Lambda container and shared by its invocations."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx

from connector.billbee.client import BillbeeClient
from connector.config import Config
from connector.ratelimit import DynamoRateLimiter, NoRateLimit, RateLimiter
from connector.secrets import SecretStore
from connector.settings.model import Credentials
from connector.sevdesk.client import SevdeskClient
from connector.sevdesk.models import RevenueAccount
from connector.store.dynamo import Store
from connector.transport import RetryPolicy

GUIDANCE_CACHE_SECONDS = 600


@dataclass
class ConnectionClients:
    billbee: BillbeeClient
    sevdesk: SevdeskClient
    credentials_fingerprint: int
    guidance: list[RevenueAccount] | None = None
    guidance_at: float = 0.0
    checked_version: str | None = None
    # sevDesk refused a delivery date after the voucher date once: later vouchers use the voucher date at once.
    delivery_after_voucher_date_refused: bool = False


@dataclass
class Runtime:
    config: Config
    table: Any
    sqs: Any
    secrets_client: Any
    store: Store = field(init=False)
    secrets: SecretStore = field(init=False)
    _clients: dict[str, ConnectionClients] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.store = Store(self.table)
        self.secrets = SecretStore(self.secrets_client, self.config.secret_prefix)

    @classmethod
    def from_env(cls) -> Runtime:
        config = Config.from_env()
        return cls(
            config=config,
            table=boto3.resource("dynamodb").Table(config.table_name),
            sqs=boto3.client("sqs"),
            secrets_client=boto3.client("secretsmanager"),
        )

    def limiter_for(self, connection_id: str, *, max_wait: float | None = None) -> RateLimiter:
        """The connection's Billbee rate limiter, shared in DynamoDB by every function; ``max_wait``: how long a
        request may wait for its slot (short for a request someone is waiting on)."""
        if not self.config.rate_limits:
            return NoRateLimit()
        limiter = DynamoRateLimiter(self.table, connection_id)
        if max_wait is not None:
            limiter.max_wait_seconds = max_wait
        return limiter

    def clients_for(self, connection_id: str, credentials: Credentials) -> ConnectionClients:
        """Clients per connection, rebuilt when its credentials change (a rotated token takes effect at once)."""
        fingerprint = hash(tuple(credentials.as_secret_json().values()))
        with self._lock:
            current = self._clients.get(connection_id)
            if current is not None and current.credentials_fingerprint == fingerprint:
                return current
            clients = self.build_clients(connection_id, credentials)
            if current is not None:
                current.billbee.close()
                current.sevdesk.close()
            self._clients[connection_id] = clients
            return clients

    def build_clients(
        self,
        connection_id: str,
        credentials: Credentials,
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        max_rate_wait: float | None = None,
    ) -> ConnectionClients:
        """A connection's two clients (the caller closes them, or keeps them in the cache of ``clients_for``). The one
        place clients are built: the workers' cached ones, the setup checks' and interactive requests' short-lived
        ones (``pipeline/connection.py``)."""
        timeout = self.config.http_timeout if timeout is None else timeout
        return ConnectionClients(
            billbee=BillbeeClient(
                api_key=credentials.billbee_api_key.get_secret_value(),
                username=credentials.billbee_username.get_secret_value(),
                password=credentials.billbee_api_password.get_secret_value(),
                base_url=self.config.billbee_base_url,
                limiter=self.limiter_for(connection_id, max_wait=max_rate_wait),
                timeout=timeout,
                retry=retry,
                transport=self.transport_for("billbee"),
                rate_scale=self.config.billbee_rate_scale,
            ),
            sevdesk=SevdeskClient(
                api_token=credentials.sevdesk_api_token.get_secret_value(),
                base_url=self.config.sevdesk_base_url,
                timeout=timeout,
                retry=retry,
                transport=self.transport_for("sevdesk"),
            ),
            credentials_fingerprint=hash(tuple(credentials.as_secret_json().values())),
        )

    def transport_for(self, api: str) -> httpx.BaseTransport | None:
        """The HTTP transport under an API's client: httpx's own (None) in the functions; the preflight puts its
        read-only guard here (``local/preflight/guard.py``)."""
        return None

    def revenue_guidance(self, clients: ConnectionClients) -> list[RevenueAccount]:
        now = time.monotonic()
        if clients.guidance is None or now - clients.guidance_at > GUIDANCE_CACHE_SECONDS:
            clients.guidance = clients.sevdesk.revenue_guidance()
            clients.guidance_at = now
        return clients.guidance

    def forget_clients(self, connection_id: str) -> None:
        with self._lock:
            current = self._clients.pop(connection_id, None)
        if current is not None:
            current.billbee.close()
            current.sevdesk.close()
