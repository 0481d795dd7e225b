//! Running the Windows agent under Wine for the tests: building the .exe,
//! a fresh Wine prefix per test, and cleaning up even when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

/// Whether everything the Wine tests need is installed; see
/// `common::require` for what happens when something is not.
pub fn available() -> bool {
    let programs = ["wine", "wineboot", "wineserver", MINGW_GCC, "rustup"];
    programs
        .iter()
        .all(|program| crate::common::require(program))
        && windows_target_installed()
}

fn windows_target_installed() -> bool {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == WINDOWS_TARGET)
        });
    crate::common::installed_or_skip(installed, &format!("the Rust target {WINDOWS_TARGET}"))
}

/// `procmon-agent.exe`, release-built once per test run.
pub fn agent_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| release_build(&["-p", "procmon-agent"], "procmon-agent.exe"))
}

/// `cargo build --release --locked --target x86_64-pc-windows-gnu <args>`,
/// and the path of the `exe` it builds (relative to the release folder).
/// Its own target directory (under the workspace's) keeps this build off
/// the lock that the running `cargo test` may hold.
pub fn release_build(args: &[&str], exe: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("wine-test");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let status = Command::new(cargo)
        .args(["build", "--release", "--locked", "--target", WINDOWS_TARGET])
        .args(args)
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(workspace)
        .status()
        .expect("run cargo build for the Windows target");
    assert!(status.success(), "building {exe} failed: {status}");
    eprintln!("built {exe} in {:.0?}", started.elapsed());
    target_dir.join(WINDOWS_TARGET).join("release").join(exe)
}

/// A Wine prefix of its own, and a folder (`app`) holding the agent .exe
/// with the ProcessPrng stand-in beside it. Dropping it ends every process
/// of the prefix, then deletes both.
pub struct Wine {
    root: TempDir,
    children: Mutex<Vec<Child>>,
}

impl Wine {
    /// Creates the prefix (`wineboot -i`, which takes a few seconds) and
    /// puts the agent in `app`.
    pub fn boot() -> Wine {
        let root = tempfile::tempdir().expect("temp dir");
        let wine = Wine {
            root,
            children: Mutex::new(Vec::new()),
        };
        std::fs::create_dir(wine.app_dir()).expect("create the app folder");
        let started = Instant::now();
        let out = run_bounded(wine.command("wineboot").arg("-i"), Duration::from_secs(180));
        assert!(
            out.status.success(),
            "wineboot -i failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("Wine prefix ready in {:.0?}", started.elapsed());

        std::fs::copy(agent_exe(), wine.app_dir().join("procmon-agent.exe"))
            .expect("copy the .exe");
        mingw(
            "processprng.c",
            "-shared",
            &wine.app_dir().join("bcryptprimitives.dll"),
            "the ProcessPrng stand-in",
        );
        wine
    }

    /// Where the .exe, its config and its log files are.
    pub fn app_dir(&self) -> PathBuf {
        self.root.path().join("app")
    }

    pub fn prefix(&self) -> PathBuf {
        self.root.path().join("prefix")
    }

    /// `program` with this prefix's environment, run in `app`, without any
    /// agent settings the test's own environment may hold.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("WINEPREFIX", self.prefix())
            .env("WINEDEBUG", "-all")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .current_dir(self.app_dir());
        for (name, _) in std::env::vars() {
            if name.starts_with("PROCMON_AGENT_") || name == "RUST_LOG" {
                command.env_remove(&name);
            }
        }
        command
    }

    /// `wine procmon-agent.exe <args>`, left running; output goes to files
    /// `stdout.txt` and `stderr.txt` in the root (not in `app`).
    pub fn spawn_agent(&self, args: &[&str]) {
        let stdout = std::fs::File::create(self.root.path().join("stdout.txt")).unwrap();
        let stderr = std::fs::File::create(self.root.path().join("stderr.txt")).unwrap();
        let child = self
            .command("wine")
            .arg("procmon-agent.exe")
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start wine");
        self.children.lock().unwrap().push(child);
    }

    /// `wine <program> <args>`, left running with its output discarded;
    /// ended with the agents.
    pub fn spawn(&self, program: &str, args: &[&str]) {
        let child = self
            .command("wine")
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wine");
        self.children.lock().unwrap().push(child);
    }

    /// Keeps Wine up: Wine ends its service manager (and every
    /// service) a few seconds after the last ordinary program exits, and
    /// the next command then starts it afresh, like a reboot. A `cmd.exe`
    /// waiting on its input keeps it up until the test ends.
    pub fn keep_wine_up(&self) {
        let child = self
            .command("wine")
            .arg("cmd.exe")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wine cmd.exe");
        self.children.lock().unwrap().push(child);
    }

    /// What the spawned agent wrote to stdout and stderr so far.
    pub fn agent_output(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.root.path().join(name)).unwrap_or_default();
        format!("{}{}", read("stdout.txt"), read("stderr.txt"))
    }

    /// Ends every process spawned so far, as closing their windows would.
    pub fn stop_agents(&self) {
        // Also called on drop, after a failed test may have poisoned the lock.
        let mut children = self.children.lock().unwrap_or_else(|p| p.into_inner());
        for mut child in children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether every spawned agent is still running.
    pub fn agents_running(&self) -> bool {
        self.children
            .lock()
            .unwrap()
            .iter_mut()
            .all(|child| child.try_wait().is_ok_and(|status| status.is_none()))
    }

    /// `wine <program> <args>` to completion (at most a minute).
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        run_bounded(
            self.command("wine").arg(program).args(args),
            Duration::from_secs(60),
        )
    }

    /// The access list of each of `paths` (relative to `app`), as Windows
    /// reads it back in this prefix, and the user the agent runs as: read
    /// by a small helper (tests/wine/access_list.c) built with MinGW.
    pub fn access_lists(&self, paths: &[&str]) -> AccessLists {
        let exe = self.root.path().join("access_list.exe");
        if !exe.is_file() {
            mingw("access_list.c", "-municode", &exe, "the access list reader");
        }
        let out = self.run(exe.to_str().expect("a UTF-8 temp path"), paths);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "reading access lists failed ({}):\n{said}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines = said.lines().map(|line| {
            let (what, list) = line
                .trim_end_matches('\r')
                .split_once('\t')
                .unwrap_or_else(|| panic!("not PATH<TAB>SDDL: {line:?}"));
            (what.to_owned(), list.to_owned())
        });
        let user = match lines.next() {
            Some((what, sid)) if what == "user" => sid,
            other => panic!("the reader did not name its user first: {other:?}"),
        };
        AccessLists {
            user,
            lists: lines.collect(),
        }
    }

    /// The prefix's machine GUID, as `reg query` reads it.
    pub fn machine_guid(&self) -> String {
        let out = self.run(
            "reg",
            &[
                "query",
                r"HKLM\SOFTWARE\Microsoft\Cryptography",
                "/v",
                "MachineGuid",
            ],
        );
        let said = String::from_utf8_lossy(&out.stdout);
        said.lines()
            .find(|line| line.contains("MachineGuid"))
            .and_then(|line| line.split_whitespace().last())
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| panic!("no MachineGuid in reg query's answer: {said}"))
    }

    /// As close to a reboot as Wine gets: every process of the prefix ends;
    /// the next Wine command starts the service manager afresh, which starts
    /// the services set to start at boot.
    pub fn shut_down(&self) {
        let _ = self.command("wineserver").arg("-k").status();
        let _ = run_bounded(
            self.command("wineserver").arg("-w"),
            Duration::from_secs(60),
        );
    }
}

impl Drop for Wine {
    fn drop(&mut self) {
        self.stop_agents();
        // Ends every process of this prefix (services included) and waits
        // until wineserver is gone, so the prefix can be deleted. No panic
        // here: the test may be failing already.
        let _ = self.command("wineserver").arg("-k").status();
        if let Ok(mut waiting) = self.command("wineserver").arg("-w").spawn() {
            if !matches!(
                wait_at_most(&mut waiting, Duration::from_secs(30)),
                Ok(Some(_))
            ) {
                let _ = waiting.kill();
            }
        }
    }
}

/// What [`Wine::access_lists`] read.
#[derive(Debug)]
pub struct AccessLists {
    /// The SID of the user the reader (and the agent) runs as.
    pub user: String,
    /// Each path as given, with its access list in SDDL
    /// ("D:P(A;OICI;FA;;;SY)...").
    pub lists: Vec<(String, String)>,
}

/// Runs `command` to completion, failing the test if it takes over `limit`.
/// Output goes through files, not pipes: a command that starts Wine's
/// server and services hands them its output handles, and they live on, so
/// a pipe would never reach its end.
fn run_bounded(command: &mut Command, limit: Duration) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("create a file"))
        .stderr(std::fs::File::create(&err_path).expect("create a file"))
        .spawn()
        .expect("start a Wine command");
    let Some(status) = wait_at_most(&mut child, limit).expect("wait for a Wine command") else {
        let _ = child.kill();
        panic!("{command:?} did not finish within {limit:?}");
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    }
}

/// `child`'s exit status once it ends, or `None` if it still runs after
/// `limit`.
fn wait_at_most(child: &mut Child, limit: Duration) -> std::io::Result<Option<ExitStatus>> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if started.elapsed() > limit {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Builds `source` (in tests/wine) with MinGW into `output`, with `kind`
/// ("-shared" for a DLL, "-municode" for a wide-main .exe) and advapi32;
/// `what` names it if the build fails.
fn mingw(source: &str, kind: &str, output: &Path, what: &str) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/wine")
        .join(source);
    let out = Command::new(MINGW_GCC)
        .args([kind, "-O2", "-o"])
        .arg(output)
        .arg(&source)
        .arg("-ladvapi32")
        .output()
        .expect("run the MinGW compiler");
    assert!(
        out.status.success(),
        "building {what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
