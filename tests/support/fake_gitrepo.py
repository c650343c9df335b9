"""In-memory fakes of the GitRepo reconcile's I/O (`proxnix.reconcile.gitrepo.ports`): a git source whose branch
heads a test sets, a nix that answers with the real captured `nix eval` outputs (tests/fixtures/nix) per revision,
and a namespace of Kubernetes objects. No server, no git, no nix: the steps and safety rules are unit-tested against
these. Every write the reconcile asks for is recorded (`FakeCluster.writes`, `FakeBuilder.calls`) before it is done.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxnix.adapters.git import Fetched, GitError, RepoKey
from proxnix.adapters.kube import KubeError
from proxnix.adapters.nix import BuiltImage, NixError, NixErrorKind
from proxnix.api.gitrepo import GitRef
from proxnix.sources.flake.nix_commands import FlakeRef, ImageAttr
from proxnix.sources.flake.nix_outputs import ImageProbe
from proxnix.sources.gitsource import GitCredentials
from proxnix_testbed.kubeapi.patches import apply_merge_patch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nix"
VMS = "proxmoxvms"
NODES = "proxmoxnodes"


def captured_eval(variant: str) -> dict[str, Any]:
    """A real `nix eval --json <flake>#proxnix` output of a test flake variant."""
    data: dict[str, Any] = json.loads((FIXTURES / f"eval-{variant}.json").read_text())
    return data


def captured_eval_error() -> str:
    """Real nix stderr of an evaluation error."""
    return (FIXTURES / "eval-eval-error.stderr").read_text()


def revision(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()[:40]


# --- git ----------------------------------------------------------------------------------------------------------------


class FakeSource:
    """Branch heads set by the test; checkouts are empty folders named by the revision (the fake nix reads it)."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.heads: dict[str, Fetched] = {}
        self.error: GitError | None = None
        self.checkout_error: GitError | None = None
        self.calls: list[tuple[str, str]] = []
        self.credentials: list[GitCredentials | None] = []
        self.forgotten: list[RepoKey] = []

    def push(self, branch: str, rev: str, message: str = "a commit") -> None:
        self.heads[branch] = Fetched(revision=rev, message=message)

    async def fetch(
        self, key: RepoKey, url: str, ref: GitRef, credentials: GitCredentials | None = None
    ) -> Fetched:
        self.calls.append(("fetch", ref.branch or ref.tag or ref.commit or ""))
        self.credentials.append(credentials)
        if self.error is not None:
            raise self.error
        return self.heads[ref.branch or "main"]

    @contextlib.asynccontextmanager
    async def checkout(
        self,
        key: RepoKey,
        revision: str,
        *,
        url: str,
        credentials: GitCredentials | None = None,
        submodules: bool = False,
    ) -> AsyncIterator[Path]:
        self.calls.append(("checkout", revision))
        if self.checkout_error is not None:
            raise self.checkout_error
        folder = self.scratch / revision
        folder.mkdir(parents=True, exist_ok=True)
        yield folder

    def forget(self, key: RepoKey) -> None:
        self.forgotten.append(key)


# --- nix ----------------------------------------------------------------------------------------------------------------


@dataclass
class FakeCommit:
    """What nix says about one revision: its `proxnix` output (or an evaluation error), the label of each image
    the flake has (a changed label is a changed store path), and an optional build error."""

    output: dict[str, Any] | None
    labels: dict[str, str] = field(default_factory=lambda: {"web": "web-v1", "db": "db-v1"})
    eval_error: str = ""
    build_error: str = ""


def store_path(image_type: str, label: str) -> str:
    digest = hashlib.sha256(f"{image_type}:{label}".encode()).hexdigest()
    alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
    name = "".join(alphabet[int(digest[i : i + 2], 16) % 32] for i in range(0, 64, 2))
    return f"/nix/store/{name}-{image_type}-{label}"


class FakeBuilder:
    """nix per revision (see `FakeCommit`); GC roots per GitRepo as a set of store paths."""

    def __init__(self) -> None:
        self.commits: dict[str, FakeCommit] = {}
        self.calls: list[tuple[str, str]] = []
        self.roots: dict[RepoKey, set[str]] = {}

    def commit(self, rev: str, output: dict[str, Any] | None, **labels: str) -> None:
        self.commits[rev] = FakeCommit(output, labels={"web": "web-v1", "db": "db-v1", **labels})

    def _commit(self, flake: FlakeRef) -> tuple[str, FakeCommit]:
        rev = Path(flake.checkout).name
        return rev, self.commits[rev]

    async def evaluate(self, flake: FlakeRef) -> str:
        rev, commit = self._commit(flake)
        self.calls.append(("evaluate", rev))
        if commit.eval_error:
            raise NixError(NixErrorKind.EVAL_FAILED, commit.eval_error)
        return json.dumps(commit.output)

    async def probe(self, flake: FlakeRef, image_types: Sequence[str]) -> dict[str, ImageProbe]:
        rev, commit = self._commit(flake)
        self.calls.append(("probe", rev))
        return {
            name: ImageProbe(name, ImageAttr.QCOW2, store_path(name, commit.labels[name]), "nixos.qcow2")
            for name in image_types
            if name in commit.labels
        }

    async def build(
        self,
        key: RepoKey,
        revision: str,
        flake: FlakeRef,
        probes: Sequence[ImageProbe],
        known_sha256: Mapping[str, str] | None = None,
    ) -> dict[str, BuiltImage]:
        _, commit = self._commit(flake)
        self.calls.append(("build", revision))
        if commit.build_error:
            raise NixError(NixErrorKind.BUILD_FAILED, commit.build_error)
        return {
            p.image_type: BuiltImage(
                p.image_type, p.out_path, p.image_file, hashlib.sha256(p.out_path.encode()).hexdigest()
            )
            for p in probes
        }

    async def add_roots(self, key: RepoKey, store_paths: Sequence[str]) -> None:
        self.roots.setdefault(key, set()).update(store_paths)

    def drop_roots(self, key: RepoKey, keep: Sequence[str] = ()) -> list[str]:
        held = self.roots.setdefault(key, set())
        dropped = sorted(held - set(keep))
        held.intersection_update(keep)
        return dropped

    def builds(self) -> list[str]:
        return [rev for verb, rev in self.calls if verb == "build"]

    def evaluations(self) -> list[str]:
        return [rev for verb, rev in self.calls if verb == "evaluate"]


class FakeTimer:
    """The reconcile's `StepTimer`: every (step, seconds) reported, in order."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float]] = []

    def observe_step(self, step: str, seconds: float) -> None:
        self.steps.append((step, seconds))

    def names(self) -> list[str]:
        return [step for step, _ in self.steps]


# --- Kubernetes -----------------------------------------------------------------------------------------------------


class FakeCluster:
    """One namespace's objects by (plural, name); generation bumps on a spec change, as the API server does."""

    def __init__(self, namespace: str = "default") -> None:
        self.namespace = namespace
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, bytes]] = {}
        self.writes: list[tuple[str, str]] = []
        self.fail: set[str] = set()
        # As the API server does for objects with finalizers (every ProxmoxVM has the operator's): a delete only
        # marks the object; `finish_deletions()` plays the VM controller letting them go.
        self.finalizers = False

    def add(self, plural: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        stored = copy.deepcopy(dict(obj))
        meta = stored.setdefault("metadata", {})
        meta.setdefault("namespace", self.namespace)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("generation", 1)
        self.objects[(plural, meta["name"])] = stored
        return stored

    def node(self, name: str) -> None:
        self.add(NODES, {"kind": "ProxmoxNode", "metadata": {"name": name}, "spec": {}})

    def vm(self, name: str) -> dict[str, Any] | None:
        return self.objects.get((VMS, name))

    def vm_names(self) -> list[str]:
        return sorted(name for plural, name in self.objects if plural == VMS)

    def mark_ready(self, *names: str) -> None:
        """What the VM controller reports once a ProxmoxVM's VM matches its generation."""
        for name in names or self.vm_names():
            obj = self.objects[(VMS, name)]
            generation = obj["metadata"]["generation"]
            obj["status"] = {
                "observedGeneration": generation,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Succeeded",
                        "observedGeneration": generation,
                    }
                ],
            }

    def _check(self, verb: str) -> None:
        if verb in self.fail:
            raise KubeError(f"{verb}: HTTP 500 injected", 500)

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        self._check("read_secret")
        return self.secrets.get(name)

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        self._check("get")
        found = self.objects.get((plural, name))
        return copy.deepcopy(found) if found is not None else None

    async def list_objects(
        self, plural: str, namespace: str | None, *, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        self._check("list")
        return [copy.deepcopy(obj) for (kind, _), obj in sorted(self.objects.items()) if kind == plural]

    async def create_object(self, plural: str, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        self.writes.append(("create", name))
        self._check("create")
        if (plural, name) in self.objects:
            raise KubeError(f"create {plural}: HTTP 409 AlreadyExists", 409)
        return copy.deepcopy(self.add(plural, body))

    async def patch_object(
        self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.writes.append(("patch", name))
        self._check("patch")
        obj = self.objects[(plural, name)]
        patched = apply_merge_patch(obj, patch)
        if patched.get("spec") != obj.get("spec"):
            patched["metadata"]["generation"] = obj["metadata"]["generation"] + 1
        self.objects[(plural, name)] = patched
        return copy.deepcopy(patched)

    async def delete_object(self, plural: str, namespace: str, name: str) -> bool:
        self.writes.append(("delete", name))
        self._check("delete")
        if self.finalizers and (plural, name) in self.objects:
            self.objects[(plural, name)]["metadata"]["deletionTimestamp"] = "2026-12-02T00:00:00Z"
            return True
        return self.objects.pop((plural, name), None) is not None

    def finish_deletions(self) -> None:
        """The marked objects go (their finalizers were removed)."""
        for key in [k for k, o in self.objects.items() if o["metadata"].get("deletionTimestamp")]:
            del self.objects[key]
