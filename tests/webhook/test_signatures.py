"""Signature verification per sender: the right secret verifies, a changed byte or another secret does not."""

from __future__ import annotations

import pytest

from proxnix.sources.webhooks.providers import Provider, lower_headers
from proxnix.sources.webhooks.signatures import hmac_hex, is_signed, signature_headers, verify

SECRET = b"s3cr3t-shared"
BODY = b'{"ref": "refs/heads/main"}'


@pytest.mark.parametrize("provider", list(Provider))
def test_signed_body_verifies(provider: Provider) -> None:
    headers = lower_headers(signature_headers(provider, BODY, SECRET))
    assert is_signed(headers, provider)
    assert verify(headers, BODY, SECRET, provider)
    assert verify(headers, BODY, SECRET, None)  # the per-GitRepo path accepts any known signature header


@pytest.mark.parametrize("provider", [p for p in Provider if p is not Provider.GITLAB])
def test_one_changed_byte_fails(provider: Provider) -> None:
    headers = lower_headers(signature_headers(provider, BODY, SECRET))
    tampered = BODY.replace(b"main", b"maim")
    assert not verify(headers, tampered, SECRET, provider)


@pytest.mark.parametrize("provider", list(Provider))
def test_other_secret_fails(provider: Provider) -> None:
    headers = lower_headers(signature_headers(provider, BODY, SECRET))
    assert not verify(headers, BODY, b"another-secret", provider)
    assert not verify(headers, BODY, b"", provider)


@pytest.mark.parametrize("provider", list(Provider))
def test_unsigned_fails(provider: Provider) -> None:
    assert not is_signed({}, provider)
    assert not verify({}, BODY, SECRET, provider)


def test_github_sha1_header_is_ignored() -> None:
    import hashlib
    import hmac

    sha1 = hmac.new(SECRET, BODY, hashlib.sha1).hexdigest()
    headers = {"x-hub-signature": f"sha1={sha1}"}
    assert not is_signed(headers, Provider.GITHUB)
    assert not verify(headers, BODY, SECRET, Provider.GITHUB)


def test_signature_case_and_whitespace_tolerated_prefix_required() -> None:
    digest = hmac_hex(SECRET, BODY)
    assert verify({"x-hub-signature-256": f" SHA256={digest.upper()} "}, BODY, SECRET, Provider.GITHUB)
    assert not verify({"x-hub-signature-256": digest}, BODY, SECRET, Provider.GITHUB)
    assert not verify({"x-hub-signature-256": f"sha1={digest}"}, BODY, SECRET, Provider.GITHUB)


def test_headers_of_one_server_do_not_count_for_another() -> None:
    github = lower_headers(signature_headers(Provider.GITHUB, BODY, SECRET))
    assert not verify(github, BODY, SECRET, Provider.BITBUCKET_SERVER)
    gitlab = lower_headers(signature_headers(Provider.GITLAB, BODY, SECRET))
    assert not verify(gitlab, BODY, SECRET, Provider.GITHUB)


def test_non_ascii_signatures_do_not_crash() -> None:
    assert not verify({"x-hub-signature-256": "sha256=\udcff\u00e9"}, BODY, SECRET, Provider.GITHUB)
    assert not verify({"x-gitlab-token": "\u00e9\udcff"}, BODY, SECRET, Provider.GITLAB)
