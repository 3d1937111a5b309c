"""Errors of signaling requests; their message reaches the client in the error ack."""


class RequestError(Exception):
    """A request that cannot be served; the message says why."""


class ForbiddenError(RequestError):
    """The peer lacks the role the request needs."""


class NotFoundError(RequestError):
    """A peer, transport, producer or consumer named in the request does not exist."""
