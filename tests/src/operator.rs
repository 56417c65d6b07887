//! Running `hygie run` against the test control plane, as its own identity, and reading what
//! the API server's audit log says it did.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command},
    time::Duration,
};

use crate::{
    cluster::{kubeconfig, kubectl, kubectl_with_input},
    repo_root,
};

/// The `hygie` binary built by `cargo build -p hygie --features faults` (tests/run.sh): the
/// operator with its fault points, which [`Operator::start_armed`] arms.
pub fn operator_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let binary = target.join("debug/hygie");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p hygie --features faults` first",
        binary.display()
    );
    binary
}

/// The identity the operator authenticates as (see tests/controlplane/up.sh): the chart's
/// ServiceAccount, release `hygie` in namespace `hygie-system`.
pub const OPERATOR_USER: &str = "system:serviceaccount:hygie-system:hygie";
pub const OPERATOR_NAMESPACE: &str = "hygie-system";

/// Installs the chart's ServiceAccount and RBAC, rendered by Helm's SDK, so that the operator
/// runs with exactly the rights the chart grants.
pub fn install_chart_rbac() {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let rendered = match std::env::var_os("HYGIE_CHART_RENDER") {
            Some(path) => PathBuf::from(path),
            None => {
                let path = kubeconfig().parent().unwrap().join("chart.yaml");
                let python = repo_root().join(".venv/bin/python");
                assert!(
                    python.exists(),
                    "the Python virtualenv of tests/run.sh is missing: run it once"
                );
                let status = Command::new(python)
                    .arg(repo_root().join("tests/validators/chart.py"))
                    .arg(&path)
                    .status()
                    .expect("python runs");
                assert!(status.success(), "rendering the chart failed");
                path
            }
        };
        let text = std::fs::read_to_string(&rendered).expect("a rendered chart");
        let access: Vec<&str> = text
            .split("\n---\n")
            .filter(|doc| {
                [
                    "kind: ServiceAccount",
                    "kind: ClusterRole",
                    "kind: ClusterRoleBinding",
                    "kind: Role",
                    "kind: RoleBinding",
                ]
                .iter()
                .any(|kind| doc.lines().any(|line| line == *kind))
            })
            .collect();
        assert!(
            access.len() >= 5,
            "the chart renders its ServiceAccount and RBAC"
        );
        let _ = kubectl(&["create", "namespace", OPERATOR_NAMESPACE]);
        let out = kubectl_with_input(
            &["apply", "--server-side", "-f", "-"],
            Some(&access.join("\n---\n")),
        );
        assert!(
            out.success,
            "applying the chart's RBAC failed: {}",
            out.stderr
        );
    });
}

/// Tests that run an operator take turns: two operators on one control plane would both act.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// A running `hygie run`, killed when dropped.
pub struct Operator {
    child: Child,
    pub identity: String,
    pub metrics_port: u16,
    log: PathBuf,
}

impl Operator {
    /// Starts an operator named `identity`, competing for the Lease `lease`.
    pub fn start(identity: &str, lease: &str, resync_seconds: u64) -> Operator {
        Operator::start_with(identity, lease, resync_seconds, &[])
    }

    /// Like [`Operator::start`], with more arguments to `hygie run`.
    pub fn start_with(
        identity: &str,
        lease: &str,
        resync_seconds: u64,
        extra: &[&str],
    ) -> Operator {
        Operator::start_armed(identity, lease, resync_seconds, extra, None)
    }

    /// Like [`Operator::start_with`], with the fault point `fault` armed: the operator aborts
    /// when it reaches it (a build with the `faults` feature, as tests/run.sh builds it).
    pub fn start_armed(
        identity: &str,
        lease: &str,
        resync_seconds: u64,
        extra: &[&str],
        fault: Option<&str>,
    ) -> Operator {
        install_chart_rbac();
        let state = kubeconfig()
            .parent()
            .expect("the kubeconfig lives in the state folder")
            .to_owned();
        let log = state.join(format!("operator-{identity}.log"));
        let metrics_port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(operator_binary())
            .args([
                "run",
                "--lease-name",
                lease,
                "--lease-namespace",
                OPERATOR_NAMESPACE,
                "--lease-duration",
                "6",
            ])
            .args(["--resync-seconds", &resync_seconds.to_string()])
            .args(["--metrics-address", &format!("127.0.0.1:{metrics_port}")])
            .args(extra)
            .env("KUBECONFIG", state.join("operator.kubeconfig"))
            .env("POD_NAME", identity)
            .env("RUST_LOG", "info,hygie=debug")
            .env(
                "FAILPOINTS",
                fault
                    .map(|point| format!("{point}=panic"))
                    .unwrap_or_default(),
            )
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(log.with_extension("stderr")).unwrap())
            .spawn()
            .expect("the hygie binary starts");
        Operator {
            child,
            identity: identity.to_owned(),
            metrics_port,
            log,
        }
    }

    /// Everything the operator logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits, at most `limit`, for the operator to abort at its armed fault point; returns
    /// whether it did.
    pub fn crashed_at(&mut self, point: &str, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let said =
                    std::fs::read_to_string(self.log.with_extension("stderr")).unwrap_or_default();
                return said.contains(&format!("failpoint {point} panic"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Whether the process is still the one started: it has neither exited nor crashed.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a graceful exit. Returns whether it exited by itself.
    pub fn terminate(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        false
    }

    /// The operator's /metrics page.
    pub fn metrics(&self) -> String {
        let out = Command::new("curl")
            .args([
                "-sf",
                &format!("http://127.0.0.1:{}/metrics", self.metrics_port),
            ])
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One request in the API server's audit log.
#[derive(Debug, Clone)]
pub struct Request {
    pub verb: String,
    /// API group, empty for the core group.
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub at: jiff::Timestamp,
}

impl Request {
    /// `resource/subresource`, as RBAC rules name it.
    pub fn resource_with_subresource(&self) -> String {
        match self.subresource.as_str() {
            "" => self.resource.clone(),
            sub => format!("{}/{sub}", self.resource),
        }
    }

    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

/// The requests `user` made since `since`, from the audit log of tests/controlplane.
pub fn requests_by(user: &str, since: jiff::Timestamp) -> Vec<Request> {
    let state = kubeconfig().parent().unwrap().to_owned();
    let file =
        std::fs::File::open(state.join("audit.log")).expect("the API server writes an audit log");
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
        .filter(|event| event["user"]["username"] == user)
        .filter_map(|event| {
            let at: jiff::Timestamp = event["stageTimestamp"].as_str()?.parse().ok()?;
            let object = &event["objectRef"];
            Some(Request {
                verb: event["verb"].as_str()?.to_owned(),
                group: object["apiGroup"].as_str().unwrap_or_default().to_owned(),
                resource: object["resource"].as_str().unwrap_or_default().to_owned(),
                subresource: object["subresource"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                namespace: object["namespace"].as_str().unwrap_or_default().to_owned(),
                name: object["name"].as_str().unwrap_or_default().to_owned(),
                at,
            })
        })
        .filter(|request| request.at >= since)
        .collect()
}
