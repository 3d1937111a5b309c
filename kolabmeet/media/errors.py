"""Typed errors of the media layer (control side and worker)."""


class MediaError(Exception):
    """Base class of media errors; its message is safe to show a client."""


class UnsupportedError(MediaError):
    """What was asked cannot be done with these capabilities or parameters."""


class InvalidStateError(MediaError):
    """The object is closed, or not in a state that allows the request."""


class WorkerDiedError(MediaError):
    """The media worker that owned the object is gone."""


class ChannelTimeoutError(MediaError):
    """A worker did not answer a request in time."""
