//! A real S3-compatible server on loopback for the remote-cache tests: moto's
//! server (`make s3-venv` installs it; `make test` passes its path in
//! `RADPIPE_MOTO`). It enforces conditional writes (`If-None-Match: *`),
//! which a test checks first. Requests that the tests make themselves go
//! through curl, signed (`--aws-sigv4`) as moto wants for object reads.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "radpipe-test";
/// Planted credentials: no file radpipe writes may contain them.
pub const SECRET: &str = "planted-secret-9f3a1c77e2";
pub const TOKEN: &str = "planted-session-token-41be0d";

pub struct Moto {
    child: Option<Child>,
    pub port: u16,
    program: PathBuf,
}

fn program() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RADPIPE_MOTO") {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var_os("RADPIPE_CACHE").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/radpipe")))?;
    Some(cache.join("s3-venv/bin/moto_server")).filter(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Moto {
    /// Start the server with an empty bucket; `None` (with the reason on
    /// stderr) when moto is not installed, unless `RADPIPE_REQUIRE_SERVICES`
    /// is set (as `make test` does), where a missing server fails the test.
    pub fn start() -> Option<Moto> {
        let Some(program) = program().filter(|p| p.is_file()) else {
            assert!(
                std::env::var_os("RADPIPE_REQUIRE_SERVICES").is_none(),
                "moto_server not found (RADPIPE_MOTO or $RADPIPE_CACHE/s3-venv): run `make s3-venv`"
            );
            eprintln!("skipped: moto_server is not installed (run `make s3-venv`, or `make test`, which does)");
            return None;
        };
        let mut moto = Moto { child: None, port: free_port(), program };
        moto.restart();
        Some(moto)
    }

    /// (Re)start the server on the same port, with an empty bucket.
    pub fn restart(&mut self) {
        let child = Command::new(&self.program)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "moto_server did not listen on port {} within 60 s", self.port);
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(self.curl(&["-X", "PUT"], &format!("/{BUCKET}")).0, 200, "cannot create the bucket");
    }

    /// Kill the server (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The AWS environment a radpipe run gets, with the planted secrets.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "radpipe-test-key".into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
            ("AWS_SESSION_TOKEN", TOKEN.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
    }

    /// `curl ARGS URL-PATH`, signed with the test's credentials: (HTTP status, body).
    pub fn curl(&self, args: &[&str], path: &str) -> (u16, Vec<u8>) {
        let user = format!("radpipe-test-key:{SECRET}");
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                "--aws-sigv4",
                "aws:amz:us-east-1:s3",
                "--user",
                &user,
                "-H",
                "Content-Type: application/octet-stream",
            ])
            .args(args)
            .arg(format!("{}{path}", self.endpoint()))
            .output()
            .expect("curl runs");
        let text = out.stdout;
        let cut = text.iter().rposition(|&b| b == b'\n').unwrap_or(0);
        let status = String::from_utf8_lossy(&text[cut..]).trim().parse().unwrap_or(0);
        (status, text[..cut].to_vec())
    }

    /// Every key in the bucket under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let prefix = format!("prefix={prefix}");
            let mut args = vec!["-G", "--data-urlencode", "list-type=2", "--data-urlencode", &prefix];
            let t = token.as_ref().map(|t| format!("continuation-token={t}"));
            if let Some(t) = &t {
                args.extend(["--data-urlencode", t]);
            }
            let (status, body) = self.curl(&args, &format!("/{BUCKET}"));
            assert_eq!(status, 200, "cannot list the bucket");
            let body = String::from_utf8_lossy(&body).into_owned();
            keys.extend(body.split("<Key>").skip(1).filter_map(|s| s.split("</Key>").next()).map(str::to_string));
            match body.split("<NextContinuationToken>").nth(1).and_then(|s| s.split("</NextContinuationToken>").next()) {
                Some(t) => token = Some(t.to_string()),
                None => return keys,
            }
        }
    }

    /// The bytes of one object.
    pub fn get(&self, key: &str) -> Vec<u8> {
        let (status, body) = self.curl(&[], &format!("/{BUCKET}/{key}"));
        assert_eq!(status, 200, "cannot read {key}");
        body
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}
