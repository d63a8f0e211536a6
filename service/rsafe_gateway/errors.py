"""The gateway's exceptions, each carrying the HTTP status and the contract's `error.type`.

    GatewayError
    ├── InvalidRequest          400 invalid_request   (names the offending field in `param`)
    │   ├── NotFound            404 invalid_request   (an unknown resource in the URL path)
    │   ├── BodyTimeout         408 invalid_request   (the body did not arrive in time)
    │   ├── UnsupportedMediaType 415 invalid_request  (a JSON route got another content type)
    │   └── MisdirectedRequest  421 invalid_request   (a Host header not in RSAFE_ALLOWED_HOSTS)
    ├── PayloadTooLarge         413 payload_too_large
    ├── Unauthorized            401 unauthorized
    ├── Forbidden               403 forbidden         (the key lacks the scope or the policy)
    ├── RateLimited             429 rate_limited      (carries Retry-After when waiting helps)
    ├── ClientClosedRequest     499 (never sent: the caller is gone; logged and counted as 4xx)
    ├── Overloaded              503 backend_unavailable (the gateway's own queue is full)
    ├── NotReady                503 backend_unavailable (/readyz: draining, or a dependency down)
    ├── DecisionLogUnavailable  503 backend_unavailable (required decision log cannot write)
    └── BackendError            502 backend_error     (model server answered 5xx or nonsense)
        ├── BackendUnavailable  503 backend_unavailable (refused / unreachable / breaker open)
        └── BackendTimeout      504 backend_timeout

Domain modules raise these and know nothing of HTTP responses; `responses.error_body` writes
every error answer from one of them. The core's `InvalidInput` becomes `InvalidRequest` where
the service calls the core.
"""

from __future__ import annotations

from typing import Self

from rsafe_core.errors import InvalidInput


class GatewayError(Exception):
    status_code = 500
    error_type = "internal"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    @property
    def headers(self) -> dict[str, str]:
        return {}

    def own_copy(self) -> Self:
        """The same error as a new object (no traceback, no chain): one per request that answers
        with it, so nothing one request does to its error reaches another's answer."""
        clone = type(self).__new__(type(self), *self.args)
        clone.__dict__.update(self.__dict__)
        return clone


class InvalidRequest(GatewayError):
    status_code = 400
    error_type = "invalid_request"

    @classmethod
    def from_input(cls, exc: InvalidInput) -> InvalidRequest:
        """The core's bad-input error, as the HTTP edge answers it."""
        return cls(exc.message, param=exc.param)


class NotFound(InvalidRequest):
    status_code = 404


class BodyTimeout(InvalidRequest):
    status_code = 408

    @property
    def headers(self) -> dict[str, str]:
        # The rest of the body may still come: the connection cannot carry another request.
        return {"Connection": "close"}


class UnsupportedMediaType(InvalidRequest):
    status_code = 415


class MisdirectedRequest(InvalidRequest):
    status_code = 421


class PayloadTooLarge(GatewayError):
    status_code = 413
    error_type = "payload_too_large"


class Unauthorized(GatewayError):
    status_code = 401
    error_type = "unauthorized"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(GatewayError):
    status_code = 403
    error_type = "forbidden"


class RateLimited(GatewayError):
    status_code = 429
    error_type = "rate_limited"

    def __init__(self, message: str, *, retry_after_seconds: int | None) -> None:
        super().__init__(message)
        # None: waiting would not help (the request costs more than the bucket ever holds).
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str]:
        if self.retry_after_seconds is None:
            return {}
        return {"Retry-After": str(self.retry_after_seconds)}


class ClientClosedRequest(GatewayError):
    """The caller went away before its answer was ready (nginx's 499); never reaches a client."""

    status_code = 499
    error_type = "invalid_request"


class Overloaded(GatewayError):
    status_code = 503
    error_type = "backend_unavailable"


class NotReady(GatewayError):
    """The readiness probe's 503: the replica should get no traffic now."""

    status_code = 503
    error_type = "backend_unavailable"


class DecisionLogUnavailable(GatewayError):
    """RSAFE_DECISION_LOG_MODE=required and the decision could not be written: not answered."""

    status_code = 503
    error_type = "backend_unavailable"


class BackendError(GatewayError):
    """The model server answered, but not with a usable completion."""

    status_code = 502
    error_type = "backend_error"
    kind = "5xx"


class BackendUnavailable(BackendError):
    status_code = 503
    error_type = "backend_unavailable"
    kind = "unavailable"


class BackendTimeout(BackendError):
    status_code = 504
    error_type = "backend_timeout"
    kind = "timeout"
