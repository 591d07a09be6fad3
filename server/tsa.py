"""RFC 3161 timestamps for the daily seals: a time authority outside the firm dates each seal.

With `server.tsa_url` set, each new seal's SHA-256 is sent to that timestamp authority (HTTP POST,
application/timestamp-query, a nonce, the TSA's certificate asked for) and the token it answers is
stored with the seal (seals.tsa_token) and put in packs beside the seal (`.tsr`). The request is
made after the seal's transaction, never holding the database; a TSA that does not answer leaves
the token empty and the next round asks again. Here the answer is checked for what can be checked
without the TSA's certificate chain: status granted, and our digest and nonce inside the token.
The token's signature is checked with the TSA's CA certificate by `openssl ts -verify`
(docs/evidence.md).
"""

from __future__ import annotations

import secrets
import urllib.request
from dataclasses import dataclass

SHA256_OID = bytes.fromhex("0609608648016503040201")
QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
TIMEOUT_S = 10.0
MAX_REPLY_BYTES = 256 * 1024


class TsaError(Exception):
    """The authority refused, did not answer, or answered something else."""


@dataclass(frozen=True)
class Stamp:
    token: bytes  # the TimeStampToken (CMS ContentInfo), DER
    nonce: int


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _integer(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")  # a leading zero keeps it positive
    return _tlv(0x02, raw)


def request_der(digest: bytes, nonce: int) -> bytes:
    """TimeStampReq: version 1, the SHA-256 message imprint, a nonce, certReq TRUE."""
    algorithm = _tlv(0x30, SHA256_OID + b"\x05\x00")
    imprint = _tlv(0x30, algorithm + _tlv(0x04, digest))
    return _tlv(0x30, _integer(1) + imprint + _integer(nonce) + b"\x01\x01\xff")


def _read(data: bytes) -> tuple[int, bytes, bytes, bytes]:
    """(tag, content, the whole element, the rest) of the first DER element of data."""
    if len(data) < 2:
        raise TsaError("truncated answer")
    tag, first = data[0], data[1]
    if first < 0x80:
        start, length = 2, first
    else:
        count = first & 0x7F
        if not 0 < count <= 4 or len(data) < 2 + count:
            raise TsaError("bad length in the answer")
        start, length = 2 + count, int.from_bytes(data[2 : 2 + count], "big")
    end = start + length
    if end > len(data):
        raise TsaError("truncated answer")
    return tag, data[start:end], data[:end], data[end:]


def parse_reply(reply: bytes, digest: bytes, nonce: int) -> bytes:
    """The token of a granted TimeStampResp that carries our digest and nonce."""
    tag, body, _, _ = _read(reply)
    if tag != 0x30:
        raise TsaError("not a TimeStampResp")
    tag, status_info, _, rest = _read(body)
    tag_status, status, _, _ = _read(status_info)
    if tag != 0x30 or tag_status != 0x02:
        raise TsaError("not a TimeStampResp")
    code = int.from_bytes(status, "big", signed=True)
    if code not in (0, 1):  # granted, grantedWithMods
        raise TsaError(f"the timestamp authority refused (status {code})")
    if not rest:
        raise TsaError("granted but no token")
    _, _, token, _ = _read(rest)
    if digest not in token or _integer(nonce) not in token:
        raise TsaError("the token is not for this seal (digest or nonce missing)")
    return token


def stamp(url: str, digest: bytes, timeout_s: float = TIMEOUT_S) -> Stamp:
    nonce = secrets.randbits(63)
    request = urllib.request.Request(url, data=request_der(digest, nonce), headers={"Content-Type": QUERY_TYPE}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:  # noqa: S310 (an admin's configured URL)
            reply = answer.read(MAX_REPLY_BYTES + 1)
    except OSError as exc:
        raise TsaError(f"the timestamp authority did not answer: {exc}") from None
    if len(reply) > MAX_REPLY_BYTES:
        raise TsaError("the answer is too large")
    return Stamp(parse_reply(reply, digest, nonce), nonce)


def url_setting(node, key_path: str, ctx):
    """`server.tsa_url`: an http(s) URL (rules.schema style reader)."""
    from rules.schema import MISSING, text

    url = text(node, key_path, ctx)
    if url is MISSING or url.startswith(("http://", "https://")):
        return url
    return ctx.error(node, key_path, "expected an http:// or https:// URL of an RFC 3161 timestamp authority", "e.g. https://freetsa.org/tsr")
