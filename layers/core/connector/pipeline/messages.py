"""The export queue's message: one order of one connection."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from connector.settings.model import CONNECTION_ID_PATTERN


class ExportMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connectionId: str = Field(pattern=CONNECTION_ID_PATTERN)  # noqa: N815 - the wire format
    orderId: int = Field(gt=0)  # noqa: N815
    reason: Literal["poll", "manual", "retry"] = "poll"
