"""SRTP/SRTCP in place on preallocated buffers (libsrtp 2 through pylibsrtp's cffi binding).

pylibsrtp's ``Session.protect``/``unprotect`` copy every packet into and out of
``bytes``; on the media hot path we call the same C functions directly on a
:class:`PacketBuffer` that was allocated once, so a packet costs no Python object
beyond the returned ``int``.  The hot-path methods never raise: they return -1.

Facts relied on (libsrtp 2.7.0 bundled in the pylibsrtp 1.0.0 wheel, OpenSSL):

* ``srtp_init()`` runs once when ``pylibsrtp`` is imported.
* ``srtp_protect*`` work in place and write at most tag (+ 4-byte SRTCP index)
  bytes after the packet when no MKI is used: :data:`MAX_TRAILER`.  No alignment
  or extra room is needed beyond that (a ``bytearray`` is malloc-aligned anyway).
* An ``ssrc_any_*`` policy is a template cloned per SSRC; an inbound session only
  clones after a packet authenticated, so forged SSRCs allocate nothing.
"""

from __future__ import annotations

from pylibsrtp._binding import ffi, lib

from kolabmeet.media.errors import MediaError

__all__ = ["MAX_TRAILER", "PROFILES", "PacketBuffer", "SrtpError", "SrtpSession"]

PROFILES = (
    "AEAD_AES_256_GCM",
    "AEAD_AES_128_GCM",
    "AES_CM_128_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32",
)
"""Crypto suites by their mediasoup names, preferred first."""

MAX_TRAILER = 16 + 4
"""Bytes a protect may append: the auth/GCM tag (at most 16) plus the SRTCP index (4)."""

REPLAY_WINDOW = 1024
"""Inbound SRTP replay window, in packets (libsrtp accepts 64..32767)."""

_LIBSRTP_PROFILES = {
    "AEAD_AES_256_GCM": lib.srtp_profile_aead_aes_256_gcm,
    "AEAD_AES_128_GCM": lib.srtp_profile_aead_aes_128_gcm,
    "AES_CM_128_HMAC_SHA1_80": lib.srtp_profile_aes128_cm_sha1_80,
    "AES_CM_128_HMAC_SHA1_32": lib.srtp_profile_aes128_cm_sha1_32,
}

_RTP_TRAILERS = {
    "AEAD_AES_256_GCM": 16,
    "AEAD_AES_128_GCM": 16,
    "AES_CM_128_HMAC_SHA1_80": 10,
    "AES_CM_128_HMAC_SHA1_32": 4,
}

# Module globals: one dict lookup each on the hot path.
_protect = lib.srtp_protect
_unprotect = lib.srtp_unprotect
_protect_rtcp = lib.srtp_protect_rtcp
_unprotect_rtcp = lib.srtp_unprotect_rtcp
_OK = lib.srtp_err_status_ok

_ERRORS = {
    1: "unspecified failure",
    2: "unsupported parameter",
    3: "could not allocate memory",
    5: "could not initialize",
    7: "authentication failure",
    9: "replay check failed (bad index)",
    10: "replay check failed (index too old)",
}


class SrtpError(MediaError):
    """Bad SRTP parameters, or libsrtp refused to create a session."""


class PacketBuffer:
    """A preallocated bytearray + its cffi pointer, made once, reused for every packet.

    While ``view`` and ``ptr`` exist the bytearray cannot be resized, so the pointer
    stays valid.  ``limit`` is the largest packet a protect accepts (room is left for
    :data:`MAX_TRAILER`); an unprotect accepts up to ``size`` (it only shrinks).
    """

    __slots__ = ("data", "view", "ptr", "size", "limit")

    def __init__(self, size: int = 65536) -> None:
        if size <= MAX_TRAILER:
            raise SrtpError(f"buffer of {size} bytes is too small")
        self.data = bytearray(size)
        self.view = memoryview(self.data)
        self.ptr = ffi.from_buffer(self.data)
        self.size = size
        self.limit = size - MAX_TRAILER

    def __len__(self) -> int:
        return len(self.data)


class SrtpSession:
    """One direction of SRTP for a transport: outbound protects, inbound unprotects.

    Any SSRC is accepted (libsrtp clones a stream per SSRC).  Outbound allows
    repeated sequence numbers (the SFU retransmits); inbound keeps a replay window
    of :data:`REPLAY_WINDOW` packets.
    """

    __slots__ = ("profile", "outbound", "trailer", "ctx_address", "_ctx", "_len", "_key", "_rtcp_buf", "__weakref__")

    def __init__(self, profile: str, key: bytes, salt: bytes, outbound: bool) -> None:
        self._ctx = None  # so close()/__del__ work if __init__ fails below
        self.ctx_address = 0
        """The libsrtp session's address for the compiled send path (send.py); 0 once closed."""
        srtp_profile = _LIBSRTP_PROFILES.get(profile)
        if srtp_profile is None:
            raise SrtpError(f"unsupported SRTP profile {profile!r}")
        try:
            key = bytes(key)
            salt = bytes(salt)
        except TypeError:
            raise SrtpError("SRTP key and salt must be bytes") from None
        key_len = lib.srtp_profile_get_master_key_length(srtp_profile)
        salt_len = lib.srtp_profile_get_master_salt_length(srtp_profile)
        if len(key) != key_len or len(salt) != salt_len:
            raise SrtpError(
                f"{profile} needs a {key_len}-byte key and a {salt_len}-byte salt,"
                f" got {len(key)} and {len(salt)}"
            )

        policy = ffi.new("srtp_policy_t *")  # zero-filled: no MKI, next = NULL
        _check(lib.srtp_crypto_policy_set_from_profile_for_rtp(ffi.addressof(policy.rtp), srtp_profile))
        _check(lib.srtp_crypto_policy_set_from_profile_for_rtcp(ffi.addressof(policy.rtcp), srtp_profile))
        policy.ssrc.type = lib.ssrc_any_outbound if outbound else lib.ssrc_any_inbound
        policy.ssrc.value = 0
        # libsrtp derives session keys at creation; the master key is kept alive
        # (and wiped on close) anyway, in case a stream clone looks at it.
        self._key = ffi.new("unsigned char[]", key + salt)
        policy.key = self._key
        policy.window_size = REPLAY_WINDOW
        policy.allow_repeat_tx = 1

        ctx_p = ffi.new("srtp_t *")
        _check(lib.srtp_create(ctx_p, policy))
        self._ctx = ctx_p[0]
        self.ctx_address = int(ffi.cast("uintptr_t", self._ctx))
        self._len = ffi.new("int *")
        self._rtcp_buf: PacketBuffer | None = None
        self.profile = profile
        self.outbound = outbound
        self.trailer = _RTP_TRAILERS[profile]
        """Bytes a protect adds to an RTP packet."""

    # -- hot path: in place, ints only, never raises ------------------------------

    def protect_rtp(self, buf: PacketBuffer, length: int) -> int:
        """Protect the RTP packet ``buf[:length]`` in place; new length, or -1."""
        ctx = self._ctx
        if ctx is None or not 0 <= length <= buf.limit:
            return -1
        lp = self._len
        lp[0] = length
        if _protect(ctx, buf.ptr, lp) != _OK:
            return -1
        return lp[0]

    def unprotect_rtp(self, buf: PacketBuffer, length: int) -> int:
        """Verify and decrypt ``buf[:length]`` in place; new length, or -1 (auth, replay, malformed)."""
        ctx = self._ctx
        if ctx is None or not 0 <= length <= buf.size:
            return -1
        lp = self._len
        lp[0] = length
        if _unprotect(ctx, buf.ptr, lp) != _OK:
            return -1
        return lp[0]

    def protect_rtcp(self, buf: PacketBuffer, length: int) -> int:
        """Protect the (compound) RTCP packet ``buf[:length]`` in place; new length, or -1."""
        ctx = self._ctx
        if ctx is None or not 0 <= length <= buf.limit:
            return -1
        lp = self._len
        lp[0] = length
        if _protect_rtcp(ctx, buf.ptr, lp) != _OK:
            return -1
        return lp[0]

    def unprotect_rtcp(self, buf: PacketBuffer, length: int) -> int:
        """Verify and decrypt the SRTCP packet ``buf[:length]`` in place; new length, or -1."""
        ctx = self._ctx
        if ctx is None or not 0 <= length <= buf.size:
            return -1
        lp = self._len
        lp[0] = length
        if _unprotect_rtcp(ctx, buf.ptr, lp) != _OK:
            return -1
        return lp[0]

    # -- control path -------------------------------------------------------------

    def protect_rtcp_bytes(self, data: bytes) -> bytes | None:
        """Protect RTCP we generate: copy into an internal buffer; SRTCP bytes or None."""
        buf = self._rtcp_buf
        if buf is None:
            buf = self._rtcp_buf = PacketBuffer()
        n = len(data)
        if n > buf.limit:
            return None
        buf.data[:n] = data
        out = self.protect_rtcp(buf, n)
        return None if out < 0 else bytes(buf.view[:out])

    def close(self) -> None:
        """Free the libsrtp session and wipe the master key; idempotent."""
        ctx = self._ctx
        if ctx is None:
            return
        self._ctx = None
        self.ctx_address = 0
        lib.srtp_dealloc(ctx)
        ffi.memmove(self._key, bytes(len(self._key)), len(self._key))

    @property
    def closed(self) -> bool:
        return self._ctx is None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: lib may be gone
            pass

    def __repr__(self) -> str:
        direction = "outbound" if getattr(self, "outbound", False) else "inbound"
        state = " closed" if self._ctx is None else ""
        return f"<SrtpSession {getattr(self, 'profile', '?')} {direction}{state}>"


def _check(rc: int) -> None:
    if rc != _OK:
        raise SrtpError(f"libsrtp: {_ERRORS.get(rc, f'error {rc}')}")
