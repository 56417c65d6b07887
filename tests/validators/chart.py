"""Renders the Hygie chart with Helm's own SDK, for the tests and for the end-to-end suite.

    python tests/validators/chart.py OUTPUT.yaml [all]

writes the manifests of a default install (or of one with every option on) as one YAML stream.
"""

import sys
from pathlib import Path

import helm_python as helm

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "hygie"
RELEASE, NAMESPACE = "hygie", "hygie-system"

EVERY_OPTION = {
    "image": {"digest": "sha256:" + "0" * 64},
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
    },
    "storageClasses": {"ovhcloud": {"enabled": True}, "scaleway": {"enabled": True}, "outscale": {"enabled": True}},
    "podAnnotations": {"example.org/audit": "true"},
    "podLabels": {"team": "platform"},
    "priorityClassName": "system-cluster-critical",
    "nodeSelector": {"nodepool": "system"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "system", "effect": "NoSchedule"}],
    "imagePullSecrets": [{"name": "registry"}],
    "serviceAccount": {"annotations": {"example.org/owner": "platform"}},
    "gateway": {"enabled": True, "tls": {"secretName": "gateway-tls"}, "pasteInBytes": 4096},
    "resolver": {
        "enabled": True,
        "image": "registry.k8s.io/coredns/coredns@sha256:" + "1" * 64,
        "clusterIP": "10.96.0.53",
    },
}


def render(values=None):
    """The rendered manifests, template path to text, NOTES.txt left out."""
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return {path: text for path, text in manifests.items() if not path.endswith("NOTES.txt") and text.strip()}


def stream(manifests):
    return "".join(f"---\n# {path}\n{text.strip()}\n" for path, text in sorted(manifests.items()))


if __name__ == "__main__":
    values = EVERY_OPTION if sys.argv[2:] == ["all"] else None
    Path(sys.argv[1]).write_text(stream(render(values)))
