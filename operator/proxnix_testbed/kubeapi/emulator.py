"""`StrictKubernetesEmulator`: kmock's Kubernetes emulator with the strictness layer, as an HTTP handler.

It keeps kmock's machinery (the aiohttp server, request parsing and recording, the DSL reactions tests may add
to inject faults — they take precedence — and `emulator.objects` with every version of every object) and serves
everything else itself: discovery, OpenAPI v3, and the resource API with the semantics of `ApiCore`, JSON and
Table output, pagination, selectors, watches, dryRun and protobuf bodies from kubectl.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import apps as kmock_apps
from kmock._internal import rendering as kmock_rendering

from proxnix_testbed.kubeapi import discovery, errors, openapi, printing, protobuf, reviews, wire
from proxnix_testbed.kubeapi.aliases import ALIASES, Alias
from proxnix_testbed.kubeapi.core import (
    DEFAULT_NAMESPACES,
    PATCH_TYPES,
    ApiCore,
    WriteResult,
    apply_patch,
)
from proxnix_testbed.kubeapi.errors import ApiError
from proxnix_testbed.kubeapi.paths import ResourcePath, parse_resource_path
from proxnix_testbed.kubeapi.registry import ResourceType
from proxnix_testbed.kubeapi.selectors import Selector, SelectorError
from proxnix_testbed.kubeapi.store import Change
from proxnix_testbed.kubeapi.watching import serve_watch


@attrs.define(kw_only=True)
class StrictKubernetesEmulator(kmock.KubernetesEmulator):
    """A Kubernetes API server in memory that kopf and kubectl work against unchanged.

    Use it as a kmock handler: `async with StrictKubernetesEmulator() as api, kmock.Server(api) as server: ...`,
    or through `proxnix_testbed.kubeapi.serve()` / the pytest fixtures, which also write a kubeconfig.
    """

    # Keep at most this many requests in `emulator.requests` (kmock re-scans them on every request otherwise).
    request_log_limit: int | None = 1000
    # Changes kept for watches resuming from a resourceVersion; older ones get 410 Expired.
    watch_history: int = 10_000
    # Watches without timeoutSeconds end after this many seconds (None: only on disconnect or shutdown).
    max_watch_seconds: float | None = None
    # Record object versions in kmock's `emulator.objects` (for assertions on history), the last N per object.
    track_history: bool = True
    object_history_limit: int | None = 100
    namespaces: tuple[str, ...] = DEFAULT_NAMESPACES

    core: ApiCore = attrs.field(init=False)
    _closing: asyncio.Event = attrs.field(init=False, factory=asyncio.Event)
    _openapi_cache: dict[str, Any] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        # kmock's fallback reactions are not registered: this class serves every request itself (see _handle).
        self.core = ApiCore(watch_history=self.watch_history, namespaces=self.namespaces)
        if self.track_history:
            self.core.store.listeners.append(self._mirror)
            for rt in self.core.registry:
                for obj in self.core.store.objects(rt.key):
                    self._mirror(Change(0, "ADDED", rt.key, obj, None))

    # -- kmock integration -------------------------------------------------------------------------------------
    def _mirror(self, change: Change) -> None:
        meta = change.obj["metadata"]
        key = (kmock.resource(*change.resource), meta.get("namespace"), meta["name"])
        if change.type == "DELETED":
            if key in self._objects:
                self._objects[key].delete()
        elif key not in self._objects:
            self._objects[key] = change.obj
        elif self._objects[key].deleted:
            self._objects[key].create(change.obj)
        else:
            history = self._objects[key].history
            history.append(change.obj)
            limit = self.object_history_limit
            if limit is not None and len(history) > 2 * limit:
                del history[:-limit]

    @property
    def resources(self) -> kmock.ResourcesArray:
        """The served resources, in kmock's form (kept for kmock-style introspection)."""
        array = kmock.ResourcesArray()
        for rt in self.core.registry:
            array[rt.kmock_resource] = kmock.ResourceInfo(
                namespaced=rt.namespaced,
                kind=rt.kind,
                singular=rt.effective_singular(),
                verbs=set(rt.verbs),
                shortnames=set(rt.short_names),
                categories=set(rt.categories),
                subresources=set(rt.subresources),
            )
        return array

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """kmock's entry point, with a bounded request log and this module's path parsing (kmock's fails on
        `/api/v1/namespaces`); errors are accumulated in `emulator.errors` as kmock does."""
        limit = self.request_log_limit
        if limit is not None and len(self._requests) > 2 * limit:
            del self._requests[:-limit]
        raw_response: aiohttp.web.StreamResponse | None = None
        try:
            if self.limit is not None and len(self._requests) >= self.limit:
                raise kmock_apps.KMockError("Too many requests have been served so far.")
            request = await wire.parse_request(raw_request, len(self._requests))
            self._requests.append(request)
            try:
                return await self._handle(request)
            except kmock_rendering.StreamingError as exc:
                raw_response = exc.args[0]
                raise exc.__cause__ or exc from None
        except Exception as exc:
            if not self._errors:
                raise
            self._errors[-1].append(exc)
            if raw_response is None or not raw_response.prepared:
                return await self._render_error(exc)
            await self._stream_error(exc, raw_response)
            await raw_response.write_eof()
            return raw_response

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if self._payloads:  # reactions added by a test (e.g. fault injection) take precedence
            try:
                return await kmock.RawHandler._handle(self, request)
            except NotImplementedError:
                pass
        try:
            return await self._serve(request)
        except ApiError as exc:
            return wire.json_response(exc.status(), exc.code)

    def close_watches(self) -> None:
        """End all open watch streams (call before stopping the HTTP server so that it stops at once)."""
        self._closing.set()
        self.core.store.close_watches()

    # -- convenience for tests -----------------------------------------------------------------------------------
    def install_crd(self, crd: dict[str, Any]) -> dict[str, Any]:
        """Create or replace a CRD directly (no HTTP); its resources are served at once."""
        return self.core.install_crd(crd)

    # -- dispatch ----------------------------------------------------------------------------------------------
    async def _serve(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        path = request.url.path
        method = request.method.value.upper()
        rp = parse_resource_path(path)
        if rp is None:
            if method != "GET":
                raise errors.method_not_allowed()
            return self._serve_non_resource(request, path)
        rt = self.core.registry.get(rp.group, rp.version, rp.plural)
        if rt is None:
            raise errors.unknown_path()
        if rp.subresource is not None and rp.subresource not in rt.subresources:
            raise errors.unknown_path()
        if rt.namespaced and rp.name is not None and rp.namespace is None:
            raise errors.unknown_path()
        if not rt.namespaced and rp.namespace is not None:
            raise errors.unknown_path()

        params = dict(request.params)
        dry_run = wire.dry_run(params)
        field_validation = params.get("fieldValidation") or "Warn"
        if field_validation not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(
                f"fieldValidation must be one of Strict, Warn, Ignore, not {field_validation!r}"
            )
        ns = rp.namespace if rt.namespaced else None
        alias = ALIASES.get(rt.key)
        if alias is not None:
            return await self._serve_alias(request, method, rt, alias, rp, params, dry_run, field_validation)

        if method == "GET":
            if params.get("watch") in ("true", "1"):
                return await self._watch(request, rt, rp, params)
            if rp.name is None:
                return self._list(request, rt, ns, params)
            obj = self.core.get(rt, ns, rp.name)
            if wire.wants_table(request):
                return wire.json_response(
                    printing.table(
                        rt, [obj], params.get("includeObject", "Metadata"), obj["metadata"]["resourceVersion"]
                    )
                )
            return wire.json_response(obj)
        if reviews.is_review(rt):
            if method != "POST" or rp.name is not None:
                raise errors.method_not_allowed()
            # kubectl sends reviews as protobuf; their spec does not change the answer, so it is not decoded.
            is_protobuf = wire.content_type(request) == protobuf.CONTENT_TYPE
            return wire.json_response(
                reviews.review(rt, {} if is_protobuf else wire.decode_body(request)), 201
            )
        if method == "POST" and rp.name is None:
            body = wire.decode_body(request)
            return wire.written(
                self.core.create(rt, ns, body, dry_run=dry_run, field_validation=field_validation)
            )
        if method == "PUT" and rp.name is not None:
            body = wire.decode_body(request)
            result = self.core.update(
                rt,
                ns,
                rp.name,
                body,
                subresource=rp.subresource,
                dry_run=dry_run,
                field_validation=field_validation,
            )
            return wire.written(result)
        if method == "PATCH" and rp.name is not None:
            content_type = wire.content_type(request)
            patch_type = PATCH_TYPES.get(content_type)
            if patch_type is None:
                raise errors.unsupported_media_type(content_type)
            body = wire.decode_body(request)
            result = self.core.patch(
                rt,
                ns,
                rp.name,
                body,
                patch_type,
                subresource=rp.subresource,
                dry_run=dry_run,
                field_validation=field_validation,
            )
            return wire.written(result)
        if method == "DELETE":
            options = wire.decode_body(request) if request.body else None
            if rp.name is not None:
                return wire.written(self.core.delete(rt, ns, rp.name, options, dry_run=dry_run))
            return self._delete_collection(rt, ns, params, options, dry_run)
        raise errors.method_not_allowed()

    def _selector(self, rt: ResourceType, params: Mapping[str, str]) -> Selector:
        def allowed(field: str) -> bool:
            if not rt.custom:
                return True
            return field in ("metadata.name", "metadata.namespace") or f".{field}" in rt.selectable_fields

        try:
            return Selector.parse(params.get("labelSelector"), params.get("fieldSelector"), allowed)
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from exc

    def _list(
        self,
        request: kmock.Request,
        rt: ResourceType,
        namespace: str | None,
        params: Mapping[str, str],
        alias: Alias | None = None,
    ) -> aiohttp.web.StreamResponse:
        selector = self._selector(rt, params)
        stored = self.core.store.objects(alias.storage if alias else rt.key, namespace)
        viewed = [alias.from_storage(obj) for obj in stored] if alias else stored
        items = [obj for obj in viewed if not selector or selector.matches(obj)]
        rv = str(self.core.store.resource_version)
        start = 0
        if params.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(params["continue"].encode()))
                start, rv = int(token["start"]), str(token["rv"])
            except (ValueError, KeyError, TypeError) as exc:
                raise errors.bad_request("continue key is not valid") from exc
        limit = int(params.get("limit") or 0)
        end = start + limit if limit > 0 else len(items)
        page, more = items[start:end], end < len(items)
        continue_token = (
            base64.urlsafe_b64encode(json.dumps({"start": end, "rv": rv}).encode()).decode() if more else ""
        )
        if wire.wants_table(request):
            return wire.json_response(
                printing.table(rt, page, params.get("includeObject", "Metadata"), rv, continue_token)
            )
        metadata: dict[str, Any] = {"resourceVersion": rv}
        if more:
            metadata["continue"] = continue_token
            metadata["remainingItemCount"] = len(items) - end
        return wire.json_response(
            {
                "kind": rt.effective_list_kind(),
                "apiVersion": rt.api_version,
                "metadata": metadata,
                "items": page,
            }
        )

    def _delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        params: Mapping[str, str],
        options: Any,
        dry_run: bool,
    ) -> aiohttp.web.StreamResponse:
        selector = self._selector(rt, params)
        deleted = []
        for obj in self.core.store.objects(rt.key, namespace):
            if not selector or selector.matches(obj):
                meta = obj["metadata"]
                deleted.append(
                    self.core.delete(rt, meta.get("namespace"), meta["name"], options, dry_run=dry_run).obj
                )
        rv = str(self.core.store.resource_version)
        return wire.json_response(
            {
                "kind": rt.effective_list_kind(),
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": rv},
                "items": deleted,
            }
        )

    async def _watch(
        self,
        request: kmock.Request,
        rt: ResourceType,
        rp: ResourcePath,
        params: dict[str, str],
        alias: Alias | None = None,
    ) -> aiohttp.web.StreamResponse:
        if rp.name is not None:  # a watch on one object is a watch with a metadata.name field selector
            extra = f"metadata.name={rp.name}"
            params["fieldSelector"] = (
                f"{params['fieldSelector']},{extra}" if params.get("fieldSelector") else extra
            )
        selector = self._selector(rt, params)
        as_table = wire.wants_table(request)
        include = params.get("includeObject", "Metadata")

        def render(obj: dict[str, Any], first: bool) -> dict[str, Any]:
            if not as_table:
                return obj
            return printing.table(rt, [obj], include, obj["metadata"]["resourceVersion"], with_columns=first)

        raw = request._raw_request
        assert raw is not None
        namespace = rp.namespace if rt.namespaced else None
        return await serve_watch(
            raw,
            self.core.store,
            rt,
            namespace,
            selector,
            params,
            render,
            self._closing,
            self.max_watch_seconds,
            alias,
        )

    async def _serve_alias(
        self,
        request: kmock.Request,
        method: str,
        rt: ResourceType,
        alias: Alias,
        rp: ResourcePath,
        params: dict[str, str],
        dry_run: bool,
        field_validation: str,
    ) -> aiohttp.web.StreamResponse:
        """A resource stored as another one (events.k8s.io Events as core Events): convert on the way in and out."""
        storage = self.core.rt(alias.storage)
        ns = rp.namespace if rt.namespaced else None
        name = rp.name

        def written(result: WriteResult) -> aiohttp.web.Response:
            result.obj = alias.from_storage(result.obj)
            return wire.written(result)

        if method == "GET":
            if params.get("watch") in ("true", "1"):
                return await self._watch(request, rt, rp, params, alias)
            if name is None:
                return self._list(request, rt, ns, params, alias)
            obj = alias.from_storage(self.core.get(storage, ns, name))
            if wire.wants_table(request):
                include = params.get("includeObject", "Metadata")
                return wire.json_response(
                    printing.table(rt, [obj], include, obj["metadata"]["resourceVersion"])
                )
            return wire.json_response(obj)
        if method == "POST" and name is None:
            body = _to_storage(alias, wire.decode_body(request))
            return written(
                self.core.create(storage, ns, body, dry_run=dry_run, field_validation=field_validation)
            )
        if method == "PUT" and name is not None:
            body = _to_storage(alias, wire.decode_body(request))
            return written(
                self.core.update(
                    storage,
                    ns,
                    name,
                    body,
                    require_rv=False,
                    dry_run=dry_run,
                    field_validation=field_validation,
                )
            )
        if method == "PATCH" and name is not None:
            patch_type = PATCH_TYPES.get(wire.content_type(request))
            if patch_type is None:
                raise errors.unsupported_media_type(wire.content_type(request))
            current = alias.from_storage(self.core.get(storage, ns, name))
            patched = alias.to_storage(apply_patch(current, wire.decode_body(request), patch_type))
            return written(
                self.core.update(
                    storage,
                    ns,
                    name,
                    patched,
                    require_rv=False,
                    dry_run=dry_run,
                    field_validation=field_validation,
                )
            )
        if method == "DELETE" and name is not None:
            options_body = wire.decode_body(request) if request.body else None
            return written(self.core.delete(storage, ns, name, options_body, dry_run=dry_run))
        raise errors.method_not_allowed()

    # -- non-resource paths ------------------------------------------------------------------------------------
    def _serve_non_resource(self, request: kmock.Request, path: str) -> aiohttp.web.StreamResponse:
        path = path.rstrip("/") or "/"
        registry = self.core.registry
        parts = [p for p in path.split("/") if p]
        if path == "/version":
            return wire.json_response(discovery.SERVER_VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return aiohttp.web.Response(text="ok")
        if path == "/api":
            return wire.json_response(discovery.api_versions(f"{request.url.host}:{request.url.port}"))
        if path == "/apis":
            return wire.json_response(discovery.api_group_list(registry))
        if len(parts) == 2 and parts[0] == "apis":
            group_doc = discovery.api_group(registry, parts[1])
            if group_doc is None:
                raise errors.unknown_path()
            return wire.json_response(group_doc)
        if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            resource_list = discovery.api_resource_list(registry, group, version)
            if resource_list is None:
                raise errors.unknown_path()
            return wire.json_response(resource_list)
        if path == "/openapi/v3":
            return wire.json_response(self._openapi("index", lambda: openapi.index(registry)))
        if parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            group, version = (
                ("", parts[3]) if parts[2] == "api" else (parts[3], parts[4] if len(parts) == 5 else "")
            )
            doc = self._openapi(path, lambda: openapi.group_version_document(registry, group, version))
            if doc is None:
                raise errors.unknown_path()
            return wire.json_response(doc)
        if path == "/":
            paths = ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v3", "/readyz", "/version"]
            for group, versions in registry.group_versions().items():
                if group:
                    paths += [f"/apis/{group}", *(f"/apis/{group}/{v}" for v in versions)]
            return wire.json_response({"paths": sorted(paths)})
        raise errors.unknown_path()

    def _openapi(self, key: str, build: Any) -> Any:
        generation = self.core.registry_generation
        cached = self._openapi_cache.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        doc = build()
        self._openapi_cache[key] = (generation, doc)
        return doc


def _to_storage(alias: Alias, body: Any) -> Any:
    if not isinstance(body, dict):
        raise errors.bad_request("the body of the request must be a JSON object")
    return alias.to_storage(body)
