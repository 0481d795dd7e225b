//! The Linux half of actions on real processes this test starts: each is
//! named by its pid and the start time the agent's own snapshot gives, as
//! the server names it.
#![cfg(target_os = "linux")]

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use procmon_agent::actions::{act, ActError};
use procmon_agent::Collector;
use procmon_model::actions::ActionKind;

/// A process this test started, killed and reaped when dropped.
struct Target(Child);

impl Target {
    fn sleep() -> Self {
        Self::start(Command::new("sleep").arg("60"))
    }

    fn start(command: &mut Command) -> Self {
        Self(
            command
                .stdin(Stdio::null())
                .spawn()
                .expect("the target starts"),
        )
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Its start time as the agent's snapshot gives it.
    fn started_at(&self) -> DateTime<Utc> {
        let snapshot = Collector::new().snapshot(Duration::from_secs(1));
        snapshot
            .processes
            .iter()
            .find(|p| p.pid == self.pid())
            .expect("the snapshot has the target")
            .start_time
    }

    /// Field `n` (1-based, as proc(5) counts) of its `stat`.
    fn stat_field(&self, n: usize) -> String {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let after_name = stat.rsplit_once(") ").unwrap().1;
        after_name.split(' ').nth(n - 3).unwrap().to_owned()
    }

    /// Waits until its state letter is one of `states`.
    fn wait_for_state(&self, states: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let state = self.stat_field(3);
            if states.contains(&state.as_str()) || Instant::now() > deadline {
                return state;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for it to end; the signal that ended it.
    fn wait_for_signal(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.signal();
            }
            assert!(Instant::now() < deadline, "the target did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn terminate_sends_sigterm() {
    let mut target = Target::sleep();
    let message = act(ActionKind::Terminate, target.pid(), target.started_at()).unwrap();
    assert_eq!(
        message,
        format!("pid {} (sleep): asked it to end (SIGTERM)", target.pid())
    );
    assert_eq!(target.wait_for_signal(), Some(libc::SIGTERM));
}

#[test]
fn kill_sends_sigkill() {
    let mut target = Target::sleep();
    let message = act(ActionKind::Kill, target.pid(), target.started_at()).unwrap();
    assert!(message.ends_with("killed it (SIGKILL)"), "{message}");
    assert_eq!(target.wait_for_signal(), Some(libc::SIGKILL));
}

#[test]
fn suspend_stops_the_process_and_resume_lets_it_run() {
    let target = Target::sleep();
    let started_at = target.started_at();
    let message = act(ActionKind::Suspend, target.pid(), started_at).unwrap();
    assert!(message.ends_with("suspended it (SIGSTOP)"), "{message}");
    assert_eq!(target.wait_for_state(&["T"]), "T");
    let message = act(ActionKind::Resume, target.pid(), started_at).unwrap();
    assert!(message.ends_with("resumed it (SIGCONT)"), "{message}");
    let state = target.wait_for_state(&["S", "R"]);
    assert!(state == "S" || state == "R", "state {state} after SIGCONT");
}

#[test]
fn lower_priority_sets_nice_10_and_never_raises_it() {
    let target = Target::sleep();
    assert_eq!(target.stat_field(19), "0");
    let started_at = target.started_at();
    let message = act(ActionKind::LowerPriority, target.pid(), started_at).unwrap();
    assert_eq!(
        message,
        format!(
            "pid {} (sleep): lowered to nice 10 (was 0; 1 thread changed)",
            target.pid()
        )
    );
    assert_eq!(target.stat_field(19), "10");
    let again = act(ActionKind::LowerPriority, target.pid(), started_at).unwrap();
    assert!(again.contains("already runs at nice 10"), "{again}");

    // One already lower is left as it is.
    let low = Target::start(Command::new("nice").args(["-n", "15", "sleep", "60"]));
    let deadline = Instant::now() + Duration::from_secs(5);
    // `nice` runs, then becomes `sleep` (exec).
    let comm = || std::fs::read_to_string(format!("/proc/{}/comm", low.pid())).unwrap_or_default();
    while comm().trim() != "sleep" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let message = act(ActionKind::LowerPriority, low.pid(), low.started_at()).unwrap();
    assert!(message.contains("already runs at nice 15"), "{message}");
    assert_eq!(low.stat_field(19), "15");
}

#[test]
fn a_pid_with_another_start_time_is_refused_and_left_alone() {
    let mut target = Target::sleep();
    let started_at = target.started_at();
    let asked = started_at - chrono::Duration::seconds(1);
    for kind in ActionKind::ALL {
        assert_eq!(
            act(kind, target.pid(), asked),
            Err(ActError::Reused { started_at }),
            "{kind}"
        );
    }
    assert!(target.0.try_wait().unwrap().is_none(), "still running");
    assert_eq!(target.stat_field(19), "0", "priority untouched");
}

#[test]
fn a_process_that_has_ended_is_gone() {
    let mut target = Target::sleep();
    let (pid, started_at) = (target.pid(), target.started_at());
    target.0.kill().unwrap();
    target.0.wait().unwrap();
    for kind in ActionKind::ALL {
        assert_eq!(act(kind, pid, started_at), Err(ActError::Gone), "{kind}");
    }
}

#[test]
fn an_exited_process_not_yet_reaped_is_gone() {
    let mut target = Target::start(&mut Command::new("true"));
    let pid = target.pid();
    // Wait for it to be a zombie: ended, its parent (this test) not having
    // waited yet.
    assert_eq!(target.wait_for_state(&["Z"]), "Z");
    let started_at = target.started_at();
    assert_eq!(act(ActionKind::Kill, pid, started_at), Err(ActError::Gone));
    target.0.wait().unwrap();
}

/// Set in the environment of this test binary when it runs as the
/// unprivileged helper of [`another_users_process_is_access_denied`].
const HELPER_ENV: &str = "PROCMON_TEST_ACT_AS_HELPER";

/// Does nothing in a normal run; run by
/// [`another_users_process_is_access_denied`] as an unprivileged user, it
/// acts as the environment says and prints how it went.
#[test]
fn unprivileged_helper() {
    let Ok(spec) = std::env::var(HELPER_ENV) else {
        return;
    };
    let mut parts = spec.split(' ');
    let kind = ActionKind::parse(parts.next().unwrap()).unwrap();
    let pid: u32 = parts.next().unwrap().parse().unwrap();
    let started_at: DateTime<Utc> = parts.next().unwrap().parse().unwrap();
    let result = act(kind, pid, started_at);
    println!(
        "ACT-RESULT {}",
        serde_json::to_string(&format!("{result:?}")).unwrap()
    );
}

#[test]
fn another_users_process_is_access_denied() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let (Some(setpriv), true) = (setpriv, root) else {
        assert!(
            !ci,
            "this test needs root and setpriv (util-linux) to act as another user"
        );
        eprintln!("skipped: this test needs root and setpriv (util-linux)");
        return;
    };
    // The test binary, copied where an unprivileged user may run it.
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let helper = dir.path().join("helper");
    std::fs::copy(std::env::current_exe().unwrap(), &helper).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut target = Target::sleep();
    let started_at = target.started_at();
    for kind in [ActionKind::Terminate, ActionKind::LowerPriority] {
        let output = Command::new(setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&helper)
            .args([
                "--exact",
                "unprivileged_helper",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                HELPER_ENV,
                format!("{kind} {} {}", target.pid(), started_at.to_rfc3339()),
            )
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .split_once("ACT-RESULT ")
            .and_then(|(_, rest)| rest.lines().next())
            .unwrap_or_else(|| {
                panic!(
                    "the helper printed no result:\n{stdout}\n{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
        let result: String = serde_json::from_str(line).unwrap();
        assert!(
            result.starts_with("Err(AccessDenied(\"the OS does not let this agent (uid 65534)"),
            "{kind}: {result}"
        );
    }
    assert!(target.0.try_wait().unwrap().is_none(), "still running");
    assert_eq!(target.stat_field(19), "0", "priority untouched");
}
