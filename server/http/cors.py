"""Cross-origin access to the HTTP API (CORS), opt-in with ``--http-cors-origins``.

Browsers let a page on another origin read a response only when the response names that origin (or ``*``) in
``Access-Control-Allow-Origin``; requests with an ``Authorization`` or JSON ``Content-Type`` header are first asked
with a preflight ``OPTIONS``. The policy here answers both for the API routes only, never for the playground page or
its files, whose Content-Security-Policy is left as it is.

Decisions: an origin not on the list gets no CORS header at all, so the browser blocks the page from reading the
reply, and its preflight a 403 (PERMISSION_DENIED, in the gateway's error format) so the refusal is visible in the
server's reply and in the browser's network panel rather than only as a console message. Exact origins are answered
with ``Access-Control-Allow-Credentials: true`` (pages may send TLS client certificates); ``*`` never is, as the
Fetch standard forbids credentials with a wildcard. Bearer tokens in ``Authorization`` are a plain request header,
not a credential in the CORS sense, so they work with either.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ALLOWED_HEADERS", "EXPOSED_HEADERS", "MAX_AGE_SECONDS", "CorsPolicy"]

ANY_ORIGIN = "*"
#: Request headers a page may send: the ones the gateway reads (Accept and the like are always allowed).
ALLOWED_HEADERS = ("authorization", "content-type", "grpc-timeout", "x-request-id")
#: Response headers a page may read besides the CORS-safelisted ones.
EXPOSED_HEADERS = ("x-request-id",)
#: How long a browser may reuse a preflight's answer (Chromium caps it at 7200 s).
MAX_AGE_SECONDS = 600


class CorsPolicy:
    """Which origins may call the API, and the headers that tell browsers so."""

    def __init__(self, origins: Iterable[str]) -> None:
        self._origins = frozenset(origins)
        self._any = ANY_ORIGIN in self._origins

    @property
    def enabled(self) -> bool:
        return bool(self._origins)

    def allow_origin(self, origin: str) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for a request from ``origin``, or None when it is not allowed."""
        if not origin:
            return None
        if self._any:
            return ANY_ORIGIN
        return origin if origin in self._origins else None

    def response_headers(self, origin: str) -> dict[str, str]:
        """Headers of an actual (non-preflight) response; ``Vary`` always, as the answer depends on ``Origin``."""
        headers = {"Vary": "Origin"}
        allowed = self.allow_origin(origin)
        if allowed is not None:
            headers.update(self._common(allowed))
            headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
        return headers

    def preflight_headers(self, origin: str, methods: Iterable[str]) -> dict[str, str] | None:
        """Headers of a 204 answer to a preflight for a path served with ``methods``; None when not allowed."""
        allowed = self.allow_origin(origin)
        if allowed is None:
            return None
        return {**self._common(allowed), "Vary": "Origin",
                "Access-Control-Allow-Methods": ", ".join(sorted(methods)),
                "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
                "Access-Control-Max-Age": str(MAX_AGE_SECONDS)}

    def _common(self, allowed: str) -> dict[str, str]:
        headers = {"Access-Control-Allow-Origin": allowed}
        if allowed != ANY_ORIGIN:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers
