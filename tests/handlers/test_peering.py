"""Which peering the operator joins: the rule (`decide`) for every case, and `detect` against a test API server
with and without kopf's peering CRDs and objects."""

from __future__ import annotations

import logging
import pathlib

import pytest

from proxnix.adapters.kube import KubeApi, load_configuration
from proxnix.handlers import peering
from proxnix.handlers.peering import PeeringFacts, decide
from tests.support.kubeapi import running_kubeapi

NO_CRD = PeeringFacts(crd_served=False)
PRESENT = PeeringFacts(crd_served=True)
ABSENT = PeeringFacts(crd_served=True, missing=("KopfPeering proxnix in namespace default",))


def test_standalone_asks_nothing_and_joins_nothing() -> None:
    choice = decide(None, True, None)
    assert choice.name is None
    assert not choice.waiting


@pytest.mark.parametrize("facts", [NO_CRD, ABSENT])
def test_auto_without_a_peering_runs_standalone_and_warns_how_to_enable_it(facts: PeeringFacts) -> None:
    choice = decide(None, False, facts)
    assert choice.name is None
    assert not choice.waiting
    assert choice.level == logging.WARNING
    assert "standalone" in choice.message
    assert "manifests/base/peering.yaml" in choice.message
    assert "--peering proxnix" in choice.message


def test_auto_with_the_peering_joins_it() -> None:
    choice = decide(None, False, PRESENT)
    assert choice.name == "proxnix"
    assert not choice.waiting


@pytest.mark.parametrize("facts", [NO_CRD, ABSENT])
def test_a_required_peering_that_is_missing_waits_with_an_error_naming_what_to_apply(
    facts: PeeringFacts,
) -> None:
    choice = decide("ha", False, facts)
    assert choice.name == "ha"
    assert choice.waiting
    assert choice.level == logging.ERROR
    assert "manifests/base/peering.yaml" in choice.message
    assert "does nothing until then" in choice.message


def test_a_required_peering_that_exists_is_joined() -> None:
    choice = decide("ha", False, PRESENT)
    assert (choice.name, choice.waiting) == ("ha", False)


def test_peering_objects_are_per_namespace_or_cluster_wide() -> None:
    assert peering.peering_objects("p", ["a", "b"]) == [("kopfpeerings", "a"), ("kopfpeerings", "b")]
    assert peering.peering_objects("p", []) == [("clusterkopfpeerings", None)]


@pytest.mark.parametrize("installed", [False, True])
async def test_detect_asks_the_api(tmp_path: pathlib.Path, installed: bool) -> None:
    with running_kubeapi(tmp_path / "api", kopf_peering=installed) as api:
        kube = KubeApi(load_configuration(str(api.kubeconfig)))
        try:
            auto = await peering.detect(kube, None, False, ["default"])
            assert auto.name is None  # no CRD, or the CRD but no object: standalone
            required = await peering.detect(kube, "proxnix", False, ["default"])
            assert required.waiting
            if installed:
                body = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "proxnix"}}
                assert api.post("/apis/kopf.dev/v1/namespaces/default/kopfpeerings", body).status == 201
                assert (await peering.detect(kube, None, False, ["default"])).name == "proxnix"
                assert not (await peering.detect(kube, "proxnix", False, ["default"])).waiting
                assert "ClusterKopfPeering proxnix" in (await peering.facts(kube, "proxnix", [])).missing
        finally:
            kube.close()
