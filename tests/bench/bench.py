"""Drives one benchmark run; see run.sh. Requests are counted by the API server (its audit log,
by the operator's identity), CPU and memory by the kernel (/proc), reconcile time by the
operator's own histogram."""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "validators"))
from chart import render, stream  # noqa: E402

OPERATOR = "system:serviceaccount:hygie-system:hygie"
PER_NAMESPACE = 50
WRITES = {"create", "update", "patch", "delete", "deletecollection"}
# What the operator lists when it starts: its kinds and its children's.
WATCHED = ("hostingprofiles,datasets,workspaces,exportrequests,exportreviews,persistentvolumeclaims,"
           "networkpolicies,roles,rolebindings,serviceaccounts,secrets,services,statefulsets,jobs")


def kubectl(*args, stdin=None):
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, check=True).stdout


def now():
    return datetime.now().astimezone()


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def objects(n):
    profile = {
        "apiVersion": "hygie.io/v1alpha1", "kind": "HostingProfile", "metadata": {"name": "bench"},
        "spec": {
            "provider": "OVHcloud",
            "certifications": [{"type": "HDS", "reference": "bench", "validUntil": "2029-12-31"}],
            "residency": {"country": "FR", "regions": ["GRA9"]},
            "storage": {"storageClassName": "csi-cinder-high-speed-gen2-luks", "encryption": {"type": "ProviderManaged"}},
            "images": {"allowedRegistries": ["registry.example.fr/"]},
            "network": {"ingressFrom": {"namespaceLabels": {"kubernetes.io/metadata.name": "ingress"}, "podLabels": {"app.kubernetes.io/name": "ingress-nginx"}}},
        },
    }
    items = []
    for i in range(n):
        namespace = f"bench-{i // PER_NAMESPACE}"
        items.append({
            "apiVersion": "hygie.io/v1alpha1", "kind": "Dataset",
            "metadata": {"name": f"data-{i}", "namespace": namespace},
            "spec": {"hostingProfile": "bench", "classification": "Pseudonymised",
                     "legal": {"controller": "CHU", "purpose": "bench", "basis": "MR-004", "validUntil": "2029-12-31"},
                     "storage": {"size": "1Gi"}},
        })
        items.append({
            "apiVersion": "hygie.io/v1alpha1", "kind": "Workspace",
            "metadata": {"name": f"ws-{i}", "namespace": namespace},
            "spec": {"hostingProfile": "bench",
                     "members": [{"kind": "User", "name": f"owner-{i}", "role": "Owner"},
                                 {"kind": "User", "name": f"analyst-{i}", "role": "Analyst"}],
                     "datasets": [{"name": f"data-{i}", "mountPath": "/data"}],
                     "image": "registry.example.fr/jupyter@sha256:" + "a" * 64,
                     "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                     "storage": {"size": "1Gi"},
                     "expiresAt": "2029-06-30T00:00:00Z"},
        })
    return profile, items


def apply_in_parallel(items, chunk=100, workers=4):
    chunks = [items[i:i + chunk] for i in range(0, len(items), chunk)]

    def apply(part):
        kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": part}))

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(apply, chunks))


def reconciled(n):
    listed = json.loads(kubectl("get", "workspaces", "-A", "-o", "json"))["items"]
    done = [w for w in listed
            if w.get("status", {}).get("phase") and w["status"].get("observedGeneration") == w["metadata"]["generation"]]
    return len(done) >= n


def proc(pid):
    """CPU time so far, and peak RSS, in MiB."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    return cpu, memory(pid, "VmHWM")


def memory(pid, field):
    """A memory figure of /proc/<pid>/status (VmHWM: the peak RSS; VmRSS: now), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def audit(state, start, end, user=OPERATOR):
    """The requests `user` made between `start` and `end`, as the API server's audit log
    records them: (verb, resource[/subresource])."""
    requests = []
    # The current file and the rotated ones (audit-<time>.log), which a large run fills.
    for path in sorted(state.glob("audit*.log")):
        requests.extend(read_audit(path, start, end, user))
    return requests


def read_audit(path, start, end, user):
    requests = []
    with open(path) as f:
        for line in f:
            event = json.loads(line)
            if event["user"]["username"] != user:
                continue
            at = parse_time(event["stageTimestamp"])
            if start <= at <= end:
                ref = event.get("objectRef", {})
                resource = ref.get("resource", "") + ("/" + ref["subresource"] if ref.get("subresource") else "")
                requests.append((event["verb"], resource))
    return requests


def scrape():
    return subprocess.run(["curl", "-sf", "http://127.0.0.1:18090/metrics"], capture_output=True, text=True).stdout


def reconciles(metrics, kind):
    """How many reconciles of `kind` the operator has finished (its histogram's count)."""
    for line in metrics.splitlines():
        if line.startswith("hygie_reconcile_duration_seconds_count{") and f'kind="{kind}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0


def p99(metrics, kind):
    """The upper bound of the histogram bucket that holds the 99th percentile. Labels are read
    whatever their order (the exposition does not fix it); no sample at all says so."""
    pattern = re.compile(r'^hygie_reconcile_duration_seconds_bucket\{([^}]*)\} (\S+)')
    buckets = []
    for line in metrics.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if labels.get("kind") == kind:
            le = labels["le"]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(match.group(2))))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return "no reconcile recorded"
    total = buckets[-1][1]
    for le, count in buckets:
        if count >= 0.99 * total:
            return le
    return float("inf")


def print_requests(requests, n, unit):
    """Each kind of request, most frequent first, with its count per `unit`."""
    counts = {}
    for request in requests:
        counts[request] = counts.get(request, 0) + 1
    for (verb, resource), count in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"    {verb:>8} {resource:<32} {count:>7} ({count / n:.2f} per {unit})")


def limit(n, binary):
    """The API server's own write rate, Hygie aside: the children `hygie render` gives for the
    same objects, applied with kubectl as the objects are (server-side, four at a time), on a
    fresh control plane. Returns the seconds it took and how many children there were."""
    profile, items = objects(n)
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "bundle.yaml"
        bundle.write_text("\n---\n".join(json.dumps(o) for o in [profile, *items]))
        rendered = subprocess.run([binary, "render", "-o", "json", "-f", str(bundle)],
                                  capture_output=True, text=True, check=True).stdout
    children = json.loads(rendered)["items"]
    for i in range((n + PER_NAMESPACE - 1) // PER_NAMESPACE):
        kubectl("create", "namespace", f"bench-{i}")
    started = time.monotonic()
    apply_in_parallel(children)
    return time.monotonic() - started, len(children)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspaces", type=int, required=True)
    parser.add_argument("--steady", type=int, default=120)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--limit", action="store_true",
                        help="measure only the API server's write rate for the same children")
    args = parser.parse_args()
    n = args.workspaces
    if args.limit:
        limit_s, children = limit(n, args.binary)
        print(f"children applied with kubectl    {children} in {limit_s:.1f} s (4 in parallel)")
        print(f"limit_s={limit_s:.1f}")
        return
    state = Path(os.environ["KUBECONFIG"]).parent

    kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    crds = [f"crd/{path.stem}" for path in sorted((REPO / "crds").glob("*.hygie.io.yaml"))]
    kubectl("wait", "--for=condition=Established", *crds, "--timeout=60s")
    kubectl("create", "namespace", "hygie-system")
    # The chart's identity, rights and admission policies: what a real install gives the operator.
    kinds = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
             "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    access = [doc for doc in stream(render()).split("\n---\n")
              if any(f"\nkind: {k}\n" in f"\n{doc}\n" for k in kinds)]
    kubectl("apply", "--server-side", "-f", "-", stdin="\n---\n".join(access))
    for i in range((n + PER_NAMESPACE - 1) // PER_NAMESPACE):
        kubectl("create", "namespace", f"bench-{i}")

    log = open(state / "operator-bench.log", "w")
    env = dict(os.environ, KUBECONFIG=str(state / "operator.kubeconfig"), POD_NAME="bench")
    operator = subprocess.Popen(
        [args.binary, "run", "--lease-namespace", "hygie-system", "--metrics-address", "127.0.0.1:18090"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    time.sleep(2)

    profile, items = objects(n)
    started = now()
    apply_in_parallel([profile])
    apply_in_parallel(items)
    applied = now()
    while not reconciled(n):
        if operator.poll() is not None:
            sys.exit("the operator exited; see " + str(state / "operator-bench.log"))
        time.sleep(1)
    converged = now()
    time.sleep(5)
    steady_from = now()
    time.sleep(args.steady)
    steady_to = now()

    cpu, rss = proc(operator.pid)
    at_rest = memory(operator.pid, "VmRSS")
    metrics = scrape()
    operator.terminate()
    operator.wait(timeout=30)

    # A restart over everything that exists: how long until each object is reconciled again,
    # beside the time a client that knows nothing takes to list what the operator watches.
    started_list = time.monotonic()
    kubectl("get", WATCHED, "-A", "-o", "json")
    cold_list_s = time.monotonic() - started_list
    restart_from = now()
    started_again = time.monotonic()
    operator = subprocess.Popen(
        [args.binary, "run", "--lease-namespace", "hygie-system", "--metrics-address", "127.0.0.1:18090"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    while min(reconciles(scrape(), "Workspace"), reconciles(scrape(), "Dataset")) < n:
        if operator.poll() is not None:
            sys.exit("the operator exited after its restart; see " + str(state / "operator-bench.log"))
        time.sleep(0.2)
    restart_s = time.monotonic() - started_again
    time.sleep(5)
    restart_to = now()
    restart_rss = memory(operator.pid, "VmHWM")
    operator.terminate()
    operator.wait(timeout=30)

    time.sleep(1)
    converging = audit(state, started, converged)
    steady = audit(state, steady_from, steady_to)
    steady_writes = [r for r in steady if r[0] in WRITES and r[1] != "leases"]
    lease_writes = [r for r in steady if r[0] in WRITES and r[1] == "leases"]
    restart = audit(state, restart_from, restart_to)
    restart_writes = [r for r in restart if r[0] in WRITES and r[1] != "leases"]
    ready_s = (converged - started).total_seconds()
    print(f"workspaces                       {n}")
    print(f"objects applied in               {(applied - started).total_seconds():.1f} s (kubectl, 4 in parallel)")
    print(f"all reconciled after             {ready_s:.1f} s")
    print(f"operator requests to converge    {len(converging)} ({len(converging) / n:.1f} per workspace with its dataset)")
    print_requests(converging, n, "workspace")
    print(f"steady state                     {args.steady} s: {len(steady_writes)} writes, {len(lease_writes)} lease renewals, {len(steady)} requests in all")
    print(f"operator CPU                     {cpu:.1f} s")
    print(f"operator peak RSS                {rss:.1f} MiB ({at_rest:.1f} MiB at rest)")
    print(f"reconcile p99 (histogram bucket) Workspace <= {p99(metrics, 'Workspace')} s, Dataset <= {p99(metrics, 'Dataset')} s")
    print(f"restart                          every object reconciled again after {restart_s:.1f} s "
          f"(a cold list: {cold_list_s:.1f} s), {len(restart_writes)} writes, {len(restart)} requests, "
          f"peak RSS {restart_rss:.1f} MiB")
    print_requests(restart_writes, n, "workspace")
    print(f"workspaces={n} ready_s={ready_s:.1f} cpu_s={cpu:.1f} rss_mib={rss:.1f} "
          f"requests_per_ws={len(converging) / n:.1f} steady_writes={len(steady_writes)} "
          f"restart_s={restart_s:.1f} cold_list_s={cold_list_s:.1f} restart_writes={len(restart_writes)}")


if __name__ == "__main__":
    main()
