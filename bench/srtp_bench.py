"""Micro-benchmark: µs per SRTP protect + unprotect of a 1116-byte RTP packet.

Ours (kolabmeet.media.worker.srtp, in place on a PacketBuffer) against pylibsrtp's
``Session.protect``/``unprotect`` bytes API, for each profile; median of 5 runs.

    /work/venv/bin/python bench/srtp_bench.py [packets per run]
"""

from __future__ import annotations

import os
import statistics
import struct
import sys
import time

import pylibsrtp

from kolabmeet.media.worker.srtp import PROFILES, PacketBuffer, SrtpSession

SIZE = 1116
RUNS = 5
ORACLE = {
    "AEAD_AES_256_GCM": (pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 32, 12),
    "AEAD_AES_128_GCM": (pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM, 16, 12),
    "AES_CM_128_HMAC_SHA1_80": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 16, 14),
    "AES_CM_128_HMAC_SHA1_32": (pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 16, 14),
}


def packet(seq: int) -> bytes:
    header = struct.pack("!BBHII", 0x80, 96, seq & 0xFFFF, seq * 3000 & 0xFFFFFFFF, 0x11223344)
    return header + os.urandom(SIZE - len(header))


def run_ours(profile: str, key: bytes, salt: bytes, count: int) -> float:
    out = SrtpSession(profile, key, salt, outbound=True)
    inb = SrtpSession(profile, key, salt, outbound=False)
    buf = PacketBuffer()
    data = buf.data
    data[:SIZE] = packet(0)
    protect, unprotect = out.protect_rtp, inb.unprotect_rtp
    start = time.perf_counter()
    for seq in range(1, count + 1):
        data[2] = seq >> 8 & 0xFF  # after unprotect the buffer holds the plain packet again
        data[3] = seq & 0xFF
        if unprotect(buf, protect(buf, SIZE)) != SIZE:
            raise AssertionError("round trip failed")
    elapsed = time.perf_counter() - start
    out.close()
    inb.close()
    return elapsed / count * 1e6


def run_pylibsrtp(profile: str, key: bytes, salt: bytes, count: int) -> float:
    srtp_profile = ORACLE[profile][0]
    out = pylibsrtp.Session(
        pylibsrtp.Policy(key=key + salt, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=srtp_profile)
    )
    inb = pylibsrtp.Session(
        pylibsrtp.Policy(key=key + salt, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=srtp_profile)
    )
    base = packet(0)
    packets = [base[:2] + struct.pack("!H", seq & 0xFFFF) + base[4:] for seq in range(1, count + 1)]
    protect, unprotect = out.protect, inb.unprotect
    start = time.perf_counter()
    for p in packets:
        unprotect(protect(p))
    return (time.perf_counter() - start) / count * 1e6


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    print(f"{SIZE}-byte RTP, protect + unprotect, µs per packet (median of {RUNS} runs of {count})")
    print(f"{'profile':26} {'ours in place':>14} {'pylibsrtp bytes':>16} {'saved':>7}")
    for profile in PROFILES:
        _, key_len, salt_len = ORACLE[profile]
        key, salt = os.urandom(key_len), os.urandom(salt_len)
        ours, theirs = [], []
        for _ in range(RUNS):
            ours.append(run_ours(profile, key, salt, count))
            theirs.append(run_pylibsrtp(profile, key, salt, count))
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"{profile:26} {a:14.2f} {b:16.2f} {b - a:7.2f}")


if __name__ == "__main__":
    main()
