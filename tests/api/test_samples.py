"""Sample manifests: the valid ones pass the generated CRD schemas and the models; the invalid ones fail both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, ValidationError

from proxnix.api import crdgen

SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples"
INFOS = {info.kind: info for info in crdgen.KINDS}


def _docs(folder: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted((SAMPLES / folder).glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("apiVersion", "").startswith("proxnix.io/"):
                found.append((path.name, doc))
    return found


def _schema_errors(doc: dict[str, Any]) -> list[str]:
    crd = crdgen.crd_for(INFOS[doc["kind"]])
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def _model_error(doc: dict[str, Any]) -> ValidationError | None:
    model: type[BaseModel] = INFOS[doc["kind"]].spec_model
    try:
        model.model_validate(doc["spec"])
    except ValidationError as exc:
        return exc
    return None


VALID = _docs("valid")
INVALID = _docs("invalid")


def test_there_are_samples_of_every_kind() -> None:
    assert {doc["kind"] for _, doc in VALID} == set(INFOS)
    assert {doc["kind"] for _, doc in INVALID} == set(INFOS)


@pytest.mark.parametrize(("name", "doc"), VALID, ids=[n for n, _ in VALID])
def test_valid_sample_passes_schema_and_model(name: str, doc: dict[str, Any]) -> None:
    assert _schema_errors(doc) == []
    assert _model_error(doc) is None


@pytest.mark.parametrize(("name", "doc"), INVALID, ids=[n for n, _ in INVALID])
def test_invalid_sample_fails_schema_and_model(name: str, doc: dict[str, Any]) -> None:
    assert _schema_errors(doc), f"{name} passed the CRD schema"
    assert _model_error(doc) is not None, f"{name} passed the model"


def test_a_broken_valid_sample_is_caught() -> None:
    _, doc = next((n, d) for n, d in VALID if d["kind"] == "ProxmoxVM")
    broken = {**doc, "spec": {**doc["spec"], "vmid": 42}}
    assert any("vmid" in e for e in _schema_errors(broken))
    assert _model_error(broken) is not None
