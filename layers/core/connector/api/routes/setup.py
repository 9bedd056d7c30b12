"""Routes that help fill in the settings: what Billbee and sevDesk offer, and an offline account per payment method."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from connector.api.context import ApiContext, new_router
from connector.api.models import (
    AllowedTaxRule,
    BillbeeOptions,
    ConnectionIdPath,
    CreatedPaymentAccount,
    Named,
    PaymentAccountBody,
    PublicSettings,
    RevenueAccountOption,
    SetupOptions,
    SetupOptionsBody,
    SevdeskAccount,
    SevdeskOptions,
)
from connector.api.problems import JSON, ApiProblem, responses
from connector.errors import ApiError, AuthError
from connector.money import rate_key
from connector.pipeline.connection import interactive_clients
from connector.pipeline.setup import AlreadyMapped, add_payment_account
from connector.settings.model import Credentials
from connector.sevdesk.models import RATE_NAMES, RevenueAccount

_RATE_PERCENT = {name: rate_key(rate) for rate, name in RATE_NAMES.items()}


def setup_router(ctx: ApiContext) -> APIGatewayHttpRouter:
    router = new_router()

    @router.get(
        "/connections/<connectionId>/setup-options",
        operation_id="getSetupOptions",
        summary="What the settings can be filled with",
        description=(
            "Billbee: shops, order states, payment types. sevDesk: the offline accounts payments can be booked "
            "on (bank accounts cannot) and the revenue accounts with the tax rules and rates ReceiptGuidance "
            "allows for revenue."
        ),
        responses=responses({200: (SetupOptions, "The options")}, 404, 502),
    )
    def setup_options(connection_id: ConnectionIdPath) -> Response[SetupOptions]:
        stored = ctx.connection(connection_id)
        return Response(200, content_type=JSON, body=_options(ctx, connection_id, ctx.credentials(stored)))

    @router.post(
        "/connections/<connectionId>/setup-options",
        operation_id="getSetupOptionsWithCredentials",
        summary="What the settings can be filled with, asked with these credentials",
        description=(
            "The same answer as GET, asked with the credentials in the body instead of the stored ones: for a "
            "connection that does not exist yet (the console's \"new connection\" form fills its pickers before "
            "the first PUT), or to see what new credentials give access to. Nothing is stored; the credentials "
            "are used for this request only."
        ),
        responses=responses({200: (SetupOptions, "The options")}, 413, 422, 502),
    )
    def setup_options_with_credentials(
        connection_id: ConnectionIdPath, body: SetupOptionsBody
    ) -> Response[SetupOptions]:
        # Credentials the user just typed and Billbee or sevDesk refused are the request's fault: 422, as PUT answers.
        return Response(200, content_type=JSON, body=_options(ctx, connection_id, body.credentials, refused=422))

    @router.post(
        "/connections/<connectionId>/payment-accounts",
        operation_id="createPaymentAccount",
        summary="Create an offline account for a payment method",
        description=(
            "Creates an offline (clearing) account in sevDesk, e.g. 'PayPal BB', and maps the payment method to "
            "it in the connection's settings. An offline account of the same name is reused, so repeating the "
            "request creates nothing twice. A method that is mapped already answers 409: change a mapping with "
            "PUT."
        ),
        responses=responses({201: (CreatedPaymentAccount, "Created (or reused) and mapped")}, 404, 409, 413, 502),
    )
    def create_payment_account(
        connection_id: ConnectionIdPath, body: PaymentAccountBody
    ) -> Response[CreatedPaymentAccount]:
        stored = ctx.connection(connection_id)
        credentials = ctx.credentials(stored)
        with interactive_clients(ctx.runtime, connection_id, credentials) as clients:
            try:
                added = add_payment_account(
                    ctx.runtime, stored, clients.sevdesk, payment_method=body.payment_method, name=body.name,
                    accounting_number=body.accounting_number,
                )
            except AlreadyMapped as exc:
                raise ApiProblem(409, str(exc)) from exc
            except ApiError as exc:
                raise ApiProblem(502, f"sevDesk did not create the account: {exc}") from exc
        account = added.account
        answer = CreatedPaymentAccount(
            payment_method=body.payment_method,
            check_account=SevdeskAccount(id=account.id, name=account.name, type=account.type),
            created=added.created,
            connection=PublicSettings.model_validate(added.settings.public_dict()),
        )
        return Response(201, content_type=JSON, body=answer)


    return router


def _options(ctx: ApiContext, connection_id: str, credentials: Credentials, *, refused: int = 502) -> SetupOptions:
    """Shops, states and payment types from Billbee, offline and revenue accounts from sevDesk; ``refused`` is the
    status when an API refuses the credentials (502 for stored ones: the connection broke; 422 for typed ones)."""
    with interactive_clients(ctx.runtime, connection_id, credentials) as clients:
        billbee, sevdesk = clients.billbee, clients.sevdesk
        # Five independent calls: in parallel, so the answer comes within API Gateway's 29 s even when every one of
        # them needs its retry.
        with ThreadPoolExecutor(max_workers=5) as pool:
            calls: dict[str, Future[Any]] = {
                "shops": pool.submit(billbee.list_shops),
                "states": pool.submit(billbee.order_states),
                "types": pool.submit(billbee.payment_types),
                "accounts": pool.submit(sevdesk.check_accounts),
                "guidance": pool.submit(sevdesk.revenue_guidance),
            }
            try:
                results = {name: future.result() for name, future in calls.items()}
            except AuthError as exc:
                raise ApiProblem(refused, f"the credentials were refused: {exc}") from exc
            except ApiError as exc:
                raise ApiProblem(502, f"setup options unavailable: {exc}") from exc
    return SetupOptions(
        billbee=BillbeeOptions(
            shops=[Named(id=s.id, name=s.name) for s in results["shops"]],
            order_states=[Named(id=e.id, name=e.name) for e in results["states"]],
            payment_types=[Named(id=e.id, name=e.name) for e in results["types"]],
        ),
        sevdesk=SevdeskOptions(
            payment_accounts=[
                SevdeskAccount(id=a.id, name=a.name, type=a.type) for a in results["accounts"]
                if a.is_offline and a.is_active
            ],
            revenue_accounts=[_revenue_option(account) for account in results["guidance"]],
        ),
    )


def _revenue_option(account: RevenueAccount) -> RevenueAccountOption:
    """One ``ReceiptGuidance/forRevenue`` entry, its rate names (``NINETEEN``) as the percents the settings use."""
    return RevenueAccountOption(
        account_datev_id=account.account_datev_id,
        account_number=account.account_number,
        account_name=account.account_name,
        allowed_tax_rules=[
            AllowedTaxRule(tax_rule=rule.id, name=rule.name,
                           tax_rates=[_RATE_PERCENT.get(name, name) for name in rule.tax_rates])
            for rule in account.allowed_tax_rules
        ],
    )
