"""Cross-origin access to the HTTP API (CORS), opt-in with ``--http-cors-origins``.

Browsers let a page on another origin read a response only when the response names that origin (or ``*``) in
``Access-Control-Allow-Origin``; requests with an ``Authorization`` or JSON ``Content-Type`` header are first asked
with a preflight ``OPTIONS``. The policy here answers both for the API routes only, never for the playground page or
its files, whose Content-Security-Policy is left as it is.

Reading is one half; the other is what a page can make the server *do*. A browser sends some cross-origin requests
without a preflight (form posts, ``text/plain`` bodies) and only withholds the reply, so a page on any site could
submit work. :meth:`CorsPolicy.cross_site_refusal` refuses state-changing requests that a browser sent on behalf of
another site, as Go's ``CrossOriginProtection`` does: by ``Sec-Fetch-Site`` where the browser sends it, else by
comparing ``Origin`` with ``Host``; origins allowed here pass, and clients that are not browsers (no such headers)
are not affected. (The gateway also requires ``Content-Type: application/json`` on JSON bodies, which no page can
send cross-origin without a preflight.)

Decisions: an origin not on the list gets no CORS header at all, so the browser blocks the page from reading the
reply, and its preflight a 403 (PERMISSION_DENIED, in the gateway's error format) so the refusal is visible in the
server's reply and in the browser's network panel rather than only as a console message. Exact origins are answered
with ``Access-Control-Allow-Credentials: true`` (pages may send TLS client certificates); ``*`` never is, as the
Fetch standard forbids credentials with a wildcard. Bearer tokens in ``Authorization`` are a plain request header,
not a credential in the CORS sense, so they work with either.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable

__all__ = ["ALLOWED_HEADERS", "EXPOSED_HEADERS", "MAX_AGE_SECONDS", "SAFE_METHODS", "CorsPolicy"]

ANY_ORIGIN = "*"
#: Request headers a page may send: the ones the gateway reads (Accept and the like are always allowed).
ALLOWED_HEADERS = ("authorization", "content-type", "grpc-timeout", "x-request-id")
#: Response headers a page may read besides the CORS-safelisted ones.
EXPOSED_HEADERS = ("x-request-id",)
#: How long a browser may reuse a preflight's answer (Chromium caps it at 7200 s).
MAX_AGE_SECONDS = 600
#: Methods that change nothing, which any site may send (RFC 9110 safe methods).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values of requests a page on this origin made, or the user did (a typed URL, a bookmark).
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})


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

    def cross_site_refusal(self, method: str, origin: str, fetch_site: str | None, host: str) -> str | None:
        """Why a state-changing request sent by a browser for another site is refused; None when it may proceed.

        ``origin`` and ``fetch_site`` are the ``Origin`` and ``Sec-Fetch-Site`` headers ("" and None when absent),
        ``host`` the ``Host`` the request was sent to.
        """
        if method in SAFE_METHODS:
            return None
        return self._foreign(f"a {method}", origin, fetch_site, host)

    def websocket_refusal(self, origin: str, fetch_site: str | None, host: str) -> str | None:
        """Why a WebSocket handshake a browser sent for another site's page is refused; None when it may proceed.
        Browsers apply no CORS to WebSockets (any page may open one to any server, and read what it answers), so
        the handshake, a GET, is held to the rule of state-changing requests."""
        return self._foreign("a WebSocket", origin, fetch_site, host)

    def _foreign(self, what: str, origin: str, fetch_site: str | None, host: str) -> str | None:
        if origin and self.allow_origin(origin) is not None:
            return None
        if fetch_site is not None:
            if fetch_site in _OWN_FETCH_SITES:
                return None
        elif not origin or _authority(origin) == host.lower():  # no Sec-Fetch-Site: an older browser, or no browser
            return None
        return (f"{what} from another site ({origin or 'unknown origin'!r}) is refused: only this server's own "
                "pages and origins listed in --http-cors-origins may change state")

    def _common(self, allowed: str) -> dict[str, str]:
        headers = {"Access-Control-Allow-Origin": allowed}
        if allowed != ANY_ORIGIN:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers


def _authority(origin: str) -> str:
    """``host[:port]`` of an ``Origin`` value, lower-case; "" for ``null`` and other opaque origins."""
    try:
        return urllib.parse.urlsplit(origin).netloc.lower()
    except ValueError:
        return ""
