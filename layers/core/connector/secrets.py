"""Connection credentials in Secrets Manager: one secret per connection, never logged, never in DynamoDB."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from connector.settings.model import Credentials

CACHE_SECONDS = 300


class CredentialsUnavailable(Exception):
    """The connection's secret is missing or malformed (the message names the secret, never its value)."""


class SecretStore:
    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._cache: dict[str, tuple[float, Credentials]] = {}
        self._lock = threading.Lock()

    def secret_id_for(self, connection_id: str) -> str:
        return f"{self.prefix}{connection_id}"

    def put(self, connection_id: str, credentials: Credentials) -> str:
        secret_id = self.secret_id_for(connection_id)
        value = json.dumps(credentials.as_secret_json())
        try:
            self.client.put_secret_value(SecretId=secret_id, SecretString=value)
        except self.client.exceptions.ResourceNotFoundException:
            self.client.create_secret(
                Name=secret_id,
                SecretString=value,
                Description=f"Billbee and sevDesk credentials of connector connection {connection_id}",
            )
        with self._lock:
            self._cache.pop(secret_id, None)
        return secret_id

    def get(self, secret_id: str) -> Credentials:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(secret_id)
            if cached and now - cached[0] < CACHE_SECONDS:
                return cached[1]
        try:
            raw = self.client.get_secret_value(SecretId=secret_id)["SecretString"]
            credentials = Credentials.model_validate(json.loads(raw))
        except self.client.exceptions.ResourceNotFoundException as exc:
            raise CredentialsUnavailable(f"secret {secret_id} does not exist") from exc
        except ValueError as exc:  # pydantic's ValidationError and json's errors are ValueErrors
            raise CredentialsUnavailable(f"secret {secret_id} does not hold the four connection credentials") from exc
        with self._lock:
            self._cache[secret_id] = (now, credentials)
        return credentials

    def forget(self, secret_id: str) -> None:
        with self._lock:
            self._cache.pop(secret_id, None)

    def delete(self, secret_id: str) -> None:
        try:
            self.client.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
        except self.client.exceptions.ResourceNotFoundException:
            pass
        self.forget(secret_id)
