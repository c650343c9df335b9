"""`qm pending <vmid>` (pve-cli-facts §8): `cur k: v` (value in effect), `new k: p` (pending until restart),
`del k: v` (deletion pending). Descriptions are percent-encoded."""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxnix.proxmox.parsing import fail, output_lines
from proxnix.proxmox.propstring import decode_text

_LINE = re.compile(r"^(cur|new|del) ([a-z][a-z0-9_-]*):(?: (.*))?$")


@dataclass
class PendingItem:
    """One config key: its current value, its pending value, and whether its deletion is pending."""

    key: str
    current: str | None = None
    pending: str | None = None
    delete: bool = False

    @property
    def is_pending(self) -> bool:
        return self.delete or (self.pending is not None and self.pending != self.current)


def parse_qm_pending(text: str, *, command: str = "qm pending") -> dict[str, PendingItem]:
    items: dict[str, PendingItem] = {}
    for line in output_lines(text):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            fail(command, "expected 'cur|new|del key: value'", line)
        kind, key, value = m.group(1), m.group(2), (m.group(3) or "").strip()
        if key == "description":
            value = decode_text(value)
        item = items.setdefault(key, PendingItem(key=key))
        if kind == "cur":
            item.current = value
        elif kind == "new":
            item.pending = value
        else:
            item.current = value
            item.delete = True
    return items


def pending_keys(items: dict[str, PendingItem]) -> list[str]:
    return sorted(k for k, item in items.items() if item.is_pending)
