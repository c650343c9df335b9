"""The API semantics, independent of HTTP: what create, update, patch and delete do to stored objects.

`ApiCore` owns the registry, the store and the compiled CRD schemas, and applies the apiserver's rules:
server-owned metadata (uid, resourceVersion, creationTimestamp, generation), generateName, name and metadata
validation, namespaces that must exist (and stop taking content while terminating), optimistic concurrency,
the /status subresource split, finalizers and deletion, pruning/defaulting/validation of custom objects,
CRD registration and cleanup, and the kind-specific touches of Namespaces and Secrets.
"""

from __future__ import annotations

import copy
import datetime
import secrets
import uuid
from collections.abc import Iterable
from typing import Any

from proxnix_testbed.kubeapi import admission, crds, errors
from proxnix_testbed.kubeapi.errors import cause
from proxnix_testbed.kubeapi.patches import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)
from proxnix_testbed.kubeapi.registry import Registry, ResourceType, builtin_types
from proxnix_testbed.kubeapi.schemas import StructuralSchema
from proxnix_testbed.kubeapi.store import ObjectStore
from proxnix_testbed.kubeapi.validation import name_errors

NAMESPACES = ("", "v1", "namespaces")
CRDS = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
CRD_CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Metadata fields only the server sets; clients' values are ignored on writes.
SERVER_OWNED_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
)
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply",
}


def now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def _tracks_generation(rt: ResourceType) -> bool:
    return rt.custom or (rt.has_status and rt.key != NAMESPACES)


def _spec_part(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """What a generation covers: everything but metadata (and status, when it is a subresource)."""
    skip = {"metadata", "status"} if rt.has_status else {"metadata"}
    return {k: v for k, v in obj.items() if k not in skip}


def apply_patch(doc: dict[str, Any], patch: Any, patch_type: str) -> dict[str, Any]:
    """The patched copy of `doc` (patch types as in `PATCH_TYPES`); 422 when the patch cannot apply."""
    try:
        if patch_type == "json":
            new = apply_json_patch(doc, patch)
        elif patch_type == "strategic":
            new = apply_strategic_merge_patch(doc, patch)
        else:
            if not isinstance(patch, dict):
                raise PatchError("a merge patch must be a JSON object")
            new = apply_merge_patch(doc, patch)
    except PatchError as exc:
        raise errors.unprocessable(
            f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    if not isinstance(new, dict):
        raise errors.unprocessable("the patched object is not a JSON object")
    return copy.deepcopy(new)


class WriteResult:
    """The outcome of a write: the object to answer with, the HTTP code, and warnings for `Warning:` headers."""

    def __init__(self, obj: dict[str, Any], code: int = 200, warnings: Iterable[str] = ()) -> None:
        self.obj = obj
        self.code = code
        self.warnings = list(warnings)


class ApiCore:
    def __init__(self, watch_history: int = 10_000, namespaces: Iterable[str] = DEFAULT_NAMESPACES) -> None:
        self.registry = Registry()
        self.store = ObjectStore(history_limit=watch_history)
        self.schemas: dict[tuple[str, str, str], StructuralSchema] = {}
        self.registry_generation = 0  # bumped on every registry change (for caches of discovery/OpenAPI)
        for rt in builtin_types():
            self.registry.add(rt)
        ns_type = self.rt(NAMESPACES)
        for name in namespaces:
            self.create(ns_type, None, {"metadata": {"name": name}})

    # -- lookups ---------------------------------------------------------------------------------------------
    def rt(self, key: tuple[str, str, str]) -> ResourceType:
        found = self.registry.get(*key)
        if found is None:
            raise errors.unknown_path()
        return found

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(rt.key, namespace if rt.namespaced else None, name)
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    def namespace_phase(self, name: str) -> str | None:
        ns = self.store.get(NAMESPACES, None, name)
        if ns is None:
            return None
        return str((ns.get("status") or {}).get("phase") or "Active")

    # -- CRDs ------------------------------------------------------------------------------------------------
    def install_crd(self, crd: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a CRD (as `kubectl apply` would); returns the stored CRD."""
        rt = self.rt(CRDS)
        name = _meta(crd).get("name", "")
        existing = self.store.get(CRDS, None, name)
        if existing is None:
            return self.create(rt, None, crd).obj
        body = copy.deepcopy(crd)
        _meta(body)["resourceVersion"] = existing["metadata"]["resourceVersion"]
        body["status"] = existing.get("status", {})
        return self.update(rt, None, name, body).obj

    def _register_crd(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        new_types = crds.resource_types(crd)
        new_keys = {rt.key for rt in new_types}
        for old in self.registry.of_crd(name):
            if old.key not in new_keys:
                self.registry.remove(old.key)
                self.schemas.pop(old.key, None)
        for rt in new_types:
            self.registry.add(rt)
            if rt.schema is not None:
                self.schemas[rt.key] = StructuralSchema(rt.schema)
        self.registry_generation += 1

    def _unregister_crd(self, name: str) -> None:
        for rt in self.registry.of_crd(name):
            self.registry.remove(rt.key)
            self.schemas.pop(rt.key, None)
            self.store.drop_resource(rt.key)
        self.registry_generation += 1

    # -- create ----------------------------------------------------------------------------------------------
    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        field_validation: str = "Warn",
    ) -> WriteResult:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        obj = copy.deepcopy(body)
        admission.check_type(rt, obj)
        meta = _meta(obj)
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if namespace is None:
                raise errors.unknown_path()
            if body_ns and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
            phase = self.namespace_phase(namespace)
            if phase is None:
                raise errors.namespace_not_found(namespace)
            if phase == "Terminating":
                raise errors.forbidden(
                    rt,
                    meta.get("name"),
                    f'{rt.plural} "{meta.get("name") or meta.get("generateName", "")}" is forbidden: unable to create '
                    f"new content in namespace {namespace} because it is being terminated",
                )
        else:
            meta.pop("namespace", None)
        if rt.custom and rt.crd is not None:
            crd = self.store.get(CRDS, None, rt.crd)
            if crd is not None and crd["metadata"].get("deletionTimestamp"):
                raise errors.method_not_allowed(
                    "create not allowed while custom resource definition is terminating"
                )

        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(
                    rt,
                    "",
                    [
                        cause(
                            "metadata.name",
                            "Required value: name or generateName is required",
                            "FieldValueRequired",
                        )
                    ],
                )
            meta["name"] = prefix + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
        name = meta["name"]
        name_causes = [
            cause("metadata.name", f'Invalid value: "{name}": {e}')
            for e in name_errors((rt.group, rt.plural), name)
        ]
        if name_causes:
            raise errors.invalid(rt, name, name_causes)
        if self.store.get(rt.key, meta.get("namespace"), name) is not None:
            raise errors.already_exists(rt, name)

        for key in (*SERVER_OWNED_META, "resourceVersion", "managedFields"):
            meta.pop(key, None)
        if rt.has_status and rt.custom:
            obj.pop("status", None)
        if rt.key == NAMESPACES:
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        warnings = admission.admit(self.schemas.get(rt.key), rt, obj, None, field_validation)
        if rt.key == CRDS:
            obj["status"] = crds.established_status(obj, now())
            meta.setdefault("finalizers", [CRD_CLEANUP_FINALIZER])

        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if _tracks_generation(rt):
            meta["generation"] = 1
        if dry_run:
            return WriteResult(obj, 201, warnings)
        meta["resourceVersion"] = str(self.store.next_rv())
        self.store.write("ADDED", rt.key, obj, None)
        if rt.key == CRDS:
            self._register_crd(obj)
        return WriteResult(obj, 201, warnings)

    # -- update and patch ------------------------------------------------------------------------------------
    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str = "Warn",
        require_rv: bool | None = None,
    ) -> WriteResult:
        """PUT: replace the object (or its status); a stale or (for custom resources) missing resourceVersion fails."""
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        old = self.get(rt, namespace, name)
        new = copy.deepcopy(body)
        admission.check_type(rt, new)
        meta = _meta(new)
        if meta.get("name") not in (None, name):
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and meta.get("namespace") not in (None, namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        rv = meta.get("resourceVersion")
        if not rv and (require_rv if require_rv is not None else rt.custom):
            raise errors.invalid(
                rt,
                name,
                [cause("metadata.resourceVersion", "Invalid value: 0: must be specified for an update")],
            )
        return self._replace(rt, old, new, subresource, dry_run, field_validation)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch: Any,
        patch_type: str,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str = "Warn",
    ) -> WriteResult:
        if (
            patch_type == "apply"
            and self.store.get(rt.key, namespace if rt.namespaced else None, name) is None
        ):
            # Server-side apply of a new object creates it (no managedFields/ownership tracking here).
            if not isinstance(patch, dict):
                raise errors.bad_request("the body of the request must be a YAML/JSON object")
            body = copy.deepcopy(patch)
            _meta(body).setdefault("name", name)
            return self.create(rt, namespace, body, dry_run=dry_run, field_validation=field_validation)
        old = self.get(rt, namespace, name)
        return self._replace(
            rt, old, apply_patch(old, patch, patch_type), subresource, dry_run, field_validation
        )

    def _replace(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        new: dict[str, Any],
        subresource: str | None,
        dry_run: bool,
        field_validation: str,
    ) -> WriteResult:
        old_meta = old["metadata"]
        name = old_meta["name"]
        new_meta = _meta(new)
        rv = new_meta.get("resourceVersion")
        if rv and str(rv) != old_meta["resourceVersion"]:
            raise errors.conflict(rt, name)

        if subresource == "status":
            # Only status changes count on /status; everything else is taken from the stored object.
            result = copy.deepcopy(old)
            if "status" in new:
                result["status"] = new["status"]
            else:
                result.pop("status", None)
            new = result
            new_meta = new["metadata"]
        else:
            if rt.has_status:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            for key in (*SERVER_OWNED_META, "name", "namespace"):
                if key in old_meta:
                    new_meta[key] = old_meta[key]
                else:
                    new_meta.pop(key, None)
            new_meta.pop("managedFields", None)
            new["apiVersion"], new["kind"] = rt.api_version, rt.kind
            if old_meta.get("deletionTimestamp"):
                added = [
                    f for f in new_meta.get("finalizers") or [] if f not in (old_meta.get("finalizers") or [])
                ]
                if added:
                    raise errors.invalid(
                        rt,
                        name,
                        [
                            cause(
                                "metadata.finalizers",
                                f"Forbidden: no new finalizers can be added if the object is "
                                f"being deleted, found new finalizers {added!r}",
                                "FieldValueForbidden",
                            )
                        ],
                    )
            if rt.key == NAMESPACES:
                new["status"] = copy.deepcopy(old.get("status", {}))
                if new_meta.get("labels", {}).get("kubernetes.io/metadata.name") != name:
                    new_meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        new_meta["resourceVersion"] = old_meta["resourceVersion"]
        warnings = admission.admit(self.schemas.get(rt.key), rt, new, old, field_validation)
        if rt.key == CRDS and subresource != "status":
            new["status"] = crds.established_status(
                new, old.get("status", {}).get("conditions", [{}])[0].get("lastTransitionTime") or now()
            )
        if _tracks_generation(rt) and _spec_part(rt, new) != _spec_part(rt, old):
            new_meta["generation"] = int(old_meta.get("generation") or 1) + 1

        if new == old:
            return WriteResult(old, 200, warnings)  # a no-op write: no new resourceVersion, no watch event
        if dry_run:
            return WriteResult(new, 200, warnings)
        new_meta["resourceVersion"] = str(self.store.next_rv())
        self.store.write("MODIFIED", rt.key, new, old)
        if rt.key == CRDS:
            self._register_crd(new)
        if new_meta.get("deletionTimestamp") and not new_meta.get("finalizers"):
            self._remove(rt, new)
        return WriteResult(new, 200, warnings)

    # -- delete ----------------------------------------------------------------------------------------------
    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        options: Any = None,
        *,
        dry_run: bool = False,
    ) -> WriteResult:
        old = self.get(rt, namespace, name)
        meta = old["metadata"]
        preconditions = (options.get("preconditions") or {}) if isinstance(options, dict) else {}
        if preconditions.get("uid") and preconditions["uid"] != meta["uid"]:
            raise errors.precondition_failed(rt, name, "UID", preconditions["uid"], meta["uid"])
        wanted_rv = preconditions.get("resourceVersion")
        if wanted_rv and str(wanted_rv) != meta["resourceVersion"]:
            raise errors.precondition_failed(
                rt, name, "ResourceVersion", str(wanted_rv), meta["resourceVersion"]
            )
        if dry_run:
            return WriteResult(old)
        if meta.get("deletionTimestamp"):
            return WriteResult(old)  # already being deleted: nothing changes
        if meta.get("finalizers") or rt.key in (NAMESPACES, CRDS):
            new = copy.deepcopy(old)
            new_meta = new["metadata"]
            new_meta["deletionTimestamp"] = now()
            new_meta["deletionGracePeriodSeconds"] = 0
            if "generation" in new_meta:
                new_meta["generation"] = int(new_meta["generation"]) + 1
            if rt.key == NAMESPACES:
                new["status"] = {"phase": "Terminating"}
            new_meta["resourceVersion"] = str(self.store.next_rv())
            self.store.write("MODIFIED", rt.key, new, old)
            if rt.key == NAMESPACES:
                self._empty_namespace(name)  # may complete the deletion
            elif rt.key == CRDS:
                self._empty_crd(name)  # may complete the deletion
            current = self.store.get(rt.key, meta.get("namespace"), name)
            return WriteResult(current if current is not None else new)
        return WriteResult(self._remove(rt, old) or old)

    def _remove(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Remove an object for good (no finalizers left); cascade for namespaces and CRDs; returns its last state."""
        if rt.key == NAMESPACES and self.store.count_in_namespace(obj["metadata"]["name"]):
            return None  # the namespace goes once its content is gone (see _after_removal)
        if rt.key == CRDS and any(
            self.store.objects(t.key) for t in self.registry.of_crd(obj["metadata"]["name"])
        ):
            return None
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self.store.write("DELETED", rt.key, gone, obj)
        if rt.key == CRDS:
            self._unregister_crd(obj["metadata"]["name"])
        self._after_removal(rt, gone)
        return gone

    def _after_removal(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        namespace = obj["metadata"].get("namespace")
        if (
            namespace
            and self.namespace_phase(namespace) == "Terminating"
            and not self.store.count_in_namespace(namespace)
        ):
            ns = self.store.get(NAMESPACES, None, namespace)
            if ns is not None and not ns["metadata"].get("finalizers"):
                self._remove(self.rt(NAMESPACES), ns)
        if rt.custom and rt.crd is not None:
            crd = self.store.get(CRDS, None, rt.crd)
            deleting = crd is not None and crd["metadata"].get("deletionTimestamp")
            if (
                crd is not None
                and deleting
                and not any(self.store.objects(t.key) for t in self.registry.of_crd(rt.crd))
            ):
                self._release(self.rt(CRDS), crd, CRD_CLEANUP_FINALIZER)

    def _release(self, rt: ResourceType, obj: dict[str, Any], finalizer: str) -> None:
        """Drop one system finalizer (as the owning controller would), which may complete the deletion."""
        finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = finalizers
        if not finalizers:
            del new["metadata"]["finalizers"]
        new["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self.store.write("MODIFIED", rt.key, new, obj)
        if not finalizers:
            self._remove(rt, new)

    def _empty_namespace(self, namespace: str) -> None:
        for key, obj in self.store.in_namespace(namespace):
            found = self.registry.get(*key)
            if found is not None:
                self.delete(found, namespace, obj["metadata"]["name"])
        ns = self.store.get(NAMESPACES, None, namespace)
        if (
            ns is not None
            and not self.store.count_in_namespace(namespace)
            and not ns["metadata"].get("finalizers")
        ):
            self._remove(self.rt(NAMESPACES), ns)

    def _empty_crd(self, crd_name: str) -> None:
        for rt in self.registry.of_crd(crd_name):
            for obj in self.store.objects(rt.key):
                self.delete(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        crd = self.store.get(CRDS, None, crd_name)
        if crd is not None and not any(self.store.objects(t.key) for t in self.registry.of_crd(crd_name)):
            self._release(self.rt(CRDS), crd, CRD_CLEANUP_FINALIZER)
