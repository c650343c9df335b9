"""The apply/prune plan against the owned inventory: buckets, minimal patches, never overwriting, the prune guard.

The inventory is what the strict test API server returns for the rendered objects (defaults filled, server metadata
added), so "a no-op commit patches nothing" is checked against real stored objects.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from proxnix.sources.flake.checks import node_of
from proxnix.sources.flake.plan import ANNOTATION_CONFIRM_PRUNE, Existing, Plan, make_plan, merge_patch
from proxnix.sources.flake.render import Image, Owner, render_object
from proxnix.sources.flake.vms import parse_vms
from tests.flake.conftest import eval_output
from tests.support.kubeapi import REPO_CRDS, KubeAPI

OWNER = Owner(namespace="default", name="infra", uid="3f1c0d2e-0000-4000-8000-000000000001")
OTHER = Owner(namespace="default", name="other", uid="3f1c0d2e-0000-4000-8000-000000000002")
IMAGES = {
    "web": Image(path="/nix/store/2jfk83mmkmsdhs8jxx82j4492vmfs17k-web-qcow2/nixos.qcow2", sha256="a" * 64),
    "db": Image(path="/nix/store/akdcqj389b6aiaymqq5aqrjgl6zy3sfh-db-image-qemu/db.qcow2", sha256="b" * 64),
}
REVISION = "0123456789abcdef0123456789abcdef01234567"


def rendered(
    output: dict[str, Any] | None = None, images: dict[str, Image] | None = None
) -> list[dict[str, Any]]:
    vms = parse_vms(output if output is not None else eval_output("fleet"))
    chosen = images or IMAGES
    return [render_object(vm, node_of(vm, "pve1") or "", chosen[vm.image_type], OWNER) for vm in vms.values()]


def stored(kubeapi: KubeAPI, objects: list[dict[str, Any]]) -> list[Existing]:
    """Create the objects in the test API server and read them back as it stores them."""
    kubeapi.install_crds(REPO_CRDS / "proxnix.io_proxmoxvms.yaml")
    for obj in objects:
        response = kubeapi.post("/apis/proxnix.io/v1alpha1/namespaces/default/proxmoxvms", obj)
        assert response.status == 201, response
    listing = kubeapi.get("/apis/proxnix.io/v1alpha1/namespaces/default/proxmoxvms")
    return [Existing.from_object(item) for item in listing.body["items"]]


def plan(desired: list[dict[str, Any]], existing: list[Existing], **options: Any) -> Plan:
    options.setdefault("prune", True)
    return make_plan(desired, existing, OWNER, revision=REVISION, **options)


def buckets(result: Plan) -> dict[str, list[str]]:
    return {
        "created": result.created,
        "updated": result.updated,
        "reimaged": result.reimaged,
        "pruned": result.pruned,
        "unchanged": result.unchanged,
        "blocked": sorted(result.blocked),
    }


def test_a_first_commit_creates_every_vm() -> None:
    result = plan(rendered(), [])
    assert result.created == ["db01", "web01", "web02"]
    assert [o["metadata"]["name"] for o in result.creates] == ["db01", "web01", "web02"]
    assert not result.patches
    assert not result.deletes
    assert not result.held


def test_a_no_op_commit_patches_nothing_against_stored_objects(kubeapi: KubeAPI) -> None:
    existing = stored(kubeapi, rendered())
    result = plan(rendered(), existing)
    assert result.unchanged == ["db01", "web01", "web02"]
    assert not result.has_actions


def test_a_memory_change_patches_only_that_field(kubeapi: KubeAPI) -> None:
    existing = stored(kubeapi, rendered())
    output = copy.deepcopy(eval_output("fleet"))
    output["vms"]["web01"]["memory_mb"] = 3072
    result = plan(rendered(output), existing)
    assert buckets(result)["updated"] == ["web01"]
    assert result.unchanged == ["db01", "web02"]
    assert [(p.name, p.body) for p in result.patches] == [("web01", {"spec": {"memoryMiB": 3072}})]


def test_an_image_change_reimages_its_vms_but_not_a_protected_one(kubeapi: KubeAPI) -> None:
    existing = stored(kubeapi, rendered())
    new_web = Image(path="/nix/store/" + "c" * 32 + "-web-qcow2/nixos.qcow2", sha256="c" * 64)
    result = plan(rendered(images={**IMAGES, "web": new_web}), existing)
    assert buckets(result) == {
        "created": [],
        "updated": [],
        "reimaged": ["web01"],
        "pruned": [],
        "unchanged": ["db01"],
        "blocked": ["web02"],
    }
    assert result.blocked["web02"] == "protected: the new image is not applied (its other changes are)"
    assert result.summary(REVISION).to_wire() == {
        "revision": REVISION,
        "created": [],
        "updated": [],
        "reimaged": ["web01"],
        "pruned": [],
        "unchanged": ["db01"],
        "blocked": [{"name": "web02", "reason": result.blocked["web02"]}],
        "held": "",
    }
    assert [(p.name, p.body) for p in result.patches] == [
        ("web01", {"spec": {"image": {"source": new_web.path, "sha256": new_web.sha256}}})
    ]


def test_a_removed_field_is_set_to_null(kubeapi: KubeAPI) -> None:
    existing = stored(kubeapi, rendered())
    output = copy.deepcopy(eval_output("fleet"))
    db01 = output["vms"]["db01"]
    db01["cloud_init"] = "None"
    for key in ("cloud_init_user", "ssh_authorized_keys", "ip_config"):
        del db01[key]
    result = plan(rendered(output), existing)
    assert [(p.name, p.body) for p in result.patches] == [("db01", {"spec": {"cloudInit": None}})]


def test_a_same_name_object_of_someone_else_is_never_overwritten() -> None:
    objects = rendered()
    foreign = copy.deepcopy(next(o for o in objects if o["metadata"]["name"] == "web01"))
    foreign["metadata"]["ownerReferences"] = [OTHER.reference()]
    handmade = copy.deepcopy(next(o for o in objects if o["metadata"]["name"] == "db01"))
    handmade["metadata"] = {"name": "db01"}
    result = plan(objects, [Existing.from_object(foreign), Existing.from_object(handmade)])
    assert result.blocked == {
        "db01": "a ProxmoxVM of this name exists and is not created by a GitRepo; not overwritten",
        "web01": "a ProxmoxVM of this name exists and is controlled by GitRepo other; not overwritten",
    }
    assert result.created == ["web02"]
    assert not result.patches


def test_an_orphan_of_this_gitrepo_is_adopted_without_touching_its_spec() -> None:
    objects = rendered()
    orphan = copy.deepcopy(next(o for o in objects if o["metadata"]["name"] == "web01"))
    del orphan["metadata"]["ownerReferences"]  # orphaned when a GitRepo "infra" was deleted; the label stays
    result = plan(objects, [Existing.from_object(orphan)])
    assert result.updated == ["web01"]
    assert [(p.name, p.body) for p in result.patches] == [
        ("web01", {"metadata": {"ownerReferences": [OWNER.reference()]}})
    ]


def test_an_orphan_of_another_gitrepo_is_never_adopted() -> None:
    objects = rendered()
    orphan = copy.deepcopy(next(o for o in objects if o["metadata"]["name"] == "web01"))
    del orphan["metadata"]["ownerReferences"]
    orphan["metadata"]["labels"] = {"proxnix.io/gitrepo": "infra-old"}
    existing = Existing.from_object(orphan)
    assert not existing.adoptable(OWNER)
    result = plan(objects, [existing])
    assert "web01" not in [p.name for p in result.patches]
    assert "web01" not in result.updated
    assert result.blocked["web01"] == (
        "a ProxmoxVM of this name exists and is an orphan of GitRepo infra-old; not overwritten"
    )
    assert result.unapplied == ["web01"]


def _owned(names: list[str], protected: tuple[str, ...] = ()) -> list[Existing]:
    return [
        Existing(
            name=name,
            spec={"node": "pve1", "vmid": 200 + i, "protected": name in protected, "image": {"source": "/x"}},
            labels={"proxnix.io/gitrepo": "infra"},
            owner_references=[OWNER.reference()],
        )
        for i, name in enumerate(names)
    ]


def test_removed_vms_are_pruned_except_protected_ones() -> None:
    existing = _owned(["a", "b", "c", "d", "e"], protected=("b",))
    result = plan(rendered(), existing)
    assert result.held
    result = plan(rendered(), existing, prune_limit=10)
    assert result.pruned == ["a", "c", "d", "e"]
    assert result.deletes == ["a", "c", "d", "e"]
    assert result.blocked["b"] == "protected: left the flake but is never pruned"


def test_prune_off_keeps_them_and_says_so() -> None:
    result = plan(rendered(), _owned(["a"]), prune=False)
    assert not result.deletes
    assert not result.held
    assert result.blocked == {"a": "left the flake; kept because spec.prune is false"}


@pytest.mark.parametrize(
    ("owned", "removed", "limit", "held"),
    [
        (4, 2, None, False),  # half: allowed
        (5, 3, None, True),  # more than half
        (2, 1, None, False),
        (1, 1, None, True),  # all of them, always held
        (10, 10, 100, True),  # all of them, even under an explicit limit
        (10, 3, 2, True),
        (10, 2, 2, False),
        (10, 1, 0, True),
    ],
)
def test_the_prune_guard(owned: int, removed: int, limit: int | None, held: bool) -> None:
    names = [f"vm{i:02d}" for i in range(owned)]
    kept = names[removed:]
    existing = _owned(names)
    desired = [
        {"metadata": {"name": n}, "spec": dict(e.spec)}
        for n, e in zip(names, existing, strict=True)
        if n in kept
    ]
    result = plan(desired, existing, prune_limit=limit)
    assert bool(result.held) is held
    assert result.pruned == ([] if held else names[:removed])
    assert sorted(n for n, why in result.blocked.items() if why.startswith("held: would be pruned")) == (
        names[:removed] if held else []
    )
    assert result.has_actions is (not held)


def test_a_held_commit_applies_nothing_until_its_revision_is_confirmed() -> None:
    output = copy.deepcopy(eval_output("empty"))
    existing = [Existing.from_object(o) for o in rendered()]
    held = plan(rendered(output), existing)
    assert held.held.startswith(
        "this revision would prune 2 of 3 ProxmoxVMs (db01, web01), more than the limit of 1; nothing was applied"
    )
    would_prune = f"held: would be pruned once {ANNOTATION_CONFIRM_PRUNE} names this revision"
    assert held.blocked == {
        "db01": would_prune,
        "web01": would_prune,
        "web02": "protected: left the flake but is never pruned",
    }
    assert (held.created, held.updated, held.reimaged, held.pruned) == ([], [], [], [])
    assert f"{ANNOTATION_CONFIRM_PRUNE}={REVISION}" in held.held
    assert not held.has_actions
    stale = plan(rendered(output), existing, confirmed_revision="f" * 40)
    assert stale.held
    confirmed = plan(rendered(output), existing, confirmed_revision=REVISION)
    assert not confirmed.held
    assert confirmed.deletes == ["db01", "web01"]


def test_a_held_commit_lists_nothing_as_created_or_pruned() -> None:
    existing = _owned(["a", "b", "c"])  # every owned VM leaves the flake; three new ones come
    result = plan(rendered(), existing)
    assert result.held
    assert (result.created, result.pruned) == ([], [])
    assert not result.has_actions
    assert result.blocked == {
        **{
            n: f"held: would be created once {ANNOTATION_CONFIRM_PRUNE} names this revision"
            for n in ("db01", "web01", "web02")
        },
        **{n: f"held: would be pruned once {ANNOTATION_CONFIRM_PRUNE} names this revision" for n in "abc"},
    }
    summary = result.summary(REVISION)
    assert (summary.created, summary.updated, summary.pruned) == ([], [], [])


def test_an_object_being_deleted_is_neither_patched_nor_pruned() -> None:
    objects = rendered()
    deleting = copy.deepcopy(objects[0])
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    result = plan(objects, [Existing.from_object(deleting)])
    assert "being deleted" in result.blocked[deleting["metadata"]["name"]]
    gone = plan([], [Existing.from_object(deleting)])
    assert not gone.deletes
    assert not gone.held


def test_merge_patch() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1], "f": 5}
    new = {"a": 1, "b": {"c": 2, "d": 4}, "e": [1, 2], "g": None}
    assert merge_patch(old, new) == {"b": {"d": 4}, "e": [1, 2], "f": None, "g": None}
    assert merge_patch(new, new) == {}


def test_a_changed_node_or_vmid_is_blocked_not_patched(kubeapi: KubeAPI) -> None:
    existing = stored(kubeapi, rendered())
    output = copy.deepcopy(eval_output("fleet"))
    output["vms"]["web01"]["vm_id"] = 150
    output["vms"]["db01"]["node"] = "pve1"
    result = plan(rendered(output), existing)
    assert result.blocked == {
        "db01": "node pve2 → pve1: a ProxmoxVM cannot change node or VMID; give the VM a new name to replace it",
        "web01": "vmid 100 → 150: a ProxmoxVM cannot change node or VMID; give the VM a new name to replace it",
    }
    assert not result.patches
