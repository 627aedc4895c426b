//! Running the real `flexbridge` binary, as a user or Fly.io would.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A running `flexbridge` process, stopped on drop; its stdout (the logs)
/// goes to a file the test can read, its stderr to another.
pub struct Process {
    child: Child,
    pub address: String,
    pub port: u16,
    log_path: PathBuf,
    stderr_path: PathBuf,
}

impl Process {
    /// POST a form to `path`; the status and the body.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", self.address))
            .form(form)
            .send()
            .await
            .expect("the request reaches the process");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a text body"))
    }

    /// Send a signal (e.g. "TERM", "INT") to the process.
    pub fn signal(&self, name: &str) {
        assert!(send_signal(self.child.id(), name), "kill -{name} failed");
    }

    /// Wait up to `limit` for the process to exit; its exit code.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still alive (it neither exited nor crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The operating-system process id, to read `/proc/{pid}/status`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stop the process as a platform would (SIGTERM, so it writes out its
    /// buffered log lines; SIGKILL if it has not exited within 10 s) and
    /// return everything it logged.
    pub fn stop_and_read_logs(mut self) -> String {
        self.stop(Duration::from_secs(10));
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// SIGTERM, then SIGKILL if the process has not exited within `limit`.
    fn stop(&mut self, limit: Duration) {
        if self.is_running() {
            // Not asserted: this runs in Drop, where a panic would abort.
            send_signal(self.child.id(), "TERM");
        }
        if self.wait_for_exit(limit).is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Not SIGKILL at once: a process that exits writes out its coverage
        // profile under `cargo llvm-cov`.
        self.stop(Duration::from_secs(2));
        let _ = std::fs::remove_file(&self.log_path);
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// A port for a server a test starts itself (flexbridge, redis-server,
/// prometheus): free when asked, and not handed out before in this run.
///
/// It is taken below the kernel's ephemeral range. A server binding port 0
/// (a `MockServer`, an app in this process) or an outgoing connection is
/// only ever given a port inside that range, so none of them can take this
/// one between this check and the server's own bind. Where the range leaves
/// no room below it, the kernel picks.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let first = ephemeral_from.saturating_sub(10_000).max(1024);
    let span = u64::from(ephemeral_from.saturating_sub(first));
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    if span < 1000 {
        // The range starts too low on this machine to leave room below it:
        // a port the kernel picks, which a later port-0 bind may be given.
        loop {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free local port")
                .port();
            if handed_out.insert(port) {
                return port;
            }
        }
    }
    // From a random place, so that test binaries running at once seldom
    // try the same port.
    let start = RandomState::new().hash_one(handed_out.len());
    for step in 0..span {
        let port = first + u16::try_from((start % span + step) % span).unwrap_or(0);
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
    panic!("no free port from {first} to {ephemeral_from}");
}

/// A local port that is bound but never listened on, so connections to it
/// are refused. The socket is held until the tests end: a port merely closed
/// again could be given to a server started meanwhile on port 0 (a
/// `MockServer`), which would then answer in its place.
pub fn closed_port() -> u16 {
    static HELD: Mutex<Vec<tokio::net::TcpSocket>> = Mutex::new(Vec::new());
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("a local port");
    let port = socket.local_addr().expect("its address").port();
    HELD.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(socket);
    port
}

/// An HTTP origin on a [`closed_port`].
pub fn closed_origin() -> String {
    format!("http://127.0.0.1:{}", closed_port())
}

/// Send signal `name` (e.g. "TERM", "STOP") to process `pid`; whether
/// `kill` delivered it.
pub fn send_signal(pid: u32, name: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|status| status.success())
}

/// The binary with nothing of the tests' environment but [`coverage_env`].
pub fn flexbridge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flexbridge"));
    command.env_clear().envs(coverage_env());
    command
}

/// `LLVM_PROFILE_FILE` if set: under `cargo llvm-cov`, the runs of the
/// binary by a test count too, whatever else the test clears.
pub fn coverage_env() -> impl Iterator<Item = (OsString, OsString)> {
    std::env::vars_os().filter(|(name, _)| name == "LLVM_PROFILE_FILE")
}

/// How long a started binary has to answer `/healthz`.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// Start the binary with `args` and `env` (nothing inherited) and wait until
/// `/healthz` answers, for at most [`START_DEADLINE`].
pub async fn start_binary(args: &[&str], env: &[(&str, &str)]) -> Process {
    start_command(flexbridge(), args, env).await
}

/// [`start_binary`] through `command`: the binary, or a shell that sets
/// something up and then `exec`s it (so the process is still the binary).
pub async fn start_command(mut command: Command, args: &[&str], env: &[(&str, &str)]) -> Process {
    let port = free_port();
    let log_path =
        std::env::temp_dir().join(format!("flexbridge-test-{}-{port}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).expect("a temp log file");
    // Settings errors and panics go to stderr: kept to say why a start failed.
    let stderr_path = log_path.with_extension("stderr");
    let stderr = std::fs::File::create(&stderr_path).expect("a temp stderr file");
    command
        .args(args)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .stdout(log)
        .stderr(stderr);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut process = Process {
        child: command.spawn().expect("the binary starts"),
        address: format!("http://127.0.0.1:{port}"),
        port,
        log_path,
        stderr_path,
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + START_DEADLINE;
    // A binary that has exited will never answer: no use waiting it out.
    while Instant::now() < deadline && process.is_running() {
        if client
            .get(format!("{}/healthz", process.address))
            .send()
            .await
            .is_ok()
        {
            return process;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    never_answered(process)
}

/// Fail a start with what tells why: how the process ended and what it wrote.
fn never_answered(mut process: Process) -> ! {
    let state = match process.child.try_wait() {
        Ok(Some(status)) => format!("it exited ({status})"),
        _ => format!("it was still running after {} s", START_DEADLINE.as_secs()),
    };
    let stderr = std::fs::read_to_string(&process.stderr_path).unwrap_or_default();
    let port = process.port;
    let logs = process.stop_and_read_logs();
    panic!(
        "flexbridge did not answer /healthz on port {port}: {state}\n\
         stderr:\n{stderr}\nlog:\n{logs}"
    );
}

/// Run the binary with `env` (signature checks off, debug logs), POST `form`
/// to each route expecting its status, stop it and return everything it logged.
pub async fn logs_of_posts(
    env: &[(&str, &str)],
    form: &[(&str, &str)],
    routes: &[(&str, u16)],
) -> String {
    let mut env = env.to_vec();
    env.extend([
        ("TWILIO_VALIDATE_SIGNATURES", "false"),
        ("RUST_LOG", "debug"),
    ]);
    let process = start_binary(&[], &env).await;
    for (route, status) in routes {
        assert_eq!(process.post_form(route, form).await.0, *status, "{route}");
    }
    process.stop_and_read_logs()
}

/// The events of JSON `logs`, one per line, in order.
pub fn log_events(logs: &str) -> impl Iterator<Item = serde_json::Value> + '_ {
    logs.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
}

/// The request spans in JSON `logs`: the `span` of each request's closing
/// line, in the order the requests ended.
pub fn request_spans(logs: &str) -> Vec<serde_json::Value> {
    log_events(logs)
        .filter(|line| line["fields"]["message"] == "close")
        .map(|line| line["span"].clone())
        .collect()
}
