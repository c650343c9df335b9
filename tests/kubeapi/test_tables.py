"""Server-side Table output (what `kubectl get` shows): CRD printer columns, JSONPath cells, priority, ages."""

from __future__ import annotations

from proxnix_testbed.kubeapi.printing import human_duration
from tests.kubeapi.conftest import WIDGETS, widget

TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}


def _table(api, path):
    rsp = api.request("GET", path, headers=TABLE)
    assert rsp.status == 200, rsp
    assert rsp.body["kind"] == "Table"
    return rsp.body


def test_table_uses_the_crd_printer_columns(widgets_api):
    widgets_api.post(WIDGETS, widget("w1", size=3, color="blue"))
    widgets_api.patch(
        f"{WIDGETS}/w1/status",
        {
            "status": {
                "conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]
            }
        },
    )
    widgets_api.post(WIDGETS, widget("w2"))
    table = _table(widgets_api, WIDGETS)
    columns = [(c["name"], c["type"], c["priority"]) for c in table["columnDefinitions"]]
    assert columns == [
        ("Name", "string", 0),
        ("Size", "integer", 0),
        ("Ready", "string", 0),
        ("Color", "string", 1),
        ("Age", "date", 0),
    ]
    assert table["columnDefinitions"][0]["format"] == "name"
    rows = [row["cells"] for row in table["rows"]]
    assert rows[0][:4] == ["w1", 3, "True", "blue"]
    assert rows[1][:4] == ["w2", 1, None, "red"]
    assert rows[0][4].endswith("s")  # an age such as "0s"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert table["rows"][0]["object"]["metadata"]["name"] == "w1"


def test_table_for_one_object_and_builtin_kinds(widgets_api):
    widgets_api.post(WIDGETS, widget("w1"))
    assert [r["cells"][0] for r in _table(widgets_api, f"{WIDGETS}/w1")["rows"]] == ["w1"]
    widgets_api.post(
        "/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}, "stringData": {"a": "1", "b": "2"}}
    )
    secrets = _table(widgets_api, "/api/v1/namespaces/default/secrets")
    assert [c["name"] for c in secrets["columnDefinitions"]] == ["Name", "Type", "Data", "Age"]
    assert secrets["rows"][0]["cells"][:3] == ["s", "Opaque", 2]
    namespaces = _table(widgets_api, "/api/v1/namespaces")
    assert namespaces["rows"][0]["cells"][:2] == ["default", "Active"]


def test_human_durations_match_kubectl():
    assert [
        human_duration(s) for s in (0, 59, 119, 120, 601, 3 * 3600 + 60, 9 * 3600, 50 * 3600, 400 * 86400)
    ] == ["0s", "59s", "119s", "2m", "10m", "3h1m", "9h", "2d2h", "400d"]
