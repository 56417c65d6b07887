"""The gateway beside Debian's websockify, on the same desktop and the same stream.

One TigerVNC desktop (Xvnc, 640x480, 32 bits per pixel), reached three ways by the same RFB
client: directly over TCP (the floor), through websockify (a WebSocket-to-TCP bridge, no
filtering) and through `hygie gateway` (TLS, session admission, RFB framing and filtering).
For each: the time from a 1x1 update request to its answer (p50, p99, over many requests:
latency added by the proxy is its figure minus the direct one), and full-screen Raw updates
for a fixed time (MB/s, and the proxy's CPU seconds per MB from /proc, its children's
included). Both proxies terminate TLS with the same certificate.

Usage: gateway.py HYGIE KUBECONFIG WORKDIR [SECONDS]. Needs the test control plane (the
gateway admits a Session there), Xvnc, vncpasswd, websockify and openssl.
"""

import base64
import hmac
import json
import os
import secrets
import socket
import ssl
import statistics
import subprocess
import sys
import time
from hashlib import sha256
from pathlib import Path

from websockets.sync.client import connect

HYGIE, KUBECONFIG, WORK = sys.argv[1], sys.argv[2], Path(sys.argv[3])
SECONDS = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
DISPLAY, RFB_PORT, WEBSOCKIFY_PORT, GATEWAY_PORT = 23, 5900, 18601, 18602
NAMESPACE = f"bench-gateway-{os.getpid()}"
WIDTH, HEIGHT = 640, 480
LATENCY_SAMPLES = 400


def kubectl(*args, stdin=None):
    out = subprocess.run(["kubectl", "--kubeconfig", KUBECONFIG, *args], input=stdin, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {out.stderr}")
    return out.stdout


def cpu_seconds(pid):
    """CPU seconds of `pid` and of its children (websockify serves each client in a child)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Tcp:
    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", RFB_PORT))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data)

    def read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


class Ws(Tcp):
    def __init__(self, uri, subprotocols, context=None):
        self.ws = connect(uri, subprotocols=subprotocols, ssl=context, max_size=None, compression=None)
        self.buffer = b""

    def send(self, data):
        self.ws.send(data)

    def read(self, n):
        while len(self.buffer) < n:
            self.buffer += self.ws.recv()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


def vnc_response(password, challenge):
    """DES of the challenge under the bit-reversed password, with openssl (no DES in Python's
    standard library)."""
    key = bytes(int(f"{b:08b}"[::-1], 2) for b in password.encode().ljust(8, b"\0")[:8])
    out = subprocess.run(["openssl", "enc", "-des-ecb", "-nopad", "-K", key.hex(), "-provider", "legacy", "-provider", "default"],
                         input=challenge, capture_output=True, check=True)
    return out.stdout


def handshake(link, password):
    """RFB 3.8 up to ServerInit, then Raw only and 32 bits per pixel."""
    assert link.read(12) == b"RFB 003.008\n"
    link.send(b"RFB 003.008\n")
    count = link.read(1)[0]
    types = link.read(count)
    if 2 in types:
        link.send(b"\x02")
        link.send(vnc_response(password, link.read(16)))
    else:
        link.send(b"\x01")
    assert link.read(4) == b"\0\0\0\0", "authenticated"
    link.send(b"\x01")
    init = link.read(24)
    link.read(int.from_bytes(init[20:24], "big"))
    link.send(bytes([2, 0, 0, 1]) + (0).to_bytes(4, "big", signed=True))


def request(link, incremental, w, h):
    link.send(bytes([3, incremental]) + (0).to_bytes(2, "big") * 2 + w.to_bytes(2, "big") + h.to_bytes(2, "big"))


def read_update(link):
    """One FramebufferUpdate of Raw rectangles; returns its size in bytes."""
    header = link.read(4)
    assert header[0] == 0, f"a screen update, not message {header[0]}"
    size = 4
    for _ in range(int.from_bytes(header[2:4], "big")):
        rect = link.read(12)
        w, h = int.from_bytes(rect[4:6], "big"), int.from_bytes(rect[6:8], "big")
        encoding = int.from_bytes(rect[8:12], "big", signed=True)
        body = w * h * 4 if encoding == 0 else 0
        link.read(body)
        size += 12 + body
    return size


def measure(make_link, password, pid):
    link = make_link()
    handshake(link, password)
    latencies = []
    for _ in range(LATENCY_SAMPLES):
        start = time.perf_counter()
        request(link, 0, 1, 1)
        read_update(link)
        latencies.append((time.perf_counter() - start) * 1000)
    cpu0 = cpu_seconds(pid) if pid else 0.0
    start, moved = time.perf_counter(), 0
    while time.perf_counter() - start < SECONDS:
        request(link, 0, WIDTH, HEIGHT)
        moved += read_update(link)
    elapsed = time.perf_counter() - start
    cpu = (cpu_seconds(pid) - cpu0) if pid else 0.0
    mb = moved / 1e6
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "mb_per_s": mb / elapsed,
        "cpu_s_per_mb": cpu / mb if pid else 0.0,
    }


def main():
    WORK.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    (WORK / "desktop.key").write_bytes(key)
    kubectl("create", "namespace", NAMESPACE)
    kubectl("apply", "-n", NAMESPACE, "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "hygie.io/v1alpha1", "kind": "Workspace", "metadata": {"name": "bench"},
         "spec": {"hostingProfile": "p", "image": "registry.example.fr/t@sha256:" + "1" * 64, "storage": {"size": "1Gi"}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench-0", "labels": {"app.kubernetes.io/managed-by": "hygie", "hygie.io/workspace": "bench"}},
         "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                  "containers": [{"name": "t", "image": "registry.example.fr/t@sha256:" + "1" * 64,
                                  "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}},
    ]}))
    kubectl("patch", "pod", "bench-0", "-n", NAMESPACE, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}}))
    uid = kubectl("get", "workspace", "bench", "-n", NAMESPACE, "-o", "jsonpath={.metadata.uid}")
    # The gateway asks about the session's user and its groups but the system ones: give this
    # user `connect` by name, as a member's Role does.
    user = json.loads(kubectl("auth", "whoami", "-o", "json"))["status"]["userInfo"]
    kubectl("create", "role", "connect", "-n", NAMESPACE, "--verb=connect", "--resource=workspaces.hygie.io", "--resource-name=bench")
    kubectl("create", "rolebinding", "connect", "-n", NAMESPACE, "--role=connect", f"--user={user['username']}")
    digest = hmac.new(key, b"hygie desktop\0" + uid.encode(), "sha256").digest()
    password = base64.urlsafe_b64encode(digest).decode().rstrip("=")[:8]

    obfuscated = subprocess.run(["vncpasswd", "-f"], input=password.encode(), capture_output=True, check=True).stdout
    (WORK / "passwd").write_bytes(obfuscated)
    processes = []
    try:
        processes.append(subprocess.Popen(["Xvnc", f":{DISPLAY}", "-rfbport", str(RFB_PORT), "-SecurityTypes", "VncAuth",
                                           "-PasswordFile", str(WORK / "passwd"), "-geometry", f"{WIDTH}x{HEIGHT}", "-depth", "24"],
                                          stderr=subprocess.DEVNULL))
        time.sleep(1)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                        "-subj", "/CN=gateway", "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE",
                        "-keyout", str(WORK / "tls.key"), "-out", str(WORK / "tls.crt")], capture_output=True, check=True)
        websockify = subprocess.Popen(["websockify", "--ssl-only", "--cert", str(WORK / "tls.crt"), "--key", str(WORK / "tls.key"),
                                       str(WEBSOCKIFY_PORT), f"127.0.0.1:{RFB_PORT}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(websockify)
        (WORK / "web").mkdir(exist_ok=True)
        gateway = subprocess.Popen([HYGIE, "gateway", "--listen", f"127.0.0.1:{GATEWAY_PORT}", "--tls-cert", str(WORK / "tls.crt"),
                                    "--tls-key", str(WORK / "tls.key"), "--web-root", str(WORK / "web"),
                                    "--desktop-key-file", str(WORK / "desktop.key")],
                                   env={**os.environ, "KUBECONFIG": KUBECONFIG}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(gateway)
        time.sleep(1.5)

        context = ssl.create_default_context(cafile=str(WORK / "tls.crt"))

        def through_gateway():
            secret = secrets.token_urlsafe(32)
            session = json.loads(kubectl("create", "-n", NAMESPACE, "-o", "json", "-f", "-", stdin=json.dumps(
                {"apiVersion": "hygie.io/v1alpha1", "kind": "Session", "metadata": {"generateName": "bench-"},
                 "spec": {"workspace": "bench", "user": user["username"],
                          "groups": [g for g in user.get("groups", []) if not g.startswith("system:")],
                          "secretDigest": "sha256:" + sha256(secret.encode()).hexdigest()}})))
            name = session["metadata"]["name"]
            return Ws(f"wss://127.0.0.1:{GATEWAY_PORT}/session/{NAMESPACE}/{name}", ["binary", "hygie-secret." + secret], context)

        rows = {
            "direct (TCP)": measure(Tcp, password, None),
            "websockify 0.10": measure(lambda: Ws(f"wss://127.0.0.1:{WEBSOCKIFY_PORT}/", ["binary"], context), password, websockify.pid),
            "hygie gateway": measure(through_gateway, password, gateway.pid),
        }
    finally:
        for process in processes:
            process.kill()
        kubectl("delete", "namespace", NAMESPACE, "--wait=false")

    direct = rows["direct (TCP)"]
    print(f"{'path':<18} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'added p99':>10} {'MB/s':>8} {'CPU s/MB':>9}")
    for path, row in rows.items():
        print(f"{path:<18} {row['p50_ms']:8.3f} {row['p99_ms']:8.3f} {row['p50_ms'] - direct['p50_ms']:10.3f} "
              f"{row['p99_ms'] - direct['p99_ms']:10.3f} {row['mb_per_s']:8.1f} {row['cpu_s_per_mb']:9.5f}")
    gateway, bridge = rows["hygie gateway"], rows["websockify 0.10"]
    print(f"gateway/websockify cpu_per_mb={gateway['cpu_s_per_mb'] / max(bridge['cpu_s_per_mb'], 1e-9):.2f} "
          f"added_p50={(gateway['p50_ms'] - direct['p50_ms']) / max(bridge['p50_ms'] - direct['p50_ms'], 1e-9):.2f} "
          f"throughput={gateway['mb_per_s'] / bridge['mb_per_s']:.2f}")


if __name__ == "__main__":
    main()
