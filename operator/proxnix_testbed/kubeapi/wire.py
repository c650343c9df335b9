"""HTTP plumbing of the emulator: parsing requests into kmock `Request`s, decoding bodies (JSON, YAML, protobuf),
reading the headers and parameters that change an answer (Accept: Table, Content-Type, dryRun), writing answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp.web
import kmock
import yaml

from proxnix_testbed.kubeapi import errors, protobuf
from proxnix_testbed.kubeapi.core import PATCH_TYPES, WriteResult
from proxnix_testbed.kubeapi.paths import parse_resource_path

JSON_TYPES = ("application/json", "application/yaml", "text/plain", "")


async def parse_request(raw_request: aiohttp.web.BaseRequest, request_id: int) -> kmock.Request:
    """A kmock `Request` with the Kubernetes fields (resource, namespace, name, action) parsed correctly."""
    body = await raw_request.read()
    text = body.decode(errors="replace")
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    rp = parse_resource_path(raw_request.path)
    action: kmock.action | None = None
    if rp is not None:
        method = raw_request.method.upper()
        if method == "GET":
            watching = raw_request.query.get("watch") in ("true", "1")
            action = kmock.action.WATCH if watching else kmock.action.FETCH if rp.name else kmock.action.LIST
        else:
            action = {
                "POST": kmock.action.CREATE,
                "PUT": kmock.action.UPDATE,
                "PATCH": kmock.action.UPDATE,
                "DELETE": kmock.action.DELETE,
            }.get(method)
    return kmock.Request(
        id=request_id,
        raw_request=raw_request,
        url=raw_request.url,
        method=raw_request.method,
        params=dict(raw_request.query),
        headers=dict(raw_request.headers),
        cookies=dict(raw_request.cookies),
        body=body,
        text=text,
        data=data,
        action=action,
        resource=kmock.resource(rp.group, rp.version, rp.plural) if rp is not None else None,
        namespace=rp.namespace if rp is not None else None,
        name=rp.name if rp is not None else None,
        subresource=rp.subresource if rp is not None else None,
    )


def json_response(body: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )


def written(result: WriteResult) -> aiohttp.web.Response:
    response = json_response(result.obj, result.code)
    for warning in result.warnings:
        response.headers.add("Warning", f"299 - {json.dumps(warning)}")
    return response


def header(request: kmock.Request, name: str) -> str:
    raw = request._raw_request
    if raw is not None:
        return raw.headers.get(name, "")
    lowered = name.lower()
    return next((v for k, v in request.headers.items() if k.lower() == lowered), "")


def content_type(request: kmock.Request) -> str:
    return header(request, "Content-Type").split(";")[0].strip().lower()


def wants_table(request: kmock.Request) -> bool:
    accept = header(request, "Accept")
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def dry_run(params: Mapping[str, str]) -> bool:
    value = params.get("dryRun")
    if value in (None, ""):
        return False
    if value != "All":
        raise errors.bad_request(f'Invalid dry run value: "{value}": supported values: "All"')
    return True


def decode_body(request: kmock.Request) -> Any:
    ctype = content_type(request)
    body = request.body
    if ctype == protobuf.CONTENT_TYPE:
        try:
            return protobuf.decode(body)
        except protobuf.ProtobufError as exc:
            raise errors.unsupported_media_type(f"{ctype} ({exc})") from exc
    if ctype in ("application/apply-patch+yaml", "application/yaml"):
        try:
            return yaml.safe_load(body.decode() or "null")
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"the body of the request is not valid YAML: {exc}") from exc
    if ctype in JSON_TYPES or ctype in PATCH_TYPES:
        try:
            return json.loads(body.decode() or "null")
        except ValueError as exc:
            raise errors.bad_request(f"the body of the request is not valid JSON: {exc}") from exc
    raise errors.unsupported_media_type(ctype)
