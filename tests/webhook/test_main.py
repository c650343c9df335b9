"""The `proxnix webhook` command line: `--listen` parsing and start-up failure."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from proxnix.cli import build_parser
from proxnix.webhook.main import parse_listen, serve


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:9292", ("127.0.0.1", 9292)),
        (":8080", ("0.0.0.0", 8080)),
        ("[::1]:0", ("::1", 0)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["", "host", "host:", "host:http", "host:70000", "host:-1"])
def test_parse_listen_rejects(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_listen(value)


def test_cli_defaults() -> None:
    args = build_parser("webhook").parse_args(["webhook"])
    assert args.listen == ("0.0.0.0", 9292)
    assert args.namespace == "all"
    assert args.insecure_allow_unsigned is False
    assert args.max_body_bytes == 1024 * 1024


async def test_unloadable_kubeconfig_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    args = build_parser("webhook").parse_args(["webhook", "--kubeconfig", str(tmp_path / "missing")])
    assert await serve(args) == 2
