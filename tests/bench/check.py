"""`hygie check` at scale, beside kubeconform, the schema validator pipelines use today.

Writes N workspaces (and their datasets and profile, from bench.objects) in 20 files, converts
Hygie's CRD schemas to kubeconform's layout, runs both on the same files, and prints the wall
time of each and hygie's peak RSS. Usage: check.py N HYGIE KUBECONFORM WORKDIR."""

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import objects  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FILES = 20


def write_manifests(n, folder):
    profile, items = objects(n)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    (folder / "profile.yaml").write_text(yaml.safe_dump(profile))
    per_file = -(-len(items) // FILES)
    for f in range(FILES):
        part = items[f * per_file:(f + 1) * per_file]
        (folder / f"part-{f:02}.yaml").write_text(yaml.safe_dump_all(part))
    return 1 + len(items)


def write_schemas(folder):
    """kubeconform looks schemas up by `{kind}_{version}.json`, lowercase kind."""
    folder.mkdir(parents=True, exist_ok=True)
    for crd_file in (REPO / "crds").glob("*.hygie.io.yaml"):
        crd = yaml.safe_load(crd_file.read_text())
        kind = crd["spec"]["names"]["kind"].lower()
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            (folder / f"{kind}_{version['name']}.json").write_text(json.dumps(schema))


def timed(command):
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    return time.monotonic() - started, done


def main():
    n, hygie, kubeconform, work = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    documents = write_manifests(n, work / "manifests")
    write_schemas(work / "schemas")
    manifests = sorted(str(p) for p in (work / "manifests").glob("*.yaml"))
    hygie_s, hygie_run = timed([hygie, "check", "-f", *manifests])
    if hygie_run.returncode != 0:
        sys.exit(f"hygie check failed:\n{hygie_run.stdout[-2000:]}{hygie_run.stderr[-2000:]}")
    hygie_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    location = str(work / "schemas" / "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json")
    kubeconform_s, kubeconform_run = timed(
        [kubeconform, "-strict", "-summary", "-schema-location", location, *manifests])
    if kubeconform_run.returncode != 0:
        sys.exit(f"kubeconform failed:\n{kubeconform_run.stdout[-2000:]}{kubeconform_run.stderr[-2000:]}")
    print(f"documents={documents} files={len(manifests)}")
    print(f"objects={n} hygie_s={hygie_s:.2f} kubeconform_s={kubeconform_s:.2f} hygie_rss_mib={hygie_rss:.1f}")


if __name__ == "__main__":
    main()
