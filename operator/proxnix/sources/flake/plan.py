"""The apply/prune plan: rendered ProxmoxVMs against the ProxmoxVMs in the namespace → what to create, patch, delete.

Every desired or owned name lands in exactly one bucket: created, updated, reimaged, pruned, unchanged or blocked.
- A ProxmoxVM is this GitRepo's when its controller ownerReference has the GitRepo's uid. One with no controller
  but the `proxnix.io/gitrepo` label naming this GitRepo (orphaned when a GitRepo of this name was deleted) is
  adopted. Any other object of the same
  name is never overwritten: blocked, with who owns it.
- Patches are JSON merge patches of what differs (removed fields set to null); an unchanged VM is not patched, so a
  commit that changes nothing patches nothing.
- A VM whose node or VMID changed is blocked (both are immutable: a VM is never moved by a patch).
- A protected VM (in the flake or on the cluster) keeps its image: blocked, with its other changes still applied.
  A protected VM that left the flake is never pruned (blocked); with `prune: false` none are.
- The prune guard: a commit that would prune more than `pruneLimit` VMs (default: more than half of the owned ones),
  or every owned VM, is held whole (no action at all; what it would do is listed as blocked) until the annotation
  `proxnix.io/confirm-prune` names its revision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from proxnix.api.gitrepo import BlockedVM, PlanSummary
from proxnix.api.meta import GROUP
from proxnix.api.proxmoxvm import ProxmoxVMSpec
from proxnix.sources.flake.render import LABEL_GITREPO, Owner

_FIXED = ("node", "vmid")  # immutable in the ProxmoxVM API (a CEL rule): never patched

ANNOTATION_CONFIRM_PRUNE = f"{GROUP}/confirm-prune"
"""On a GitRepo: the revision whose prune over the limit the user confirms."""


@dataclass(frozen=True)
class Existing:
    """A ProxmoxVM in the GitRepo's namespace, as much of it as the plan reads."""

    name: str
    spec: Mapping[str, Any]
    labels: Mapping[str, str] = field(default_factory=dict)
    owner_references: Sequence[Mapping[str, Any]] = ()
    deleting: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Existing:
        meta = obj.get("metadata") or {}
        return cls(
            name=str(meta.get("name", "")),
            spec=obj.get("spec") or {},
            labels=meta.get("labels") or {},
            owner_references=meta.get("ownerReferences") or (),
            deleting=bool(meta.get("deletionTimestamp")),
        )

    def controller(self) -> Mapping[str, Any] | None:
        return next((ref for ref in self.owner_references if ref.get("controller")), None)

    def owned_by(self, owner: Owner) -> bool:
        ref = self.controller()
        return ref is not None and ref.get("uid") == owner.uid

    def adoptable(self, owner: Owner) -> bool:
        """An orphan of `owner`'s name: no controller, and the `proxnix.io/gitrepo` label names this GitRepo (an
        orphan of another GitRepo is never taken over)."""
        return self.controller() is None and self.labels.get(LABEL_GITREPO) == owner.name

    @property
    def protected(self) -> bool:
        return bool(self.spec.get("protected"))


@dataclass(frozen=True)
class Patch:
    """A JSON merge patch for one ProxmoxVM."""

    name: str
    body: dict[str, Any]


@dataclass
class Plan:
    """What to do for one commit, and the names per bucket for status and Events."""

    creates: list[dict[str, Any]] = field(default_factory=list)
    patches: list[Patch] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    reimaged: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)
    unapplied: list[str] = field(default_factory=list)
    """The blocked VMs of the flake that were not applied at all (a name clash, a node or VMID change): the GitRepo
    is not Ready while there are any. A protected VM whose image is held, or one kept after leaving the flake, is
    reported in `blocked` only."""
    held: str = ""
    """Why the whole commit is held (the prune guard); empty when it may be applied."""

    def not_applied(self) -> str:
        """The unapplied VMs with why, for the Ready condition (empty when every VM of the flake was applied)."""
        return ", ".join(f"{name} ({self.blocked[name]})" for name in sorted(self.unapplied))

    @property
    def has_actions(self) -> bool:
        return bool(self.creates or self.patches or self.deletes)

    def summary(self, revision: str) -> PlanSummary:
        """The plan as the GitRepo's `status.lastPlan`."""
        return PlanSummary(
            revision=revision,
            created=list(self.created),
            updated=list(self.updated),
            reimaged=list(self.reimaged),
            pruned=list(self.pruned),
            unchanged=list(self.unchanged),
            blocked=[BlockedVM(name=name, reason=reason) for name, reason in sorted(self.blocked.items())],
            held=self.held,
        )


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7386 merge patch turning `old` into `new` (only what differs; removed keys as null)."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            inner = merge_patch(before, value)
            if inner:
                patch[key] = inner
        elif key not in old or before != value:
            patch[key] = value
    return patch


def _normalized(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec as the renderer would write it (defaults filled), or as it is when it does not validate."""
    try:
        return ProxmoxVMSpec.model_validate(spec).to_wire()
    except ValidationError:
        return dict(spec)


def _image_sha(spec: Mapping[str, Any]) -> str | None:
    image = spec.get("image")
    return image.get("sha256") if isinstance(image, Mapping) else None


def owner_description(existing: Existing) -> str:
    """Who controls a ProxmoxVM, for a message."""
    ref = existing.controller()
    if ref is None and LABEL_GITREPO in existing.labels:
        return f"an orphan of GitRepo {existing.labels[LABEL_GITREPO]}"
    if ref is None:
        return "not created by a GitRepo"
    return f"controlled by {ref.get('kind', '?')} {ref.get('name', '?')}"


def _metadata_patch(existing: Existing, owner: Owner) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if existing.labels.get(LABEL_GITREPO) != owner.name:
        meta["labels"] = {LABEL_GITREPO: owner.name}
    if not existing.owned_by(owner):
        others = [dict(ref) for ref in existing.owner_references if not ref.get("controller")]
        meta["ownerReferences"] = [*others, owner.reference()]
    return meta


def _plan_desired(plan: Plan, obj: dict[str, Any], existing: Existing | None, owner: Owner) -> None:
    name = obj["metadata"]["name"]
    if existing is None:
        plan.creates.append(obj)
        plan.created.append(name)
        return
    if existing.deleting:
        plan.blocked[name] = "the ProxmoxVM is being deleted; it is created again once it is gone"
        return
    if not (existing.owned_by(owner) or existing.adoptable(owner)):
        plan.blocked[name] = (
            f"a ProxmoxVM of this name exists and is {owner_description(existing)}; not overwritten"
        )
        plan.unapplied.append(name)
        return
    current = _normalized(existing.spec)
    desired = dict(obj["spec"])
    moved = [
        f"{field} {current.get(field)} → {desired[field]}"
        for field in _FIXED
        if current.get(field) != desired[field]
    ]
    if moved:
        plan.blocked[name] = (
            f"{', '.join(moved)}: a ProxmoxVM cannot change node or VMID; give the VM a new name to replace it"
        )
        plan.unapplied.append(name)
        return
    image_changed = _image_sha(current) != _image_sha(desired)
    keep_image = image_changed and (existing.protected or bool(desired.get("protected")))
    if keep_image and "image" in current:
        desired["image"] = current["image"]
    body: dict[str, Any] = {}
    meta = _metadata_patch(existing, owner)
    if meta:
        body["metadata"] = meta
    spec_patch = merge_patch(current, desired)
    if spec_patch:
        body["spec"] = spec_patch
    if body:
        plan.patches.append(Patch(name, body))
    if keep_image:
        plan.blocked[name] = "protected: the new image is not applied (its other changes are)"
    elif image_changed:
        plan.reimaged.append(name)
    elif body:
        plan.updated.append(name)
    else:
        plan.unchanged.append(name)


def _prune_limit(owned: int, prune_limit: int | None) -> int:
    return owned // 2 if prune_limit is None else prune_limit


def make_plan(
    desired: Sequence[dict[str, Any]],
    existing: Sequence[Existing],
    owner: Owner,
    *,
    revision: str,
    prune: bool,
    prune_limit: int | None = None,
    confirmed_revision: str | None = None,
) -> Plan:
    """The plan for one commit (see the module docstring for the rules)."""
    plan = Plan()
    by_name = {item.name: item for item in existing}
    wanted = {obj["metadata"]["name"] for obj in desired}
    for obj in sorted(desired, key=lambda o: str(o["metadata"]["name"])):
        _plan_desired(plan, obj, by_name.get(obj["metadata"]["name"]), owner)
    owned = [item for item in existing if item.owned_by(owner)]
    for item in sorted(owned, key=lambda i: i.name):
        if item.name in wanted or item.deleting:
            continue
        if item.protected:
            plan.blocked[item.name] = "protected: left the flake but is never pruned"
        elif not prune:
            plan.blocked[item.name] = "left the flake; kept because spec.prune is false"
        else:
            plan.deletes.append(item.name)
            plan.pruned.append(item.name)
    count = len(plan.pruned)
    limit = _prune_limit(len(owned), prune_limit)
    over = count > limit or (count > 0 and count == len(owned))
    if over and confirmed_revision != revision:
        plan.held = (
            f"this revision would prune {count} of {len(owned)} ProxmoxVMs ({', '.join(plan.pruned)}), more than "
            f"the limit of {limit}{' (every VM)' if count == len(owned) else ''}; nothing was applied. To apply it, "
            f"annotate the GitRepo {ANNOTATION_CONFIRM_PRUNE}={revision}"
        )
        _hold(plan)
    return plan


def _hold(plan: Plan) -> None:
    """Nothing of a held plan happens: no action, and what would have been done is listed as blocked (held), not
    as created, updated, reimaged or pruned."""
    plan.creates.clear()
    plan.patches.clear()
    plan.deletes.clear()
    for would, names in (
        ("created", plan.created),
        ("updated", plan.updated),
        ("reimaged", plan.reimaged),
        ("pruned", plan.pruned),
    ):
        for name in names:
            plan.blocked[name] = f"held: would be {would} once {ANNOTATION_CONFIRM_PRUNE} names this revision"
        names.clear()
