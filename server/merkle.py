"""A Merkle tree over a day's event digests (RFC 6962, section 2.1), for the daily seals.

Leaves are the events' chain digests (32 bytes, rules.events.chain_digest) in seq order. A leaf
hashes as SHA-256(0x00 || leaf), an inner node as SHA-256(0x01 || left || right), so a node can
never pass for a leaf; a tree of n leaves splits at the largest power of two below n. An
inclusion proof is the list of sibling hashes from the leaf up: with it, one event and the
seal's root show the event is one of the day's sealed events without the others.
"""

from __future__ import annotations

import hashlib


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two below n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = [leaf_hash(x) for x in leaves]
    return _root(level)


def _root(hashes: list[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return node_hash(_root(hashes[:k]), _root(hashes[k:]))


def proof(leaves: list[bytes], index: int) -> list[bytes]:
    """The audit path of leaves[index], leaf level first."""
    if not 0 <= index < len(leaves):
        raise IndexError(index)
    return _path(index, [leaf_hash(x) for x in leaves])


def _path(index: int, hashes: list[bytes]) -> list[bytes]:
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if index < k:
        return _path(index, hashes[:k]) + [_root(hashes[k:])]
    return _path(index - k, hashes[k:]) + [_root(hashes[:k])]


def root_from_proof(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """The root that leaf at index of a tree of size leaves and its path lead to (RFC 9162
    2.1.3.2); None when the path has the wrong length for that index and size."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf_hash(leaf)
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None
