"""The GitRepo reconcile's steps, each a function of its inputs with its I/O behind `ports` and its own conditions
(run in order by `reconciler.GitRepoReconciler.reconcile`):

1. `fetch` — the Secret's credentials and the followed ref's head (SourceFetched / FetchFailed);
2. `evaluate` — `nix eval` of the checked-out commit, the format, the whole-commit checks against the namespace
   (`observe`), the image probe (Applied=False with the reason when the commit cannot be applied);
3. `build` — the used images in one nix invocation, kept alive by GC roots (BuildFailed);
4. `plan` and `apply` — render one ProxmoxVM per VM, check the commit again against a fresh view of the namespace,
   plan (`proxnix.sources.flake.plan`), create and patch (Applied);
5. `prune` — delete the ProxmoxVMs that left the flake (the plan already held a prune over the limit);
6. `readiness` — the owned ProxmoxVMs (the inventory) and which of them are not Ready for their generation;
   VMs of the flake the plan could not apply (`not_applied`: a name clash, a node or VMID change) make it not Ready.

A step that cannot go on raises `StepFailed` after writing its own conditions; nothing after it runs, so a commit
that fails anywhere before `apply` changes no ProxmoxVM.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxnix.adapters.git import Fetched, GitError
from proxnix.adapters.kube import KubeError
from proxnix.adapters.nix import BuiltImage, NixError, NixErrorKind
from proxnix.api import proxmoxnode, proxmoxvm
from proxnix.api.conditions import ConditionType, find_condition
from proxnix.api.gitrepo import GitRepoStatus, InventoryEntry
from proxnix.api.summarize import Problem
from proxnix.reconcile.gitrepo import status as report
from proxnix.reconcile.gitrepo.ports import Builder, Cluster, Source
from proxnix.reconcile.gitrepo.ref import GitRepoRef
from proxnix.reconcile.outcome import APPLY_FAILED, NIX_TRANSIENT, SOURCE_UNAVAILABLE, RetryPolicy, short
from proxnix.sources.flake.checks import (
    CommitRejected,
    check_commit,
    check_image_types,
    node_of,
    used_image_types,
)
from proxnix.sources.flake.nix_commands import FlakeRef
from proxnix.sources.flake.nix_outputs import ImageProbe
from proxnix.sources.flake.plan import Existing, Plan, make_plan, owner_description
from proxnix.sources.flake.render import Image, render_object
from proxnix.sources.flake.vms import FlakeFormatError, FlakeVM, parse_vms_json
from proxnix.sources.gitsource import GitCredentials, refspec

VMS = proxmoxvm.INFO.plural
STORE_PATH = re.compile(r"^/nix/store/[0-9a-z]{32}-[^/]+")
NODES = proxmoxnode.INFO.plural
# nix failures that may pass by themselves (retried); any other (an evaluation or build error) waits for a new commit.
_NIX_TRANSIENT = (NixErrorKind.TIMEOUT, NixErrorKind.NIX_MISSING)


class StepFailed(Exception):
    """A step cannot go on: the problem (for the summariser) and the retry policy (None: wait for a change)."""

    def __init__(self, problem: Problem, retry: RetryPolicy | None = None) -> None:
        super().__init__(problem.message)
        self.problem = problem
        self.retry = retry


@dataclass(frozen=True)
class World:
    """The namespace as the checks and the plan see it: its ProxmoxVMs and the names of its ProxmoxNodes."""

    vms: list[Existing]
    nodes: frozenset[str]


@dataclass(frozen=True)
class Evaluated:
    """A commit's VMs (checked) and where each used image's qcow2 will be."""

    vms: dict[str, FlakeVM]
    probes: list[ImageProbe]


@dataclass(frozen=True)
class Built:
    """A commit ready to apply: its VMs and built images (by image type). Kept per GitRepo for its revision, so a
    re-check of the same revision (a poll, a readiness check) neither evaluates nor builds again."""

    revision: str
    flake_path: str
    vms: dict[str, FlakeVM]
    images: dict[str, BuiltImage]


# --- 1. fetch ---------------------------------------------------------------------------------------------------------


async def credentials(cluster: Cluster, ref: GitRepoRef, status: GitRepoStatus) -> GitCredentials | None:
    """The credentials of the GitRepo's Secret (None without `secretRef`)."""
    if ref.spec.secret_ref is None:
        return None
    name = ref.spec.secret_ref.name
    data = await cluster.read_secret(ref.namespace, name)
    if data is None:
        message = f"Secret {name!r} (spec.secretRef) does not exist"
        report.fetch_failed(status, ref.generation, "SecretNotFound", message)
        raise StepFailed(Problem("SecretNotFound", message), SOURCE_UNAVAILABLE)
    return GitCredentials.from_secret(data)


async def fetch(
    source: Source, ref: GitRepoRef, creds: GitCredentials | None, status: GitRepoStatus
) -> Fetched:
    """Fetch the followed ref into the GitRepo's cache and resolve its head (the webhook's revision is a hint only:
    what is applied is always the head as fetched)."""
    what = refspec(ref.spec.ref).description
    try:
        result = await source.fetch(ref.key, ref.spec.url, ref.spec.ref, creds)
    except GitError as exc:
        report.fetch_failed(status, ref.generation, exc.kind.value, exc.message)
        raise StepFailed(Problem(exc.kind.value, exc.message), SOURCE_UNAVAILABLE) from None
    report.fetched(status, ref.generation, what, result)
    return result


# --- 2. evaluate ------------------------------------------------------------------------------------------------------


async def observe(cluster: Cluster, ref: GitRepoRef) -> World:
    """The namespace's ProxmoxVMs and ProxmoxNodes."""
    vms = await cluster.list_objects(VMS, ref.namespace)
    nodes = await cluster.list_objects(NODES, ref.namespace)
    return World(
        vms=[Existing.from_object(obj) for obj in vms],
        nodes=frozenset(str((obj.get("metadata") or {}).get("name", "")) for obj in nodes),
    )


def claimed_vmids(world: World, ref: GitRepoRef, vms: Mapping[str, FlakeVM]) -> dict[int, str]:
    """VMIDs the namespace's other ProxmoxVMs use (not this GitRepo's, and not an orphan it is about to adopt)."""
    wanted = {vm.object_name for vm in vms.values()}
    claimed: dict[int, str] = {}
    for existing in world.vms:
        if existing.owned_by(ref.owner) or (existing.adoptable(ref.owner) and existing.name in wanted):
            continue
        vmid = existing.spec.get("vmid")
        if isinstance(vmid, int):
            claimed[vmid] = f"ProxmoxVM {existing.name} ({owner_description(existing)})"
    return claimed


def check(vms: Mapping[str, FlakeVM], ref: GitRepoRef, world: World) -> None:
    """Every VM can be applied (`check_commit`): raises `CommitRejected`."""
    check_commit(
        vms,
        default_node=ref.spec.default_node,
        known_nodes=world.nodes,
        claimed_vmids=claimed_vmids(world, ref, vms),
    )


def rejected(ref: GitRepoRef, revision: str, problem: Problem, status: GitRepoStatus) -> StepFailed:
    """The commit is not applied: Applied=False with the problem; what to raise."""
    return StepFailed(report.not_applied(status, ref.generation, revision, problem))


async def evaluate(
    builder: Builder, flake: FlakeRef, ref: GitRepoRef, revision: str, world: World, status: GitRepoStatus
) -> Evaluated:
    """`nix eval` the flake's `proxnix` output, parse and check it, and probe the used images."""
    try:
        text = await builder.evaluate(flake)
        vms = parse_vms_json(text)
        check(vms, ref, world)
        probes = await builder.probe(flake, used_image_types(vms))
        check_image_types(vms, probes.keys())
    except NixError as exc:
        transient = exc.kind in _NIX_TRANSIENT
        problem = Problem(exc.kind.value, exc.message, stalled=not transient)
        failed = rejected(ref, revision, problem, status)
        raise StepFailed(failed.problem, NIX_TRANSIENT if transient else None) from None
    except FlakeFormatError as exc:
        raise _rejected_commit(ref, revision, CommitRejected.from_format_error(exc), status) from None
    except CommitRejected as exc:
        raise _rejected_commit(ref, revision, exc, status) from None
    return Evaluated(vms=vms, probes=list(probes.values()))


def _rejected_commit(
    ref: GitRepoRef, revision: str, exc: CommitRejected, status: GitRepoStatus
) -> StepFailed:
    return rejected(ref, revision, Problem(exc.reason.value, exc.message, stalled=True), status)


# --- 3. build ---------------------------------------------------------------------------------------------------------


async def build(
    builder: Builder,
    flake: FlakeRef,
    ref: GitRepoRef,
    revision: str,
    evaluated: Evaluated,
    status: GitRepoStatus,
) -> Built:
    """Build the used images (one nix invocation) and keep them alive with the GitRepo's GC roots."""
    try:
        images = await builder.build(
            ref.key, revision, flake, evaluated.probes, report.known_sha256(ref.status)
        )
        await builder.add_roots(ref.key, sorted({image.store_path for image in images.values()}))
    except NixError as exc:
        transient = exc.kind in _NIX_TRANSIENT
        report.build_failed(status, ref.generation, exc.kind.value, exc.message)
        problem = Problem(exc.kind.value, exc.message, stalled=not transient)
        failed = rejected(ref, revision, problem, status)
        raise StepFailed(failed.problem, NIX_TRANSIENT if transient else None) from None
    report.built(status, ref.generation, revision)
    return Built(revision=revision, flake_path=ref.spec.flake_path, vms=evaluated.vms, images=images)


# --- 4. plan and apply ------------------------------------------------------------------------------------------------


def render(ref: GitRepoRef, built: Built) -> list[dict[str, Any]]:
    """One ProxmoxVM object per VM, its image the built qcow2 and its sha256 (the checks ensured a node each)."""
    objects = []
    for vm in built.vms.values():
        node = node_of(vm, ref.spec.default_node)
        assert node is not None  # check_commit refused VMs without a node
        image = built.images[vm.image_type]
        objects.append(render_object(vm, node, Image(path=image.file, sha256=image.sha256), ref.owner))
    return objects


async def plan(cluster: Cluster, ref: GitRepoRef, built: Built, status: GitRepoStatus) -> Plan:
    """The plan against a fresh view of the namespace (the commit checked again on it); a prune over the limit
    holds the whole revision until confirmed."""
    world = await observe(cluster, ref)
    try:
        check(built.vms, ref, world)
    except CommitRejected as exc:
        raise _rejected_commit(ref, built.revision, exc, status) from None
    result = make_plan(
        render(ref, built),
        world.vms,
        ref.owner,
        revision=built.revision,
        prune=ref.spec.prune,
        prune_limit=ref.spec.prune_limit,
        confirmed_revision=ref.confirm_prune or None,
    )
    if result.held:
        status.last_plan = result.summary(built.revision)
        raise rejected(ref, built.revision, Problem("PruneLimitExceeded", result.held, stalled=True), status)
    return result


async def apply(cluster: Cluster, ref: GitRepoRef, todo: Plan, revision: str, status: GitRepoStatus) -> None:
    """Create the new ProxmoxVMs, then patch the changed ones (a no-op commit writes nothing)."""
    try:
        for body in todo.creates:
            await cluster.create_object(VMS, ref.namespace, body)
        for patch in todo.patches:
            await cluster.patch_object(VMS, ref.namespace, patch.name, patch.body)
    except KubeError as exc:
        failed = rejected(ref, revision, Problem("ApplyFailed", short(exc)), status)
        raise StepFailed(failed.problem, APPLY_FAILED) from None


# --- 5. prune ---------------------------------------------------------------------------------------------------------


async def prune(cluster: Cluster, ref: GitRepoRef, todo: Plan, revision: str, status: GitRepoStatus) -> None:
    """Delete the ProxmoxVMs that left the flake (each VM then follows its own deletionPolicy)."""
    try:
        for name in todo.deletes:
            await cluster.delete_object(VMS, ref.namespace, name)
    except KubeError as exc:
        failed = rejected(ref, revision, Problem("PruneFailed", short(exc)), status)
        raise StepFailed(failed.problem, APPLY_FAILED) from None


def not_applied(todo: Plan, revision: str) -> Problem | None:
    """VMs of the flake the plan could not apply (a name clash, a node or VMID change): Ready=False naming them."""
    if not todo.unapplied:
        return None
    return Problem(
        "VMsNotApplied",
        f"{len(todo.unapplied)} VMs of {report.short_sha(revision)} not applied: {todo.not_applied()}",
    )


# --- 6. readiness -----------------------------------------------------------------------------------------------------


def not_ready(obj: Mapping[str, Any]) -> str | None:
    """Why a ProxmoxVM is not Ready for its current generation (None when it is)."""
    meta = obj.get("metadata") or {}
    generation = int(meta.get("generation") or 0)
    vm_status = proxmoxvm.ProxmoxVMStatus.model_validate(obj.get("status") or {})
    ready = find_condition(vm_status.conditions, ConditionType.READY)
    if meta.get("deletionTimestamp"):
        return "being deleted"
    if vm_status.observed_generation < generation or ready is None or ready.observed_generation < generation:
        return "not reconciled yet"
    if ready.status != "True":
        return f"{ready.reason}: {ready.message}" if ready.message else ready.reason
    return None


@dataclass(frozen=True)
class Readiness:
    """The owned ProxmoxVMs, which are not Ready (name → why), and the store paths their images are in (a
    protected VM keeps an older image: its GC root must stay)."""

    inventory: list[InventoryEntry]
    waiting: dict[str, str]
    store_paths: frozenset[str] = frozenset()

    def problem(self, revision: str) -> Problem | None:
        if not self.waiting:
            return None
        names = ", ".join(f"{name} ({why})" for name, why in sorted(self.waiting.items()))
        return Problem(
            "VMsNotReady",
            f"{len(self.waiting)} ProxmoxVMs not Ready for {report.short_sha(revision)}: {names}",
        )


async def readiness(cluster: Cluster, ref: GitRepoRef) -> Readiness:
    """The inventory (the ProxmoxVMs this GitRepo controls) and which are not Ready for their generation."""
    inventory: list[InventoryEntry] = []
    waiting: dict[str, str] = {}
    store_paths: set[str] = set()
    for obj in await cluster.list_objects(VMS, ref.namespace):
        existing = Existing.from_object(obj)
        if not existing.owned_by(ref.owner):
            continue
        spec = existing.spec
        vmid = spec.get("vmid")
        inventory.append(
            InventoryEntry(
                name=existing.name, vmid=vmid if isinstance(vmid, int) else 0, node=str(spec.get("node", ""))
            )
        )
        why = not_ready(obj)
        if why is not None:
            waiting[existing.name] = why
        image = spec.get("image")
        found = STORE_PATH.match(str(image.get("source", ""))) if isinstance(image, Mapping) else None
        if found is not None:
            store_paths.add(found.group(0))
    return Readiness(
        inventory=sorted(inventory, key=lambda e: e.name), waiting=waiting, store_paths=frozenset(store_paths)
    )
