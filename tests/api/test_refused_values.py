"""Values that would only fail later (on the node, in a log) are refused by the schema: control characters in SSH
keys, credentials in image URLs. The same patterns are in the CRDs, so the API server refuses them too."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from proxnix.api.proxmoxvm import CloudInitSpec, ImageSpec

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx"


@pytest.mark.parametrize("char", [chr(c) for c in [*range(0x20), 0x7F]], ids=lambda c: f"0x{ord(c):02x}")
def test_a_control_character_in_an_ssh_key_is_refused(char: str) -> None:
    with pytest.raises(ValidationError):
        CloudInitSpec.model_validate({"sshAuthorizedKeys": [f"{KEY} me{char}@host"]})


def test_an_ordinary_key_comment_is_accepted() -> None:
    spec = CloudInitSpec.model_validate({"sshAuthorizedKeys": [f"{KEY} alice@example.org (laptop) ü"]})
    assert spec.ssh_authorized_keys == [f"{KEY} alice@example.org (laptop) ü"]


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@images.example.org/nixos.qcow2",
        "https://token@images.example.org/nixos.qcow2",
        "http://user:@images.example.org:8080/x",
    ],
)
def test_an_image_url_with_credentials_is_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        ImageSpec.model_validate({"source": url})


@pytest.mark.parametrize(
    "url",
    [
        "https://images.example.org/nixos.qcow2",
        "http://127.0.0.1:8080/ok/base.qcow2?x=1#frag",
        "https://images.example.org/by-user/@alice/nixos.qcow2",  # an @ in the path is no credential
    ],
)
def test_an_image_url_without_credentials_is_accepted(url: str) -> None:
    assert ImageSpec.model_validate({"source": url}).source == url
