"""pvesim: a simulator of Proxmox VE nodes (`qm`, `pvesh`) reached over real SSH, for tests and the sandbox.

It never imports `proxnix`: the simulator and the operator's parsers are each checked against the facts sheet.
"""
