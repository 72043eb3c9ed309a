//! A real `redis-server` for one test: a free loopback port, a temporary directory, no
//! persistence; killed when dropped. Never a system service, never a fixed port.
//! (`.ci/run` installs `redis-server` from the distribution's packages.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// More `redis-server` arguments, kept across restarts.
    extra: Vec<String>,
}

/// The `redis-server` to run: `$REDIS_SERVER` or the one on `PATH`.
fn binary() -> PathBuf {
    std::env::var_os("REDIS_SERVER").map_or_else(|| PathBuf::from("redis-server"), PathBuf::from)
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers `PING`.
    pub(crate) fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// [`RedisServer::start`] with more `redis-server` arguments (e.g. `--requirepass`).
    pub(crate) fn start_with(extra: &[&str]) -> RedisServer {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
            l.local_addr().expect("bound address").port()
        };
        let dir = tempfile::tempdir().expect("temporary directory for redis-server");
        let extra = extra.iter().map(|a| (*a).to_owned()).collect();
        let mut server = RedisServer { port, dir, child: None, extra };
        server.restart();
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server at once (SIGKILL): what a crash or a lost host looks like.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port, empty (`--save ""`: nothing persisted).
    pub(crate) fn restart(&mut self) {
        self.kill();
        let child = Command::new(binary())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); install it (`apt-get install redis-server`; .ci/run does)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// `GET key` over a plain connection: the value, or `None` when the key is absent.
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect to redis-server");
        s.set_read_timeout(Some(Duration::from_secs(2))).expect("read timeout");
        let cmd = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
        s.write_all(cmd.as_bytes()).expect("send GET");
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).expect("read GET");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("$-1") {
            return None;
        }
        text.split("\r\n").nth(1).map(str::to_owned)
    }

    /// Sends one command over a new plain connection and returns Redis's reply as text
    /// (a status or an integer as Redis writes it, `+OK` or `:2`; a bulk string's value);
    /// waits up to 10 s, so `DEBUG SLEEP` answers.
    pub(crate) fn command(&self, args: &[&str]) -> String {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect to redis-server");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("read timeout");
        let mut cmd = format!("*{}\r\n", args.len());
        for a in args {
            cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(cmd.as_bytes()).expect("send a command");
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).expect("read the reply");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        // A bulk string's value is on the next line.
        match lines.next() {
            Some(value) if first.starts_with('$') => value.to_owned(),
            _ => first.to_owned(),
        }
    }

    fn ping(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        // A server that asks for a password answers too.
        matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
