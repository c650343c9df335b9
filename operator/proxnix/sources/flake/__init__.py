"""The proxnix flake, pure: its `proxnix` output format, the whole-commit checks, nix command lines and output parsers,
the ProxmoxVM renderer and the apply/prune plan against what a GitRepo owns.

No I/O: `proxnix.adapters.nix` and `proxnix.adapters.git` run the commands these modules build and feed their
outputs back. Modules: `vms` (the format and its parser), `checks` (a commit is applied whole or not at all),
`nix_commands` (argv builders, version features), `nix_outputs` (parsers of nix's JSON), `render` (VM → ProxmoxVM),
`plan` (created, updated, reimaged, pruned, unchanged, blocked; the prune guard).
"""
