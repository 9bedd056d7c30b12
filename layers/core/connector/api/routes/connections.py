"""Routes of the connections: list, create or change (the setup checks first), read, remove."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ValidationError

from connector.api.context import ApiContext, new_router
from connector.api.models import (
    ConnectionBody,
    ConnectionIdPath,
    ConnectionList,
    ConnectionSummary,
    ConnectionView,
    DeletedConnection,
    ExportProgress,
    LastPoll,
    MaskedCredentials,
    Problem,
    PublicSettings,
    SavedConnection,
    SetupResult,
)
from connector.api.problems import JSON, ApiProblem, responses
from connector.errors import ApiError
from connector.pipeline.progress import read_progress
from connector.pipeline.setup import SetupError, save_connection
from connector.secrets import CredentialsUnavailable


def connections_router(ctx: ApiContext) -> APIGatewayHttpRouter:  # noqa: C901 - the routes of one subject
    router = new_router()

    @router.get(
        "/connections",
        operation_id="listConnections",
        summary="List the connections",
        responses=responses({200: (ConnectionList, "Every connection with its status")}),
    )
    def list_connections() -> Response[ConnectionList]:
        connections = [
            ConnectionSummary(
                connection_id=c.settings.connection_id, name=c.settings.name, enabled=c.settings.enabled,
                status=ctx.status(c),
            )
            for c in ctx.runtime.store.list_connections()
        ]
        return Response(200, content_type=JSON, body=ConnectionList(connections=connections))

    @router.put(
        "/connections/<connectionId>",
        operation_id="putConnection",
        summary="Create or change a connection",
        description=(
            "Runs the setup checks (both credentials valid, sevDesk bookkeeping 2.0, every mapped payment "
            "account exists and is offline, every revenue account allows its tax rule and rate) before anything "
            "is written; a refused connection is not saved at all. Credentials are written to Secrets Manager "
            "and never returned; omit them to keep the stored ones."
        ),
        responses=responses(
            {200: (SavedConnection, "Changed"), 201: (SavedConnection, "Created")}, 413, 422, 502
        ),
    )
    def put_connection(connection_id: ConnectionIdPath, body: ConnectionBody) -> Response[SavedConnection]:
        # powertools validated in Python's lax mode ("yes" for true, "3" for 3); the settings are validated again
        # strictly from the JSON text, where dates and decimals may still be strings, as the schema says.
        try:
            body = ConnectionBody.model_validate_json(router.current_event.body or "", strict=True)
        except ValidationError as exc:
            raise ApiProblem(400, "invalid connection settings", problems=[
                Problem(field=".".join(["body", *(str(p) for p in err["loc"])]), problem=err["msg"])
                for err in exc.errors(include_url=False)
            ]) from exc
        if body.connection_id not in (None, connection_id):
            raise ApiProblem(400, "connectionId in the body differs from the path", problems=[
                Problem(field="body.connectionId", problem=f"must be {connection_id!r} or left out")])
        settings = body.settings_for(connection_id)
        existed = ctx.runtime.store.get_connection(connection_id) is not None
        try:
            report = save_connection(ctx.runtime, settings)
        except SetupError as exc:
            # 502 when Billbee or sevDesk could not be asked (retry later); 422 when the checks refused it.
            raise ApiProblem(502 if exc.unreachable else 422, str(exc), setup=SetupResult.of(exc.report)) from exc
        except CredentialsUnavailable as exc:
            raise ApiProblem(502, f"the stored credentials are unavailable ({exc}); send them again") from exc
        except ApiError as exc:
            raise ApiProblem(502, f"the setup checks could not finish: {exc}; nothing was saved") from exc
        except ValueError as exc:  # e.g. credentials missing for a new connection
            raise ApiProblem(400, str(exc), problems=[Problem(field="body.credentials", problem=str(exc))]) from exc
        answer = SavedConnection(
            created=not existed,
            connection=PublicSettings.model_validate(settings.public_dict()),
            setup=SetupResult.of(report),
        )
        return Response(200 if existed else 201, content_type=JSON, body=answer)

    @router.get(
        "/connections/<connectionId>",
        operation_id="getConnection",
        summary="Read a connection",
        description="The settings without credentials (masked), the connection's status and its last poll.",
        responses=responses({200: (ConnectionView, "The connection")}, 404),
    )
    def get_connection(connection_id: ConnectionIdPath) -> Response[ConnectionView]:
        stored = ctx.connection(connection_id)
        cursor = ctx.runtime.store.get_cursor(connection_id)
        progress = read_progress(ctx.runtime.store, connection_id)
        view = ConnectionView(
            connection=PublicSettings.model_validate(stored.settings.public_dict()),
            credentials=MaskedCredentials(),
            status=ctx.status(stored),
            last_poll=LastPoll.model_validate(cursor) if cursor else None,
            counts=ctx.runtime.store.count_by_state(connection_id),
            progress=ExportProgress.model_validate({**progress.as_dict(), "text": progress.sentence()}),
        )
        return Response(200, content_type=JSON, body=view)

    @router.delete(
        "/connections/<connectionId>",
        operation_id="deleteConnection",
        summary="Remove a connection",
        description=(
            "Removes the settings and the credentials' secret. The order export records stay: they are the "
            "history of what was exported and keep a re-created connection of the same id from exporting an "
            "order twice."
        ),
        responses=responses({200: (DeletedConnection, "Removed")}, 404),
    )
    def delete_connection(connection_id: ConnectionIdPath) -> Response[DeletedConnection]:
        stored = ctx.connection(connection_id)
        ctx.runtime.store.delete_connection(connection_id)
        ctx.runtime.secrets.delete(stored.secret_id)
        ctx.runtime.forget_clients(connection_id)
        answer = DeletedConnection(
            deleted=connection_id, detail="settings and credentials removed; order export records kept"
        )
        return Response(200, content_type=JSON, body=answer)


    return router
