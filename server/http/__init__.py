"""The HTTP face of the service: the ``google.api.http`` gateway and the browser playground (``static/``)."""

from server.http.gateway import HTTP_STATUS, Gateway

__all__ = ["HTTP_STATUS", "Gateway"]
