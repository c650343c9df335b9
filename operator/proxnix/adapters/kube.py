"""The Kubernetes API, as proxnix uses it: the project's only importer of the `kubernetes` client library.

Holds: loading a client configuration (an explicit kubeconfig, in-cluster service account, or `$KUBECONFIG` read at
call time — the library reads `$KUBECONFIG` at import, which is too early for tests), and the few calls proxnix
makes beside kopf: list GitRepos (one namespace or all), read a Secret (or one key of it), merge-patch an object's
annotations (the webhook) or its status subresource (progress reports during long operations).
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

from proxnix.api.gitrepo import INFO as GITREPO_INFO
from proxnix.api.meta import GROUP, VERSION

T = TypeVar("T")

_MERGE_PATCH = "application/merge-patch+json"
_IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"


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

    def _list_gitrepos(self, namespace: str | None) -> list[dict[str, Any]]:
        plural = GITREPO_INFO.plural
        try:
            if namespace is None:
                result = self._custom.list_cluster_custom_object(
                    GROUP, VERSION, plural, _request_timeout=self._timeout
                )
            else:
                result = self._custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, plural, _request_timeout=self._timeout
                )
        except ApiException as exc:
            raise _error(exc, f"list {plural} in {namespace or 'all namespaces'}") from None
        items = result.get("items", []) if isinstance(result, dict) else []
        return [item for item in items if isinstance(item, dict)]

    async def list_gitrepos(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every GitRepo object (as JSON dicts) in `namespace`, or in all namespaces when None."""
        return await _in_thread("list gitrepos", self._list_gitrepos, namespace)

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

    def _patch_gitrepo_annotations(self, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
        body = {"metadata": {"annotations": dict(annotations)}}
        try:
            self._custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                GITREPO_INFO.plural,
                name,
                body,
                _content_type=_MERGE_PATCH,
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            raise _error(exc, f"patch {GITREPO_INFO.plural} {namespace}/{name}") from None

    async def patch_gitrepo_annotations(
        self, namespace: str, name: str, annotations: Mapping[str, str]
    ) -> None:
        """Merge-patch GitRepo `namespace/name`'s annotations (other annotations are kept); `NotFound` if gone."""
        await _in_thread("patch gitrepo", self._patch_gitrepo_annotations, namespace, name, annotations)

    def _patch_status(self, plural: str, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        try:
            self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                {"status": dict(status)},
                _content_type=_MERGE_PATCH,
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            raise _error(exc, f"patch {plural} {namespace}/{name} status") from None

    async def patch_status(self, plural: str, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patch the status subresource of a proxnix object (progress reports during long operations)."""
        await _in_thread("patch status", self._patch_status, plural, namespace, name, status)
