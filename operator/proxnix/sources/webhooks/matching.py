"""Which pushed ref a GitRepo follows: a branch matches `refs/heads/<branch>`, a tag `refs/tags/<tag>`.

A GitRepo pinned to a commit follows no ref and is never marked by a push. A deleted ref yields no revision.
"""

from __future__ import annotations

from proxnix.sources.webhooks.events import Push


def followed_ref(branch: str | None, tag: str | None) -> str | None:
    """The full ref name a GitRepo with this branch or tag follows (None for a commit-pinned GitRepo)."""
    if branch is not None:
        return branch if branch.startswith("refs/heads/") else f"refs/heads/{branch}"
    if tag is not None:
        return tag if tag.startswith("refs/tags/") else f"refs/tags/{tag}"
    return None


def revision_for(ref: str | None, push: Push) -> str | None:
    """The new commit `push` gives the followed `ref`, or None if the push does not move it (or deleted it)."""
    if ref is None:
        return None
    for update in push.refs:
        if update.ref == ref and update.revision is not None:
            return update.revision
    return None
