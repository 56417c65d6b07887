//! Outages of the test control plane under a running operator: etcd stopped (SIGSTOP: a disk
//! that hangs, a member cut off, every request to it waits) and the API server restarted with
//! the command line it was started with, as a rolling upgrade of the control plane does.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use crate::cluster::{kubeconfig, kubectl};

fn state() -> PathBuf {
    kubeconfig()
        .parent()
        .expect("the kubeconfig lives in the state folder")
        .to_owned()
}

fn pid_of(component: &str) -> u32 {
    let file = state().join(format!("{component}.pid"));
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .expect("a process id")
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}

/// Stops etcd for `duration`, then lets it go on.
pub fn stop_etcd_for(duration: Duration) {
    let pid = pid_of("etcd");
    signal(pid, "STOP");
    std::thread::sleep(duration);
    signal(pid, "CONT");
}

/// Stops the API server (SIGTERM, as the kubelet stops a static pod), starts it again with the
/// same command line and environment, and waits until it is ready; returns how long it was
/// away.
pub fn restart_api_server() -> Duration {
    let pid = pid_of("kube-apiserver");
    let command_line = std::fs::read(format!("/proc/{pid}/cmdline")).expect("its command line");
    let mut args: Vec<String> = command_line
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let program = args.remove(0);
    let away = Instant::now();
    signal(pid, "TERM");
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Started in the background of a shell, as tests/controlplane/up.sh starts it: it is not
    // this process's child, and outlives the test.
    let log = state().join("kube-apiserver.log");
    let started = Command::new("sh")
        .arg("-c")
        .arg(r#"log=$1; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!"#)
        .arg("sh")
        .arg(&log)
        .arg(program)
        .args(args)
        .output()
        .expect("the API server starts again");
    let pid = String::from_utf8(started.stdout).expect("a process id");
    // tests/controlplane/down.sh stops whichever process the file names.
    std::fs::write(state().join("kube-apiserver.pid"), pid.trim()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !kubectl(&["get", "--raw", "/readyz"]).success {
        assert!(
            Instant::now() < deadline,
            "the API server is not ready again"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    away.elapsed()
}
