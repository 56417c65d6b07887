//! The gateway, on the test control plane, with a real desktop (TigerVNC's `Xvnc`) and a real
//! browser (Chromium's headless shell), each person with their own certificate: alice, a
//! member, runs `hygie connect` and her browser shows the desktop; the same link opened again
//! is refused, and so is mallory, who may open a session but not connect; text pasted in
//! never reaches the desktop's clipboard (unless the gateway allows paste in), and text copied
//! in the desktop never reaches the browser; each session is on record with its figures.
//!
//! This control plane runs no kubelet: the workspace's pod is made by the platform team and
//! given the address of the desktop running here, as a kubelet would report it.

use std::time::Duration;

use hygie_tests::{
    cluster::{TestNamespace, client, install_crds, kubectl_ok, kubectl_with_input},
    desktop::{self, BACKGROUND, Browser, Gateway, RfbClient, pixels_of, scratch},
    users::hygie_as,
};
use serde_json::{Value, json};

const DISPLAY: u16 = 17;

fn apply(ns: &str, object: &Value) {
    let out = kubectl_with_input(&["apply", "-n", ns, "-f", "-"], Some(&object.to_string()));
    assert!(out.success, "{}", out.stderr);
}

/// `hygie connect` as `user`: the link it prints.
fn connect(user: &str, ns: &str, gateway: &Gateway) -> String {
    let out = hygie_as(
        user,
        &["connect", "study", "-n", ns, "--gateway", &gateway.url],
    );
    assert!(
        out.status.success(),
        "{user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The audit record of `action` the gateway wrote for the session of `link`, waiting for it.
async fn record(gateway: &Gateway, link: &str, action: &str) -> Value {
    let (_, session, _) = desktop::session_of(link);
    for _ in 0..50 {
        let found = gateway
            .records(&session)
            .into_iter()
            .find(|r| r["audit_action"] == action);
        if let Some(found) = found {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {action} record for {session}: {}", gateway.log());
}

fn evidence(record: &Value) -> Value {
    serde_json::from_str(record["audit_evidence"].as_str().unwrap()).unwrap()
}

fn cut_text(text: &str) -> Vec<u8> {
    let mut message = vec![6, 0, 0, 0];
    message.extend((text.len() as u32).to_be_bytes());
    message.extend(text.as_bytes());
    message
}

#[tokio::test]
async fn a_member_sees_the_desktop_through_the_gateway_and_nothing_leaves_but_the_screen() {
    install_crds();
    let client = client().await;
    let namespace = TestNamespace::create(&client, "gateway").await;
    let ns = namespace.name.as_str();
    // The profile shortens the gateway's longest session (8 hours) to 10 minutes.
    let profile = format!("gateway-{ns}");
    apply(
        ns,
        &json!({"apiVersion": "hygie.io/v1alpha1", "kind": "HostingProfile", "metadata": {"name": profile},
            "spec": {"provider": "Scaleway",
                     "certifications": [{"type": "HDS", "reference": "Scaleway HDS certificate 2024-HDS-117", "validUntil": "2029-06-30"}],
                     "residency": {"country": "FR", "regions": ["fr-par"]},
                     "storage": {"storageClassName": "scw-bssd", "encryption": {"type": "ProviderManaged"}},
                     "images": {"allowedRegistries": ["registry.example.fr/"]},
                     "sessions": {"maxSeconds": 600}}}),
    );
    apply(
        ns,
        &json!({"apiVersion": "hygie.io/v1alpha1", "kind": "Workspace", "metadata": {"name": "study"},
            "spec": {"hostingProfile": profile, "members": [{"kind": "User", "name": "alice", "role": "Owner"}],
                     "image": "registry.example.fr/research/jupyter@sha256:1111111111111111111111111111111111111111111111111111111111111111",
                     "storage": {"size": "1Gi"}}}),
    );
    apply(
        ns,
        &json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "study-0", "labels": {"app.kubernetes.io/managed-by": "hygie", "hygie.io/workspace": "study"}},
            "spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "tool", "image": "registry.example.fr/tool@sha256:1111111111111111111111111111111111111111111111111111111111111111",
                                     "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}}),
    );
    let address = json!({"status": {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}], "conditions": [{"type": "Ready", "status": "True"}]}});
    kubectl_ok(&[
        "patch",
        "pod",
        "study-0",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        &address.to_string(),
    ]);
    // What the operator grants a member; mallory may open sessions, not connect.
    apply(
        ns,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "study-owner"},
            "rules": [{"apiGroups": ["hygie.io"], "resources": ["workspaces"], "resourceNames": ["study"], "verbs": ["get", "connect"]},
                      {"apiGroups": ["hygie.io"], "resources": ["sessions"], "verbs": ["create"]}]}),
    );
    apply(
        ns,
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "sessions"},
            "rules": [{"apiGroups": ["hygie.io"], "resources": ["sessions"], "verbs": ["create"]}]}),
    );
    kubectl_ok(&[
        "create",
        "rolebinding",
        "-n",
        ns,
        "alice",
        "--role=study-owner",
        "--user=alice",
    ]);
    kubectl_ok(&[
        "create",
        "rolebinding",
        "-n",
        ns,
        "mallory",
        "--role=sessions",
        "--user=mallory",
    ]);

    let uid = kubectl_ok(&[
        "get",
        "workspace",
        "study",
        "-n",
        ns,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let mut key = vec![0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut key).unwrap();
    let password = hygie::gateway::credential::desktop_password(&key, uid.trim());
    let dir = scratch("gateway");
    let _desktop = desktop::desktop(&dir, DISPLAY, 5900, &password);
    let gateway = Gateway::start(&dir, 18443, &key, 0);
    let mut browser = Browser::start().await;

    // Alice's browser shows the desktop.
    let link = connect("alice", ns, &gateway);
    let shot = dir.join("desktop.png");
    let title = browser
        .screenshot(&link, Duration::from_secs(12), &shot)
        .await;
    let shown = pixels_of(&shot, BACKGROUND);
    assert!(
        shown > 200_000,
        "the desktop's 640x480 background is on screen ({shown} pixels, title {title:?}): see {}; console: {:?}",
        shot.display(),
        browser.console
    );
    let opened = record(&gateway, &link, "SessionOpened").await;
    assert_eq!(evidence(&opened)["user"], "alice");
    assert_eq!(evidence(&opened)["target"], "Workspace/study");
    assert_eq!(
        evidence(&opened)["longestSeconds"],
        "600",
        "the profile's bound, shorter than the gateway's"
    );

    // The same link again: refused, nothing shown.
    let again = dir.join("again.png");
    browser
        .screenshot(&link, Duration::from_secs(2), &again)
        .await;
    assert_eq!(
        pixels_of(&again, BACKGROUND),
        0,
        "a second opening shows nothing"
    );
    let refused = record(&gateway, &link, "SessionRefused").await;
    assert!(
        refused["audit_reasons"]
            .as_str()
            .unwrap()
            .contains("already opened"),
        "{refused}"
    );
    let ended = record(&gateway, &link, "SessionEnded").await;
    // The Session says when it ended: its workspace's idle time starts there.
    let (_, session, _) = desktop::session_of(&link);
    let mut ended_at = String::new();
    for _ in 0..50 {
        ended_at = kubectl_ok(&[
            "get",
            "session",
            &session,
            "-n",
            ns,
            "-o",
            "jsonpath={.status.endedAt}",
        ]);
        if !ended_at.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!ended_at.is_empty(), "the gateway marked {session} ended");
    assert!(
        evidence(&ended)["bytesToBrowser"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );

    // Mallory holds a session of her own, and no right to connect.
    let hers = connect("mallory", ns, &gateway);
    assert!(
        RfbClient::open(&hers, 18443, &gateway.certificate)
            .await
            .is_err(),
        "mallory was let in"
    );
    let refused = record(&gateway, &hers, "SessionRefused").await;
    assert!(
        refused["audit_reasons"]
            .as_str()
            .unwrap()
            .contains("may not connect"),
        "{refused}"
    );

    // Nothing through the clipboard, either way.
    let link = connect("alice", ns, &gateway);
    let mut rfb = RfbClient::open(&link, 18443, &gateway.certificate)
        .await
        .unwrap();
    rfb.send(&cut_text("pasted-through-the-gateway")).await;
    let _copying = desktop::copy_in_desktop(DISPLAY, "copied-out-of-the-desktop");
    // Raw only, and a whole screen: the stream flows, so silence would mean something.
    rfb.send(&[2, 0, 0, 1, 0, 0, 0, 0]).await;
    rfb.send(&[3, 0, 0, 0, 0, 0, 2, 128, 1, 224]).await;
    let (received, closed) = rfb.receive_for(Duration::from_secs(3)).await;
    assert!(!closed, "the gateway kept the session open");
    assert_eq!(received.first(), Some(&0), "a screen update came");
    let copied = b"copied-out-of-the-desktop";
    assert!(
        !received.windows(copied.len()).any(|w| w == copied),
        "the desktop's clipboard reached the browser"
    );
    assert!(!desktop::clipboard(DISPLAY).contains("pasted-through-the-gateway"));
    drop(rfb);
    let ended = record(&gateway, &link, "SessionEnded").await;
    let dropped: u32 = evidence(&ended)["clipboardDropped"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        dropped >= 2,
        "the paste and the copy were dropped and counted: {ended}"
    );
    drop(_copying);

    // A gateway that allows paste in lets it through: what the test observes is real.
    let pasting = Gateway::start(&scratch("gateway-paste"), 18444, &key, 64);
    let link = connect("alice", ns, &pasting);
    let mut rfb = RfbClient::open(&link, 18444, &pasting.certificate)
        .await
        .unwrap();
    rfb.send(&cut_text("pasted-in-allowed")).await;
    let mut pasted = String::new();
    for _ in 0..30 {
        pasted = desktop::clipboard(DISPLAY);
        if pasted.contains("pasted-in-allowed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        pasted.contains("pasted-in-allowed"),
        "paste in, allowed, reaches the desktop: {pasted:?}"
    );
    kubectl_ok(&["delete", "hostingprofile", &profile]);
}
