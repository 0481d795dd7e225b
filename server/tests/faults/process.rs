//! The real `procmon-server` binary as a child process, for the tests that
//! kill it: started on a data directory or a database URL, its address
//! read from the line it prints, and keys made with its own `keys create`.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::KillOnDrop;

const BINARY: &str = env!("CARGO_BIN_EXE_procmon-server");

/// Where a server keeps its data: `--data-dir DIR` (SQLite in it), and
/// `--database URL` when the database is elsewhere.
#[derive(Clone)]
pub struct Storage {
    pub data_dir: std::path::PathBuf,
    pub database: Option<String>,
}

impl Storage {
    /// SQLite in `dir`.
    pub fn sqlite(dir: &std::path::Path) -> Self {
        Self {
            data_dir: dir.to_owned(),
            database: None,
        }
    }

    /// The PostgreSQL database at `url`, other files in `dir`.
    pub fn postgres(dir: &std::path::Path, url: &str) -> Self {
        Self {
            data_dir: dir.to_owned(),
            database: Some(url.to_owned()),
        }
    }

    fn args(&self) -> Vec<OsString> {
        let mut args = vec!["--data-dir".into(), self.data_dir.clone().into()];
        if let Some(url) = &self.database {
            args.extend(["--database".into(), url.into()]);
        }
        args
    }
}

/// A running server process, killed when dropped.
pub struct ServerProcess {
    pub process: KillOnDrop,
    /// Its URL, without a trailing `/`.
    pub url: String,
}

impl ServerProcess {
    /// Starts the binary on `storage` with `extra` flags, on a free port,
    /// without its own agent or sign-in (these tests are about the store),
    /// and with an ingest budget no test reaches.
    pub fn start(storage: &Storage, extra: &[&str]) -> Self {
        let mut process = KillOnDrop(
            Command::new(BINARY)
                .args([
                    "--listen",
                    "127.0.0.1:0",
                    "--no-agent",
                    "--no-login",
                    "--ingest-burst",
                    "100000",
                ])
                .args(storage.args())
                .args(extra)
                .stderr(Stdio::null())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start procmon-server"),
        );
        let mut stdout = BufReader::new(process.0.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let url = first
            .trim()
            .strip_prefix("procmon is running at ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .trim_end_matches('/')
            .to_owned();
        // Keep reading, so that the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Self { process, url }
    }

    /// SIGKILL, and waits for it to be gone.
    pub fn kill(&mut self) {
        self.process.0.kill().expect("SIGKILL the server");
        self.process.0.wait().unwrap();
    }
}

/// A key for `host`, made by `procmon-server keys create` on `storage`
/// (while servers run on it, as an operator would).
pub fn make_key(storage: &Storage, host: &str) -> String {
    let output = Command::new(BINARY)
        .args(["keys", "create", "--host", host])
        .args(storage.args())
        .output()
        .expect("procmon-server keys create");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
