"""Normalising qm create/set option values before they are stored: nets get a MAC, memory prints plain,
`qm set --tags` is lowercased/de-duplicated/sorted, cipassword is hashed, `--sshkeys <file>` is read and
URL-encoded (as the qm CLI does before calling the API).
"""

from __future__ import annotations

import os

from pvesim.errors import PveError
from pvesim.propstr import parse_net, print_net, split_propstr
from pvesim.schema import split_list

_SALT_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def read_sshkeys(path: str) -> str:
    from urllib.parse import quote  # lazily: costs a few ms of every qm start-up

    try:
        with open(path, encoding="utf-8") as fh:
            content = fh.read()
    except OSError as exc:
        raise PveError(f"unable to open file '{path}' - {exc.strerror}") from None
    return quote(content, safe="-._~")


def hash_password(password: str) -> str:
    """A `$5$salt$hash` string (the file stores a crypt hash; qm config only ever shows `**********`)."""
    import base64
    import hashlib

    salt = "".join(_SALT_CHARS[b % len(_SALT_CHARS)] for b in os.urandom(8))
    digest = hashlib.sha256((salt + password).encode()).digest()
    return f"$5${salt}${base64.b64encode(digest).decode().rstrip('=').replace('+', '.')}"


def normalize_tags(value: str) -> str:
    seen: list[str] = []
    for tag in split_list(value):
        tag = tag.lower()
        if tag not in seen:
            seen.append(tag)
    return ";".join(sorted(seen))


def new_uuid() -> str:
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def normalize_value(key: str, value: str, modern: bool, for_set: bool) -> str:
    if key.startswith("net") and key[3:].isdigit():
        return print_net(parse_net(value, modern))
    if key == "memory" and modern:
        return split_propstr(value, "current").get("current", value)
    if key == "tags" and for_set:
        return normalize_tags(value)
    if key == "cipassword":
        return hash_password(value)
    return value
