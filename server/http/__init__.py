"""The HTTP face of the service: the ``google.api.http`` gateway and the browser playground (``static/``), on a
listener that bounds connections and their timeouts."""

from server.http.gateway import Gateway
from server.http.replies import HTTP_STATUS

__all__ = ["HTTP_STATUS", "Gateway"]
