"""Webhook signature verification: HMAC-SHA256 of the raw body, or GitLab's plain shared token.

Every comparison is constant-time (`hmac.compare_digest` on bytes). A request carrying none of its server's signature
headers is unsigned and never verifies. The SHA-1 `X-Hub-Signature: sha1=...` of GitHub is ignored on purpose.
`signature_headers` produces what each server sends, for tests and the load benchmark.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from proxnix.sources.webhooks.providers import Provider

# (header, prefix) pairs carrying hex HMAC-SHA256 signatures, per provider, in the order they are tried.
_HMAC_HEADERS: dict[Provider, tuple[tuple[str, str], ...]] = {
    Provider.GITHUB: (("x-hub-signature-256", "sha256="),),
    Provider.GITEA: (("x-gitea-signature", ""), ("x-hub-signature-256", "sha256=")),
    Provider.FORGEJO: (
        ("x-forgejo-signature", ""),
        ("x-gitea-signature", ""),
        ("x-hub-signature-256", "sha256="),
    ),
    Provider.GITLAB: (),
    Provider.BITBUCKET_CLOUD: (("x-hub-signature", "sha256="),),
    Provider.BITBUCKET_SERVER: (("x-hub-signature", "sha256="),),
    Provider.GENERIC: (("x-signature", "sha256="), ("x-hub-signature-256", "sha256=")),
}
# Any signature header at all: used on the per-GitRepo path, where the sender may be anything.
_ANY_HMAC: tuple[tuple[str, str], ...] = (
    ("x-hub-signature-256", "sha256="),
    ("x-hub-signature", "sha256="),
    ("x-signature", "sha256="),
    ("x-forgejo-signature", ""),
    ("x-gitea-signature", ""),
)
_GITLAB_TOKEN = "x-gitlab-token"  # noqa: S105 (a header name)


def _as_bytes(value: str) -> bytes:
    return value.strip().encode("utf-8", "surrogateescape")


def hmac_hex(secret: bytes, body: bytes) -> str:
    """The lowercase hex HMAC-SHA256 of `body` under `secret`."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def is_signed(headers: Mapping[str, str], provider: Provider | None) -> bool:
    """Whether the (lowercased) headers carry any signature or token the provider uses."""
    pairs = _HMAC_HEADERS[provider] if provider is not None else _ANY_HMAC
    if any(name in headers for name, _ in pairs):
        return True
    return (provider in (Provider.GITLAB, None)) and _GITLAB_TOKEN in headers


def verify(headers: Mapping[str, str], body: bytes, secret: bytes, provider: Provider | None) -> bool:
    """Whether the request is signed with `secret`; `provider` None accepts any known signature header."""
    if not secret:
        return False
    token = headers.get(_GITLAB_TOKEN) if provider in (Provider.GITLAB, None) else None
    if token is not None and hmac.compare_digest(_as_bytes(token), secret):
        return True
    pairs = _HMAC_HEADERS[provider] if provider is not None else _ANY_HMAC
    expected: bytes | None = None
    for name, prefix in pairs:
        given = headers.get(name)
        if given is None:
            continue
        value = given.strip()
        if prefix:
            if value[: len(prefix)].lower() != prefix:
                continue
            value = value[len(prefix) :]
        if expected is None:
            expected = hmac_hex(secret, body).encode("ascii")
        if hmac.compare_digest(_as_bytes(value.lower()), expected):
            return True
    return False


def signature_headers(provider: Provider, body: bytes, secret: bytes) -> dict[str, str]:
    """The signature header(s) `provider` sends for `body` signed with `secret`."""
    digest = hmac_hex(secret, body)
    if provider is Provider.GITHUB:
        return {"X-Hub-Signature-256": f"sha256={digest}"}
    if provider is Provider.GITEA:
        return {"X-Gitea-Signature": digest, "X-Hub-Signature-256": f"sha256={digest}"}
    if provider is Provider.FORGEJO:
        return {
            "X-Forgejo-Signature": digest,
            "X-Gitea-Signature": digest,
            "X-Hub-Signature-256": f"sha256={digest}",
        }
    if provider is Provider.GITLAB:
        return {"X-Gitlab-Token": secret.decode("utf-8", "surrogateescape")}
    if provider in (Provider.BITBUCKET_CLOUD, Provider.BITBUCKET_SERVER):
        return {"X-Hub-Signature": f"sha256={digest}"}
    return {"X-Signature": f"sha256={digest}"}
