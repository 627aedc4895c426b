//! A real `redis-server` for the shared-store tests: on a free 127.0.0.1
//! port, with a password, nothing written to disk, killed on drop.
//!
//! The tests that need it are `#[ignore]`d, so a plain `cargo test` on a
//! machine without `redis-server` reports them as ignored rather than
//! passed; `cargo test -- --ignored` runs them (CI does, after installing
//! `redis-server` and `openssl`), and a missing program then fails the test.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::process::{free_port, send_signal};

/// The password every test server requires, so tests can check it never
/// shows up in output or logs.
pub const REDIS_PASSWORD: &str = "redis-pass-5d8c1e0b";

/// A running `redis-server`.
pub struct RedisServer {
    binary: PathBuf,
    child: Option<Child>,
    /// With TLS only: the folder of its self-signed certificate and key.
    tls: Option<PathBuf>,
    /// The port it listens on (kept across [`RedisServer::restart`]).
    pub port: u16,
}

fn find_program(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// The program's path; a test that needs a missing program fails, saying
/// how to install it.
pub fn program(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| {
        panic!("{name} is not installed: apt-get install {name} (these tests need it)")
    })
}

impl RedisServer {
    /// Start a server.
    pub async fn start() -> Self {
        let mut server = Self {
            binary: program("redis-server"),
            child: None,
            tls: None,
            port: free_port(),
        };
        server.spawn().await;
        server
    }

    /// Start a server that speaks only TLS, with a self-signed certificate
    /// for `localhost` made by `openssl`.
    pub async fn start_tls() -> Self {
        let binary = program("redis-server");
        let openssl = program("openssl");
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "flexbridge-redis-tls-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("a temp folder");
        let status = Command::new(openssl)
            .current_dir(&dir)
            .args(["req", "-x509", "-nodes", "-days", "1"])
            .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-keyout", "key.pem", "-out", "cert.pem"])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl made a certificate");
        let mut server = Self {
            binary,
            child: None,
            tls: Some(dir),
            port,
        };
        server.spawn().await;
        server
    }

    /// `redis://` URL with the password.
    pub fn url(&self) -> String {
        format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}", self.port)
    }

    /// Kill the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port, empty.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Freeze (`SIGSTOP`) or thaw (`SIGCONT`) the server: frozen, it keeps
    /// its connections and accepts new ones but never answers, like a
    /// network black hole.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server runs").id();
        assert!(send_signal(pid, signal), "kill -{signal} {pid}");
    }

    /// A connection for inspecting what flexbridge wrote.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("a valid URL")
            .get_multiplexed_async_connection()
            .await
            .expect("the test server answers")
    }

    /// The value at `key`, if any.
    pub async fn get(&self, key: &str) -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.connection().await)
            .await
            .expect("GET answers")
    }

    /// Set `key` to `value` for `ttl_ms`, as another instance would.
    pub async fn set(&self, key: &str, value: &str, ttl_ms: u64) {
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(ttl_ms)
            .query_async::<()>(&mut self.connection().await)
            .await
            .expect("SET answers");
    }

    /// Milliseconds `key` has to live (`-2` when absent).
    pub async fn pttl(&self, key: &str) -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut self.connection().await)
            .await
            .expect("PTTL answers")
    }

    /// Wait until `key` is gone, for at most `limit`.
    pub async fn wait_until_gone(&self, key: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.get(key).await.is_some() {
            assert!(
                Instant::now() < deadline,
                "{key} still there after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn spawn(&mut self) {
        let mut command = Command::new(&self.binary);
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some(dir) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(dir.join("cert.pem"))
                .arg("--tls-key-file")
                .arg(dir.join("key.pem"))
                .arg("--tls-ca-cert-file")
                .arg(dir.join("cert.pem"))
                .args(["--tls-auth-clients", "no"]),
        };
        let child = command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--requirepass", REDIS_PASSWORD])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        self.wait_until_answering().await;
    }

    /// Any reply to PING (`-NOAUTH` included) means it is listening; a TLS
    /// server only needs to accept the connection.
    async fn wait_until_answering(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await {
                if self.tls.is_some() {
                    return;
                }
                let mut reply = [0u8; 1];
                if stream.write_all(b"PING\r\n").await.is_ok()
                    && stream.read_exact(&mut reply).await.is_ok()
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {} within 5 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.tls {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
