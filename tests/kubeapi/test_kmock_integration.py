"""The strict emulator stays a kmock handler: kmock's pytest fixture can use it, DSL reactions injected by a test take
precedence (fault injection), and `emulator.objects` keeps every version of every object for assertions."""

from __future__ import annotations

import pytest

from proxnix_testbed.kubeapi import StrictKubernetesEmulator
from tests.kubeapi.conftest import GROUP, WIDGETS, widget, widget_crd
from tests.support.kubeapi import running_kubeapi


@pytest.mark.kmock(cls=StrictKubernetesEmulator)
async def test_kmock_fixture_serves_the_strict_emulator(kmock):
    kmock.install_crd(widget_crd())
    async with kmock.post(WIDGETS, json=widget("w1")) as rsp:
        assert rsp.status == 201
    async with kmock.patch(
        f"{WIDGETS}/w1/status",
        json={"status": {"phase": "Ready"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ) as rsp:
        assert rsp.status == 200
    async with kmock.get("/api/v1/namespaces") as rsp:
        assert rsp.status == 200
        assert (await rsp.json())["kind"] == "NamespaceList"
    history = kmock.objects[f"{GROUP}/v1/widgets", "default", "w1"].history
    assert len(history) == 2
    assert history[0] >= {"spec": {"size": 1}}
    assert "status" not in history[0]
    assert history[-1] >= {"status": {"phase": "Ready"}}
    assert kmock.resources[f"{GROUP}/v1/widgets"].kind == "Widget"


@pytest.mark.kmock(cls=StrictKubernetesEmulator)
async def test_injected_reactions_take_precedence(kmock):
    kmock.install_crd(widget_crd())
    kmock[kmock.action.UPDATE, kmock.resource(GROUP, "v1", "widgets"), kmock.subresource("status")] << 503
    async with kmock.post(WIDGETS, json=widget("w1")) as rsp:
        assert rsp.status == 201
    headers = {"Content-Type": "application/merge-patch+json"}
    async with kmock.patch(
        f"{WIDGETS}/w1/status", json={"status": {"phase": "Ready"}}, headers=headers
    ) as rsp:
        assert rsp.status == 503
    async with kmock.patch(f"{WIDGETS}/w1", json={"spec": {"size": 2}}, headers=headers) as rsp:
        assert rsp.status == 200
    assert len(list(kmock[kmock.method.PATCH])) == 2


def test_request_log_is_trimmed(tmp_path):
    with running_kubeapi(tmp_path, request_log_limit=10) as api:
        for _ in range(50):
            assert api.get("/api/v1/namespaces/default").status == 200
        kept = api.call(lambda emulator: len(list(emulator)))
        assert 10 <= kept <= 21
