"""The engine's ``/api/v1/ws`` messages: ``scan_request`` and ``context_request``.

``add_engine_messages(dispatcher, engine)`` adds them to an app's ``MessageDispatcher``
(``ws_api.install``); ``api.configure_for`` does so where it makes the app's engine.
The answers are those of the FastAPI reference (``migration/fastapi_app.py``,
``_WSSession``), payloads alike:

* ``scan_request`` (data: ``ScanRequest``; null means ``{}``) -> one ``scan_progress``
  (``ScanProgress``) per file as it is done, then ``scan_complete`` (``ScanResponse``).
  It runs in the background, so the connection keeps answering meanwhile; the engine
  runs one scan at a time, so a second request waits for the first.
* ``context_request`` (data: ``ContextRequest``) -> ``context_result``
  (``ContextResponse``), in order with the messages around it (as the reference: a
  client without request ids can pair answers with questions). The context is built
  in the executor, as the HTTP endpoint does (the ContextManager serialises its
  callers), so the event loop keeps serving.
* ``data`` that fails validation -> ``error`` whose detail is the 422 list of the HTTP
  endpoint with ``loc`` starting ``"data"`` instead of ``"body"``; an engine refusal
  -> ``error`` with the detail the HTTP endpoint answers (``api.errors``: e.g. a
  context before any scan is ``"No struct.json yet: run a scan first"``); an
  unexpected engine failure is logged and answered ``"Internal Server Error"``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel, ValidationError

from llmstruct.api import models
from llmstruct.api.errors import INTERNAL_ERROR, status_and_detail
from llmstruct.server.ws_api import MessageDispatcher, MessageError
from llmstruct.server.ws_socket import WebSocket

if TYPE_CHECKING:
    from llmstruct.engine.core import CoreEngine

__all__ = ["add_engine_messages"]

log = logging.getLogger("llmstruct.server.ws_engine")

M = TypeVar("M", bound=BaseModel)


def add_engine_messages(dispatcher: MessageDispatcher, engine: CoreEngine) -> None:
    """Answer ``scan_request`` and ``context_request`` on ``dispatcher`` with ``engine``."""

    async def scan_request(ws: WebSocket, data: Any) -> None:
        request = _validated(models.ScanRequest, {} if data is None else data)
        # An async generator (closed below even when cancelled), typed as an iterator.
        events = cast(AsyncGenerator[Any, None], engine.scan_stream(request))
        try:
            while True:
                try:
                    item = await anext(events)
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise _refusal(exc, engine) from None
                kind = "scan_complete" if isinstance(item, models.ScanResponse) else "scan_progress"
                await ws.send_json({"type": kind, "data": item.model_dump(mode="json")})
        finally:
            await events.aclose()

    async def context_request(ws: WebSocket, data: Any) -> None:
        request = _validated(models.ContextRequest, data)

        try:
            response = await asyncio.get_running_loop().run_in_executor(
                None, engine.context, request.mode, request.query, request.budget,
                request.include_files, request.format,
            )  # fmt: skip
        except Exception as exc:
            raise _refusal(exc, engine) from None
        await ws.send_json({"type": "context_result", "data": response.model_dump(mode="json")})

    dispatcher.on("scan_request", background=True)(scan_request)
    dispatcher.on("context_request")(context_request)


def _validated(model: type[M], data: Any) -> M:
    """``data`` as ``model``, or the 422 detail list (``loc`` from ``"data"``) as an error."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MessageError(models.validation_detail(exc, "data")) from None


def _refusal(exc: Exception, engine: CoreEngine) -> MessageError:
    """The ``error`` answer for an engine failure: the HTTP endpoint's detail."""
    known = status_and_detail(exc, engine.struct_path)
    if known is None:
        log.error("engine call failed", exc_info=exc)
        return MessageError(INTERNAL_ERROR)
    return MessageError(known[1])
