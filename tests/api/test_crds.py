"""The generated CRDs: current with the models, structural, documented, with the columns kubectl shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, Field

from proxnix.api import crdgen
from proxnix.api.kinds import KindInfo
from proxnix.api.meta import ApiModel
from proxnix.api.schema import SchemaError, structural_schema, undocumented_properties, untyped_nodes

KIND_IDS = [info.kind for info in crdgen.KINDS]


def _schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_crds_folder_matches_the_models(repo_root: Path) -> None:
    for name, content in crdgen.rendered_files().items():
        assert (repo_root / "crds" / name).read_text() == content, f"crds/{name} is stale: run `proxnix crds`"
    bundle = (repo_root / crdgen.DEFAULT_BUNDLE).read_text()
    assert bundle == crdgen.render_bundle(), f"{crdgen.DEFAULT_BUNDLE} is stale: run `proxnix crds`"
    assert list(yaml.safe_load_all(bundle)) == [crdgen.crd_for(info) for info in crdgen.KINDS]


def test_check_command_passes_on_the_repository(repo_root: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "proxnix.cli",
            "crds",
            "--check",
            "--out",
            str(repo_root / "crds"),
            "--bundle",
            str(repo_root / crdgen.DEFAULT_BUNDLE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_command_fails_when_a_description_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert crdgen.run(_args(tmp_path, check=False)) == 0
    assert crdgen.run(_args(tmp_path, check=True)) == 0
    field = crdgen.KINDS[1].spec_model.model_fields["cores"]
    monkeypatch.setattr(field, "description", "CPU cores per socket (edited).")
    crdgen.KINDS[1].spec_model.model_rebuild(force=True)
    try:
        assert crdgen.run(_args(tmp_path, check=True)) == 1
    finally:
        monkeypatch.undo()
        crdgen.KINDS[1].spec_model.model_rebuild(force=True)
    assert crdgen.run(_args(tmp_path, check=True)) == 0
    (tmp_path / "bundle.yaml").write_text("# edited by hand\n")
    assert crdgen.run(_args(tmp_path, check=True)) == 1


def test_check_command_fails_on_a_stray_file(tmp_path: Path) -> None:
    crdgen.run(_args(tmp_path, check=False))
    (tmp_path / "crds" / "old.yaml").write_text("kind: CustomResourceDefinition\n")
    assert crdgen.run(_args(tmp_path, check=True)) == 1


def _args(out: Path, check: bool) -> Any:
    import argparse

    return argparse.Namespace(out=out / "crds", bundle=out / "bundle.yaml", check=check)


@pytest.mark.parametrize("info", crdgen.KINDS, ids=KIND_IDS)
def test_schema_is_structural(info: KindInfo) -> None:
    schema = _schema_of(crdgen.crd_for(info))
    assert untyped_nodes(schema) == []
    assert "$ref" not in yaml.safe_dump(schema)
    assert "anyOf" not in yaml.safe_dump(schema)


@pytest.mark.parametrize("info", crdgen.KINDS, ids=KIND_IDS)
def test_metadata_says_nothing_but_its_type(info: KindInfo) -> None:
    # kube-apiserver: "must not specify anything other than name and generateName" (a description included)
    assert _schema_of(crdgen.crd_for(info))["properties"]["metadata"] == {"type": "object"}


@pytest.mark.parametrize("info", crdgen.KINDS, ids=KIND_IDS)
def test_every_field_has_a_description(info: KindInfo) -> None:
    assert undocumented_properties(_schema_of(crdgen.crd_for(info))) == []


def test_an_untyped_field_is_refused() -> None:
    class Loose(ApiModel):
        """A model with an untyped field."""

        anything: Any = Field(description="Could be anything.")

    with pytest.raises(SchemaError, match="no type"):
        structural_schema(Loose)


def test_a_union_field_is_refused() -> None:
    class Union_(ApiModel):
        """A model with a union."""

        value: int | str = Field(description="Either.")

    with pytest.raises(SchemaError, match="unions"):
        structural_schema(Union_)


def test_undocumented_field_is_found() -> None:
    class Quiet(BaseModel):
        """A model whose field has no description."""

        value: int

    assert undocumented_properties(structural_schema(Quiet)) == [".value"]


@pytest.mark.parametrize("info", crdgen.KINDS, ids=KIND_IDS)
def test_crd_has_status_subresource_short_names_and_category(info: KindInfo) -> None:
    crd = crdgen.crd_for(info)
    version = crd["spec"]["versions"][0]
    assert crd["metadata"]["name"] == f"{info.plural}.proxnix.io"
    assert crd["spec"]["scope"] == "Namespaced"
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["categories"] == ["proxnix"]
    assert crd["spec"]["names"]["shortNames"]


def _columns(kind: str) -> list[tuple[str, int]]:
    info = next(i for i in crdgen.KINDS if i.kind == kind)
    return [
        (c["name"], c.get("priority", 0))
        for c in crdgen.crd_for(info)["spec"]["versions"][0]["additionalPrinterColumns"]
    ]


def test_printer_columns_follow_the_design() -> None:
    assert _columns("ProxmoxVM") == [
        ("Node", 0), ("VMID", 0), ("Status", 0), ("IP", 0), ("Image", 0), ("Ready", 0),
        ("Cores", 1), ("Memory", 1), ("Age", 0),
    ]  # fmt: skip
    assert _columns("GitRepo") == [("URL", 0), ("Revision", 0), ("Ready", 0), ("Status", 0), ("Age", 0)]
    assert _columns("ProxmoxNode") == [("Host", 0), ("Ready", 0), ("VMs", 0), ("Version", 0), ("Age", 0)]


def test_gitrepo_ref_requires_exactly_one_in_the_schema() -> None:
    ref = _schema_of(crdgen.crd_for(crdgen.KINDS[2]))["properties"]["spec"]["properties"]["ref"]
    assert ref["oneOf"] == [{"required": ["branch"]}, {"required": ["tag"]}, {"required": ["commit"]}]


def test_vmid_and_node_are_immutable_in_the_schema() -> None:
    spec = _schema_of(crdgen.crd_for(crdgen.KINDS[1]))["properties"]["spec"]["properties"]
    for field in ("vmid", "node"):
        rules = spec[field]["x-kubernetes-validations"]
        assert rules[0]["rule"] == "self == oldSelf"
