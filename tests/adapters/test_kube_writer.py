"""The kube adapter's writer calls against the project's test Kubernetes API server on loopback: create, get,
list (by label), merge-patch and delete a ProxmoxVM, patch its status subresource, and post an Event on it —
the calls the GitRepo controller and every handler's `apply_outcome` make."""

from __future__ import annotations

import pytest

from proxnix.adapters.kube import KubeApi, KubeError, NotFound, load_configuration
from proxnix.api.kinds import ObjectRef
from proxnix.api.proxmoxvm import INFO
from tests.support.kubeapi import REPO_CRDS, KubeAPI, kubeapi

__all__ = ["kubeapi"]

pytestmark = pytest.mark.e2e

PLURAL = INFO.plural


def _vm(name: str, labels: dict[str, str]) -> dict[str, object]:
    return {
        "kind": "ProxmoxVM",
        "metadata": {"name": name, "labels": labels},
        "spec": {"node": "pve1", "vmid": 100, "image": {"source": "/nix/store/x.qcow2"}},
    }


async def test_objects_status_and_events_through_the_adapter(kubeapi: KubeAPI) -> None:
    kubeapi.install_crds(REPO_CRDS / "proxnix.io_proxmoxvms.yaml")
    api = KubeApi(load_configuration(str(kubeapi.kubeconfig)))
    try:
        created = await api.create_object(PLURAL, "default", _vm("web01", {"proxnix.io/gitrepo": "infra"}))
        await api.create_object(PLURAL, "default", _vm("other", {}))
        uid = created["metadata"]["uid"]
        with pytest.raises(KubeError) as conflict:
            await api.create_object(PLURAL, "default", _vm("web01", {}))
        assert conflict.value.status == 409

        listed = await api.list_objects(PLURAL, "default", label_selector="proxnix.io/gitrepo=infra")
        assert [o["metadata"]["name"] for o in listed] == ["web01"]
        assert len(await api.list_objects(PLURAL, None)) == 2

        await api.patch_object(PLURAL, "default", "web01", {"spec": {"vmid": 101}})
        found = await api.get_object(PLURAL, "default", "web01")
        assert found is not None
        assert found["spec"]["vmid"] == 101
        assert found["spec"]["node"] == "pve1"  # a merge patch keeps what it does not name

        ref = ObjectRef(INFO, "default", "web01", uid)
        await api.patch_status(ref, {"phase": "Pending", "vmid": 101})
        await api.patch_status(ref, {"vmid": None})
        status = (await api.get_object(PLURAL, "default", "web01") or {})["status"]
        assert status["phase"] == "Pending"
        assert "vmid" not in status  # null removes a field

        await api.post_event(ref, "Normal", "Created", "create VM 101 " + "x" * 2000)
        events = kubeapi.get("/api/v1/namespaces/default/events").body["items"]
        (event,) = [e for e in events if e["involvedObject"].get("uid") == uid]
        assert (event["type"], event["reason"], event["involvedObject"]["kind"]) == (
            "Normal",
            "Created",
            "ProxmoxVM",
        )
        assert len(event["message"]) <= 1024

        assert await api.delete_object(PLURAL, "default", "web01") is True
        assert await api.delete_object(PLURAL, "default", "web01") is False
        assert await api.get_object(PLURAL, "default", "web01") is None
        with pytest.raises(NotFound):
            await api.patch_status(ref, {"phase": "Running"})
    finally:
        api.close()
