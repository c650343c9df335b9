"""The Kubernetes API, as proxnix uses it: the project's only importer of the `kubernetes` client library.

Holds: loading a client configuration (an explicit kubeconfig, in-cluster service account, or `$KUBECONFIG` read at
call time — the library reads `$KUBECONFIG` at import, which is too early for tests), and every write proxnix makes
(kopf only watches and calls the handlers): get/list/create/merge-patch/delete proxnix objects, merge-patch their
status subresource (progress and final status alike), post Events, read a Secret (or one key of it). The webhook's
GitRepo calls (`list_gitrepos`, `patch_gitrepo_annotations`) are those generic calls on the GitRepo kind.
The client is synchronous; each call runs in a worker thread (`asyncio.to_thread`) so the event loop never blocks.
Errors surface as `KubeError` (with the HTTP status when there is one); a missing object is `None` or `NotFound`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from proxnix.api.clock import now_rfc3339
from proxnix.api.gitrepo import INFO as GITREPO_INFO
from proxnix.api.kinds import ObjectRef
from proxnix.api.meta import API_VERSION, GROUP, VERSION

T = TypeVar("T")

_MERGE_PATCH = "application/merge-patch+json"
_IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"
COMPONENT = "proxnix"
MAX_EVENT_MESSAGE = 1024


class KubeError(Exception):
    """A Kubernetes API call failed; `status` is the HTTP status (0: no response)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):
    """The object does not exist (HTTP 404)."""


def _error(exc: ApiException, what: str) -> KubeError:
    status = int(exc.status or 0)
    kind = NotFound if status == 404 else KubeError
    return kind(f"{what}: HTTP {status} {exc.reason}", status)


async def _in_thread(what: str, fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking client call in a worker thread; transport failures become `KubeError` (status 0)."""
    try:
        return await asyncio.to_thread(fn, *args)
    except KubeError:
        raise
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise KubeError(f"{what}: {exc}") from None


def load_configuration(kubeconfig: str | None = None, context: str | None = None) -> client.Configuration:
    """A client configuration: `kubeconfig` if given, else in-cluster, else `$KUBECONFIG`, else ~/.kube/config."""
    configuration = client.Configuration()
    try:
        if kubeconfig is None and os.environ.get(_IN_CLUSTER_ENV):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return configuration
        path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=path, context=context, client_configuration=configuration, persist_config=False
        )
    except (ConfigException, OSError) as exc:
        raise KubeError(f"cannot load Kubernetes configuration: {exc}") from None
    return configuration


class KubeApi:
    """The API calls proxnix makes, async over the synchronous client (one connection pool, shared by threads).

    Every call gives up after `timeout` seconds, so a hung API server delays a webhook answer, never blocks it forever.
    """

    def __init__(self, configuration: client.Configuration, *, timeout: float = 10.0) -> None:
        self._timeout = timeout
        self._api_client = client.ApiClient(configuration)
        self._custom = client.CustomObjectsApi(self._api_client)
        self._core = client.CoreV1Api(self._api_client)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeApi:
        """A client for `load_configuration(kubeconfig, context)`."""
        return cls(load_configuration(kubeconfig, context))

    def close(self) -> None:
        """Close the connection pool."""
        self._api_client.close()  # type: ignore[no-untyped-call]

    # --- proxnix objects ----------------------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, _request_timeout=self._timeout, **kwargs)
        except ApiException as exc:
            raise _error(exc, what) from None

    def _named(self, verb: str, fn: Callable[..., Any], plural: str, namespace: str, name: str) -> Any:
        """One call on a named object of a proxnix kind; `NotFound` when it does not exist."""
        return self._call(f"{verb} {plural} {namespace}/{name}", fn, GROUP, VERSION, namespace, plural, name)

    def _get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = self._named("get", self._custom.get_namespaced_custom_object, plural, namespace, name)
        except NotFound:
            return None
        return found if isinstance(found, dict) else None

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Object `namespace/name` of a proxnix kind (as JSON); None if it does not exist."""
        return await _in_thread(f"get {plural}", self._get, plural, namespace, name)

    def _list(self, plural: str, namespace: str | None, label_selector: str) -> list[dict[str, Any]]:
        what = f"list {plural} in {namespace or 'all namespaces'}"
        selector = {"label_selector": label_selector} if label_selector else {}
        if namespace is None:
            result = self._call(
                what,
                self._custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                plural,
                **selector,
            )
        else:
            result = self._call(
                what,
                self._custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                **selector,
            )
        items = result.get("items", []) if isinstance(result, dict) else []
        return [item for item in items if isinstance(item, dict)]

    async def list_objects(
        self, plural: str, namespace: str | None, *, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        """Every object of a proxnix kind in `namespace` (all namespaces when None), optionally by label selector."""
        return await _in_thread(f"list {plural}", self._list, plural, namespace, label_selector)

    def _create(self, plural: str, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        created = self._call(
            f"create {plural} in {namespace}",
            self._custom.create_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            {"apiVersion": API_VERSION, **body},
        )
        return created if isinstance(created, dict) else {}

    async def create_object(self, plural: str, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create an object of a proxnix kind (`body` with kind, metadata, spec); `KubeError` 409 if it exists."""
        return await _in_thread(f"create {plural}", self._create, plural, namespace, body)

    def _patch(self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        patched = self._call(
            f"patch {plural} {namespace}/{name}",
            self._custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            dict(patch),
            _content_type=_MERGE_PATCH,
        )
        return patched if isinstance(patched, dict) else {}

    async def patch_object(
        self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch an object of a proxnix kind (RFC 7386: what the patch does not name is kept; null deletes);
        `NotFound` if it is gone."""
        return await _in_thread(f"patch {plural}", self._patch, plural, namespace, name, patch)

    def _delete(self, plural: str, namespace: str, name: str) -> bool:
        try:
            self._named("delete", self._custom.delete_namespaced_custom_object, plural, namespace, name)
        except NotFound:
            return False
        return True

    async def delete_object(self, plural: str, namespace: str, name: str) -> bool:
        """Delete an object of a proxnix kind (finalizers still apply); False if it was already gone."""
        return await _in_thread(f"delete {plural}", self._delete, plural, namespace, name)

    def _patch_status(self, ref: ObjectRef, status: Mapping[str, Any]) -> None:
        self._call(
            f"patch {ref} status",
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            ref.namespace,
            ref.kind.plural,
            ref.name,
            {"status": dict(status)},
            _content_type=_MERGE_PATCH,
        )

    async def patch_status(self, ref: ObjectRef, status: Mapping[str, Any]) -> None:
        """Merge-patch the status subresource of a proxnix object (progress reports and the final status)."""
        await _in_thread("patch status", self._patch_status, ref, status)

    def _post_event(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        stamp = now_rfc3339()
        if len(message) > MAX_EVENT_MESSAGE:
            message = message[: MAX_EVENT_MESSAGE - 1] + "…"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": ref.kind.kind,
                "name": ref.name,
                "namespace": ref.namespace,
                "uid": ref.uid,
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self._call(f"post event on {ref}", self._core.create_namespaced_event, ref.namespace, body)

    async def post_event(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        """Record a core/v1 Event (`Normal` or `Warning`) on a proxnix object."""
        await _in_thread("post event", self._post_event, ref, type_, reason, message)

    # --- the webhook's GitRepo calls -------------------------------------------------------------------------------

    async def list_gitrepos(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every GitRepo object (as JSON dicts) in `namespace`, or in all namespaces when None."""
        return await self.list_objects(GITREPO_INFO.plural, namespace)

    async def patch_gitrepo_annotations(
        self, namespace: str, name: str, annotations: Mapping[str, str]
    ) -> None:
        """Merge-patch GitRepo `namespace/name`'s annotations (other annotations are kept); `NotFound` if gone."""
        await self.patch_object(
            GITREPO_INFO.plural, namespace, name, {"metadata": {"annotations": dict(annotations)}}
        )

    # --- kopf's peering ---------------------------------------------------------------------------------------------

    def _served(self, group: str, version: str) -> set[str]:
        try:
            found = self._call(f"discover {group}/{version}", self._custom.get_api_resources, group, version)
        except NotFound:
            return set()
        return {resource.name for resource in (found.resources or [])}

    async def served_resources(self, group: str, version: str) -> set[str]:
        """The plural names the API serves in `group/version` (discovery; empty when the group is not served)."""
        return await _in_thread(f"discover {group}/{version}", self._served, group, version)

    def _exists(self, group: str, version: str, plural: str, namespace: str | None, name: str) -> bool:
        what = f"get {plural}.{group} {namespace + '/' if namespace else ''}{name}"
        try:
            if namespace is None:
                self._call(what, self._custom.get_cluster_custom_object, group, version, plural, name)
            else:
                self._call(
                    what, self._custom.get_namespaced_custom_object, group, version, namespace, plural, name
                )
        except NotFound:
            return False
        return True

    async def exists(self, group: str, version: str, plural: str, namespace: str | None, name: str) -> bool:
        """Whether a custom object of another group exists (`namespace` None: cluster-scoped)."""
        return await _in_thread(
            f"get {plural}.{group}", self._exists, group, version, plural, namespace, name
        )

    # --- Secrets ---------------------------------------------------------------------------------------------------

    def _read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        try:
            secret = self._core.read_namespaced_secret(name, namespace, _request_timeout=self._timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _error(exc, f"read secret {namespace}/{name}") from None
        decoded: dict[str, bytes] = {}
        # A real API server folds stringData into data on write; test servers may hand it back as written.
        for key, plain in (secret.string_data or {}).items():
            decoded[key] = plain.encode()
        data: Mapping[str, bytes | str] = secret.data or {}
        for key, value in data.items():
            try:
                decoded[key] = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise KubeError(f"secret {namespace}/{name} key {key!r} is not valid base64") from None
        return decoded

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """Every key of Secret `namespace/name`, decoded; None if the Secret does not exist."""
        return await _in_thread("read secret", self._read_secret, namespace, name)

    async def read_secret_key(self, namespace: str, name: str, key: str) -> bytes | None:
        """The decoded value of `key` in Secret `namespace/name`; None if the Secret or the key does not exist."""
        data = await self.read_secret(namespace, name)
        return None if data is None else data.get(key)
