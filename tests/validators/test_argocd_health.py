"""The Argo CD health check of docs/gitops, run in a Lua interpreter on objects as Hygie writes them."""

from pathlib import Path

import pytest
import yaml
from lupa import LuaRuntime

GITOPS = Path(__file__).resolve().parents[2] / "docs" / "gitops"
SCRIPT = (GITOPS / "hygie-health.lua").read_text()


def health(obj):
    lua = LuaRuntime(unpack_returned_tuples=True)
    run = lua.eval("function(obj, script) _G.obj = obj; return load(script)() end")
    result = run(lua.table_from(to_lua(lua, obj)), SCRIPT)
    return result["status"], result["message"]


def to_lua(lua, value):
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


def workspace(phase=None, conditions=(), generation=1, observed=1):
    status = {"observedGeneration": observed, "conditions": [
        {"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conditions]}
    if phase:
        status["phase"] = phase
    return {"metadata": {"generation": generation}, "status": status}


@pytest.mark.parametrize("obj, expected", [
    ({"metadata": {"generation": 1}}, "Progressing"),
    (workspace("Ready", [("Ready", "True", "WorkloadReady", "the workspace pod is ready")], 2, 1), "Progressing"),
    (workspace("Ready", [("Ready", "True", "WorkloadReady", "the workspace pod is ready"),
                         ("Compliant", "True", "AllRulesPass", "every rule passes")]), "Healthy"),
    (workspace("Provisioning", [("Ready", "False", "Provisioning", "waiting for the pod")]), "Progressing"),
    (workspace("Blocked", [("Compliant", "False", "RulesViolated", "HYG005 Workspace/a/b spec.egress[0].cidr: ...")]), "Degraded"),
    (workspace("Suspended", [("Ready", "False", "Suspended", "suspended")]), "Suspended"),
    (workspace("Idle", [("Ready", "False", "Idle", "nobody has had a session")]), "Suspended"),
    (workspace("Expired", [("Ready", "False", "Expired", "expired")]), "Degraded"),
    (workspace(None, [("Ready", "False", "RulesViolated", "HYG009 HostingProfile/p ...")]), "Degraded"),
    (workspace(None, [("Ready", "True", "Usable", "the profile can host workloads")]), "Healthy"),
    (workspace("Pending", [("Ready", "False", "Stalled", "Secret/x exists and was not created by Hygie"),
                           ("Stalled", "True", "NameTakenByAnotherObject", "Secret/x exists")]), "Degraded"),
    (workspace("Pending", [("Ready", "False", "Waiting", "waiting for Dataset `a` to be Ready"),
                           ("Reconciling", "True", "Waiting", "waiting")]), "Progressing"),
])
def test_health_follows_status(obj, expected):
    status, message = health(obj)
    assert status == expected, message


def test_a_refusal_says_which_rule():
    _, message = health(workspace("Blocked", [("Compliant", "False", "RulesViolated", "HYG005 Workspace/a/b spec.egress[0].cidr: wide")]))
    assert message.startswith("HYG005")


def test_the_argocd_patch_carries_the_script_for_each_kind():
    data = yaml.safe_load((GITOPS / "argocd-cm-patch.yaml").read_text())["data"]
    for kind in ["HostingProfile", "Dataset", "Workspace"]:
        assert data[f"resource.customizations.health.hygie.io_{kind}"].strip() == SCRIPT.strip()
