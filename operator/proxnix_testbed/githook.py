"""The `post-receive` hook of the test git server: each pushed ref becomes a signed push webhook (GitHub's format and
signature, as the sidecar accepts it) POSTed to a URL. A failed delivery never fails the push: it is printed (git
shows it to the pusher as `remote: ...`) and recorded with the rest in `deliveries.jsonl` next to the hook config.

Run by the generated hook script as `main(config_path)`; the config (JSON) holds `url`, `secret_file`,
`repository_url` (the URL the webhook names the repository by) and `timeout`.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from proxnix.sources.webhooks.providers import Provider
from proxnix.sources.webhooks.signatures import signature_headers


def payload(old: str, new: str, ref: str, repository_url: str) -> dict[str, Any]:
    """A GitHub-style push payload for one ref update."""
    return {
        "ref": ref,
        "before": old,
        "after": new,
        "deleted": new.strip("0") == "",
        "repository": {"clone_url": repository_url},
        "head_commit": None if new.strip("0") == "" else {"id": new},
    }


def deliver(config: dict[str, Any], body: bytes) -> tuple[int, str]:
    secret = Path(config["secret_file"]).read_bytes().strip()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": f"testbed-{time.time_ns()}",
        **signature_headers(Provider.GITHUB, body, secret),
    }
    url = str(config["url"])
    if not url.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:")):
        return 0, f"refusing to send a webhook off loopback: {url}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=float(config.get("timeout", 10))) as response:  # noqa: S310
            return response.status, response.read(500).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(500).decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)


def main(config_path: str, stdin: TextIO = sys.stdin, stderr: TextIO = sys.stderr) -> int:
    config = json.loads(Path(config_path).read_text())
    record = Path(config_path).with_name("deliveries.jsonl")
    for line in stdin:
        parts = line.split()
        if len(parts) != 3:
            continue
        old, new, ref = parts
        body = json.dumps(payload(old, new, ref, config["repository_url"])).encode()
        status, text = deliver(config, body)
        print(
            f"proxnix webhook: {ref} {new[:12]} -> {status or 'not delivered'} {text.strip()[:200]}",
            file=stderr,
        )
        with record.open("a") as out:
            out.write(json.dumps({"ref": ref, "after": new, "status": status, "response": text}) + "\n")
    return 0
