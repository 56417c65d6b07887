"""A peer operator measured as run.sh measures Hygie: one of Kubeflow's notebook controllers,
built from its unmodified sources, running as its own identity against a fresh test control
plane with its own CRDs and RBAC. N objects as close as the peer's kind allows to a Hygie
workspace, then time to reconcile them all, then STEADY seconds at rest; requests from the API
server's audit log, CPU and peak RSS from /proc. Usage: peer.py N PEER BINARY SOURCES [STEADY]."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import (  # noqa: E402
    PER_NAMESPACE, WRITES, apply_in_parallel, audit, kubectl, now, print_requests, proc)

USER = "kubeflow-peer"


def client_certificate(state):
    """A kubeconfig for USER, with a certificate from the test control plane's CA."""
    pki = state / "pki"
    key, csr, crt = (pki / f"peer.{ext}" for ext in ("key", "csr", "crt"))
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={USER}",
                    "-keyout", key, "-out", csr], check=True, capture_output=True)
    ext = pki / "peer.ext"
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", pki / "ca.crt", "-CAkey", pki / "ca.key",
                    "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", crt], check=True, capture_output=True)
    admin = yaml.safe_load((state / "kubeconfig").read_text())
    admin["users"] = [{"name": USER, "user": {
        "client-certificate": str(crt), "client-key": str(key)}}]
    admin["contexts"][0]["context"]["user"] = USER
    path = state / "peer.kubeconfig"
    path.write_text(yaml.safe_dump(admin))
    return path


def notebooks(n):
    """Notebooks as close as the kind allows to run.sh's workspaces: the same image, requests and
    limits, and one volume (the dataset's claim) mounted read-only."""
    items = []
    for i in range(n):
        items.append({
            "apiVersion": "kubeflow.org/v1", "kind": "Notebook",
            "metadata": {"name": f"nb-{i}", "namespace": f"bench-{i // PER_NAMESPACE}"},
            "spec": {"template": {"spec": {
                "containers": [{
                    "name": "notebook", "image": "registry.example.fr/jupyter@sha256:" + "a" * 64,
                    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                }],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": f"data-{i}", "readOnly": True}}],
            }}},
        })
    return items


def workspaces(n):
    """Kubeflow Notebooks v2 Workspaces of the sample WorkspaceKind `jupyterlab`, with a home
    volume and one read-only data volume, as a Hygie workspace has."""
    return [{
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Workspace",
        "metadata": {"name": f"ws-{i}", "namespace": f"bench-{i // PER_NAMESPACE}"},
        "spec": {"kind": "jupyterlab", "paused": False, "podTemplate": {
            "podMetadata": {"labels": {}, "annotations": {}},
            "volumes": {"home": f"home-{i}",
                        "data": [{"pvcName": f"data-{i}", "mountPath": "/data", "readOnly": True}]},
            "options": {"imageConfig": "jupyter-scipy:v1.10.0", "podConfig": "tiny_cpu"},
        }},
    } for i in range(n)]


# What each peer is: where its CRDs and ClusterRole are in its sources, what it must be given
# before its objects (a WorkspaceKind), its objects, the kind that owns its children, and how it
# runs without what a test control plane lacks (Istio, culling, admission webhooks).
PEERS = {
    "kubeflow-notebook-controller": {
        "crds": ["config/crd/bases"], "role": "config/rbac/role.yaml", "setup": [],
        "objects": notebooks, "owner": "Notebook", "children": 2,
        "env": {"USE_ISTIO": "false", "ENABLE_CULLING": "false"},
        "args": ["--metrics-addr", "127.0.0.1:18091", "--probe-addr", "127.0.0.1:18092"],
    },
    "kubeflow-workspaces-controller": {
        "crds": ["manifests/kustomize/base/crd/kubeflow.org_workspacekinds.yaml",
                 "manifests/kustomize/base/crd/kubeflow.org_workspaces.yaml"],
        "role": "manifests/kustomize/base/manager/role.yaml",
        "setup": ["manifests/kustomize/samples/jupyterlab_v1beta1_workspacekind.yaml"],
        "objects": workspaces, "owner": "Workspace", "children": 3,
        "env": {"ENABLE_WEBHOOKS": "false"},
        "args": ["--metrics-bind-address", "127.0.0.1:18091", "--health-probe-bind-address", "127.0.0.1:18092"],
    },
}


def without_nulls(value):
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def reconciled(n, owner):
    """Every object has its StatefulSet and its Service, which it owns."""
    counts = []
    for kind in ("statefulsets", "services"):
        listed = json.loads(kubectl("get", kind, "-A", "-o", "json"))["items"]
        owned = [o for o in listed
                 if any(r.get("kind") == owner for r in o["metadata"].get("ownerReferences", []))]
        counts.append(len(owned))
    return min(counts) >= n


def main():
    n, peer, binary, sources = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    steady_seconds = int(sys.argv[5]) if len(sys.argv) > 5 else 120
    state = Path(os.environ["KUBECONFIG"]).parent

    spec = PEERS[peer]
    for crds in spec["crds"]:
        kubectl("apply", "--server-side", "-f", str(sources / crds))
    for attempt in range(30):
        try:
            kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=10s")
            break
        except subprocess.CalledProcessError:
            if attempt == 29:
                raise
            time.sleep(1)
    role = next(d for d in yaml.safe_load_all((sources / spec["role"]).read_text()) if d)
    role["metadata"]["name"] = "peer-controller"
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "peer-controller"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "peer-controller"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}]}
    kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [role, binding]}))
    for setup in spec["setup"]:
        # The sample leaves some fields empty (`probes:` with only comments under it), which its
        # own CRD refuses as null: they are dropped, nothing else is changed.
        documents = [without_nulls(d) for d in yaml.safe_load_all((sources / setup).read_text()) if d]
        kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}))
    for i in range((n + PER_NAMESPACE - 1) // PER_NAMESPACE):
        kubectl("create", "namespace", f"bench-{i}")

    log_path = Path(binary).parent.parent / "controller.log"
    log = open(log_path, "w")
    env = dict(os.environ, KUBECONFIG=str(client_certificate(state)), **spec["env"])
    controller = subprocess.Popen([binary, *spec["args"]], env=env, stdout=log, stderr=subprocess.STDOUT)
    time.sleep(2)

    items = spec["objects"](n)
    started = now()
    apply_in_parallel(items)
    while not reconciled(n, spec["owner"]):
        if controller.poll() is not None:
            sys.exit(f"the peer exited; see {log_path}")
        time.sleep(1)
    converged = now()
    time.sleep(5)
    steady_from = now()
    time.sleep(steady_seconds)
    steady_to = now()
    cpu, rss = proc(controller.pid)
    controller.terminate()
    controller.wait(timeout=30)
    time.sleep(1)

    converging = audit(state, started, converged, USER)
    steady = audit(state, steady_from, steady_to, USER)
    steady_writes = [r for r in steady if r[0] in WRITES and r[1] != "leases"]
    ready_s = (converged - started).total_seconds()
    print(f"peer                             {peer}")
    print(f"objects                          {n}")
    print(f"all reconciled after             {ready_s:.1f} s")
    print(f"requests to converge             {len(converging)} ({len(converging) / n:.1f} per object)")
    print_requests(converging, n, "object")
    print(f"steady state                     {steady_seconds} s: {len(steady_writes)} writes, {len(steady)} requests in all")
    print(f"CPU                              {cpu:.1f} s")
    print(f"peak RSS                         {rss:.1f} MiB")
    print(f"peer={peer} objects={n} ready_s={ready_s:.1f} cpu_s={cpu:.1f} rss_mib={rss:.1f} "
          f"requests_per_obj={len(converging) / n:.1f} steady_writes={len(steady_writes)} children_per_obj={spec['children']}")


if __name__ == "__main__":
    main()
