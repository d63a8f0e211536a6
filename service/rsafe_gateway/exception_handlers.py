"""Every non-2xx answer leaves in the contract's shape: {"error": {type, message, param}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from .errors import GatewayError
from .responses import error_response
from .validation import invalid_request_from

logger = logging.getLogger("rsafe_gateway.errors")


class _HTTPError(GatewayError):
    """Starlette's own refusals (an unknown route's 404, a wrong method's 405), as the gateway's."""

    def __init__(self, exc: HTTPException) -> None:
        super().__init__(str(exc.detail))
        self.status_code = exc.status_code
        self.error_type = "invalid_request" if exc.status_code < 500 else "internal"
        self._headers = dict(exc.headers or {})

    @property
    def headers(self) -> dict[str, str]:
        return self._headers


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(invalid_request_from(list(exc.errors())))


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(_HTTPError(exc))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.exception("unexpected error", exc_info=exc)
    return error_response(GatewayError("internal error; the gateway logged the details"))


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
