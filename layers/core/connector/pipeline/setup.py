"""Saving a connection: validate the settings against both accounts, then write the secret and the settings.

Checks (all before any write, so nothing is saved half): both credentials work, the sevDesk account is on
bookkeeping 2.0, every mapped payment account exists and is offline (the connector cannot book real bank accounts),
every revenue account allows its (tax rule, rate) for revenue per ``ReceiptGuidance/forRevenue``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connector.errors import ApiError, AuthError, RejectedError
from connector.money import rate_key
from connector.pipeline.connection import SUPPORTED_BOOKKEEPING_VERSION
from connector.pipeline.runtime import ConnectionClients, Runtime
from connector.settings.model import ConnectionSettings, Credentials, PaymentAccount
from connector.sevdesk.client import SevdeskClient
from connector.sevdesk.models import CheckAccount, RevenueAccount
from connector.store.dynamo import StoredConnection
from connector.transport import RetryPolicy


@dataclass
class SetupCheck:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class SetupReport:
    checks: list[SetupCheck] = field(default_factory=list)
    # Checks that could not be made (an API unreachable, throttling, a server error): "try again later", not "the
    # settings are wrong" - the HTTP API answers 502 for these, 422 only for settings the checks refused.
    unreachable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def could_not_ask(self, name: str, api: str, exc: ApiError) -> None:
        self.unreachable.append(name)
        self.add(name, False, f"{api} could not be asked ({exc}); nothing was saved, try again later")

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(SetupCheck(name, ok, detail))

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks]}


class SetupError(Exception):
    def __init__(self, report: SetupReport) -> None:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in report.checks if not c.ok)
        super().__init__(f"connection not saved: {failed}")
        self.report = report

    @property
    def unreachable(self) -> bool:
        """Only checks that could not be made failed: retry later (502), the settings were not refused (422)."""
        refused = [c for c in self.report.checks if not c.ok and c.name not in self.report.unreachable]
        return bool(self.report.unreachable) and not refused


SETUP_TIMEOUT_SECONDS = 8.0  # both checks must fit API Gateway's 29 s together
SETUP_RETRY = RetryPolicy(attempts=2, base_delay=0.5, max_delay=1.0, max_retry_after=3.0)


def check_connection(runtime: Runtime, settings: ConnectionSettings, credentials: Credentials) -> SetupReport:
    """Run every setup check with short-lived clients (short timeouts, one retry), closed afterwards."""
    timeout = min(runtime.config.http_timeout, SETUP_TIMEOUT_SECONDS)
    clients = runtime.build_clients(settings.connection_id, credentials, timeout=timeout, retry=SETUP_RETRY)
    try:
        return _checks(clients, settings)
    finally:
        clients.billbee.close()
        clients.sevdesk.close()


def _checks(clients: ConnectionClients, settings: ConnectionSettings) -> SetupReport:
    report = SetupReport()
    try:
        clients.billbee.list_orders(page=1, page_size=1)
        report.add("billbeeCredentials", True, "Billbee accepted the API key, user and API password")
        if settings.general.shop_ids:
            # A mistyped shop id would silently export nothing from that shop.
            known = {shop.id: shop.name for shop in clients.billbee.list_shops()}
            for shop_id in settings.general.shop_ids:
                report.add(
                    f"shop[{shop_id}]",
                    shop_id in known,
                    f"Billbee shop {shop_id} '{known[shop_id]}'" if shop_id in known
                    else f"Billbee has no shop {shop_id}; its shops are {sorted(known) or 'none'}",
                )
    except AuthError:
        report.add("billbeeCredentials", False, "Billbee rejected the API key, user name or API password")
    except RejectedError as exc:
        report.add("billbeeCredentials", False, f"Billbee refused the request: {exc}")
    except ApiError as exc:
        report.could_not_ask("billbeeCredentials", "Billbee", exc)

    try:
        version = clients.sevdesk.bookkeeping_version()
    except AuthError:
        report.add("sevdeskToken", False, "sevDesk rejected the API token")
        return report
    except RejectedError as exc:
        report.add("sevdeskToken", False, f"sevDesk refused the request: {exc}")
        return report
    except ApiError as exc:
        report.could_not_ask("sevdeskToken", "sevDesk", exc)
        return report
    report.add("sevdeskToken", True, "sevDesk accepted the API token")
    report.add(
        "bookkeepingVersion",
        version == SUPPORTED_BOOKKEEPING_VERSION,
        f"sevDesk bookkeeping version {version}"
        + ("" if version == SUPPORTED_BOOKKEEPING_VERSION else "; only version 2.0 is supported"),
    )

    accounts = {a.id: a for a in clients.sevdesk.check_accounts()}
    wanted = [(f"paymentMethod {m.payment_method}", m.check_account_id) for m in settings.accounts.payment_accounts]
    if settings.sevdesk.default_check_account_id is not None:
        wanted.append(("defaultCheckAccountId", settings.sevdesk.default_check_account_id))
    for label, account_id in wanted:
        account = accounts.get(account_id)
        if account is None:
            report.add(f"paymentAccount[{label}]", False, f"sevDesk has no payment account {account_id}")
        elif not account.is_active:
            report.add(
                f"paymentAccount[{label}]",
                False,
                f"account {account_id} '{account.name}' is archived in sevDesk and takes no bookings; reactivate it "
                "or map the payment method to an active offline account",
            )
        elif not account.is_offline:
            report.add(
                f"paymentAccount[{label}]",
                False,
                f"account {account_id} '{account.name}' is an {account.type} (bank) account; map payment methods to "
                "offline (manual) accounts only, e.g. 'PayPal BB'",
            )
        else:
            report.add(f"paymentAccount[{label}]", True, f"{account_id} '{account.name}' is an offline account")

    guidance = {account.account_datev_id: account for account in clients.sevdesk.revenue_guidance()}
    for mapping in settings.accounts.revenue_accounts:
        label = f"revenueAccount[rule {mapping.tax_rule} {rate_key(mapping.tax_rate)} %]"
        report.add(label, *_revenue_account_allowed(guidance.get(mapping.account_datev_id), mapping.account_datev_id,
                                                    mapping.tax_rule, mapping.tax_rate))
    return report


def _revenue_account_allowed(
    account: RevenueAccount | None, account_id: int, tax_rule: int, rate: Decimal
) -> tuple[bool, str]:
    if account is None:
        return False, f"account {account_id} is not a revenue account of this sevDesk account"
    refusal = account.refusal(tax_rule, rate)
    if refusal is not None:
        return False, refusal
    return True, f"account {account.label} allows tax rule {tax_rule} at {rate_key(rate)} %"


def save_connection(runtime: Runtime, settings: ConnectionSettings) -> SetupReport:
    """Validate, then store: credentials in Secrets Manager, everything else in DynamoDB."""
    existing = runtime.store.get_connection(settings.connection_id)
    credentials = settings.credentials
    if credentials is None:
        if existing is None:
            raise ValueError("credentials are required when a connection is created")
        credentials = runtime.secrets.get(existing.secret_id)
    report = check_connection(runtime, settings, credentials)
    if not report.ok:
        raise SetupError(report)
    if settings.credentials is not None or existing is None:
        secret_id = runtime.secrets.put(settings.connection_id, credentials)
    else:
        secret_id = existing.secret_id
    try:
        runtime.store.put_connection(settings.without_credentials(), secret_id)
    except Exception:
        if existing is None:  # never leave a secret behind for a connection that was not saved
            runtime.secrets.delete(secret_id)
        raise
    runtime.store.set_connection_status(settings.connection_id, "OK", None)
    runtime.forget_clients(settings.connection_id)
    return report


@dataclass
class AddedPaymentAccount:
    account: CheckAccount
    created: bool  # False: an active offline account of that name existed and was mapped instead
    settings: ConnectionSettings


class AlreadyMapped(Exception):
    """The payment method is mapped already; a mapping is changed with PUT."""


def add_payment_account(
    runtime: Runtime,
    stored: StoredConnection,
    sevdesk: SevdeskClient,
    *,
    payment_method: int,
    name: str,
    accounting_number: int | None,
) -> AddedPaymentAccount:
    """An offline (clearing) account in sevDesk for one Billbee payment method, mapped in the connection: an active
    offline account of that name is reused, so repeating the request creates nothing twice."""
    settings = stored.settings
    mapped = settings.accounts.check_account_for(payment_method)
    if mapped is not None:
        raise AlreadyMapped(f"payment method {payment_method} is mapped to account {mapped} already; change the "
                            "mapping with PUT")
    existing = next(
        (a for a in sevdesk.check_accounts() if a.is_offline and a.is_active and a.name.strip() == name), None
    )
    account = existing or sevdesk.create_clearing_account(name, accounting_number)
    accounts = settings.accounts.model_copy(update={"payment_accounts": [
        *settings.accounts.payment_accounts,
        PaymentAccount(payment_method=payment_method, check_account_id=account.id),
    ]})
    changed = ConnectionSettings.model_validate(
        {**settings.public_dict(), "accounts": accounts.model_dump(mode="json", by_alias=True)}
    )
    runtime.store.put_connection(changed, stored.secret_id)
    return AddedPaymentAccount(account, existing is None, changed)
