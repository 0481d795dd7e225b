//! The Windows agent as a Windows user meets it: `procmon-agent.exe`,
//! cross-built here, run under Wine against a real server on localhost.
//!
//! Needs wine, MinGW and Rust's x86_64-pc-windows-gnu target
//! (scripts/install-test-deps); without them each test says why it skipped,
//! and fails under `CI=true`. Each test has its own Wine prefix; every Wine
//! process is ended when the test ends, pass or fail.

mod common;
mod wine;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use procmon_agent::config::DEFAULT_FILE_TEXT;
use procmon_model::{HostSummary, ProcessListing, ProcessSample};

use common::{spawn_app, TestApp};
use wine::Wine;

/// Wine on a loaded 2-core machine starts processes slowly.
const PATIENCE: Duration = Duration::from_secs(90);

/// The whole first run: double-click with no config writes a commented
/// file and keeps running; once the file names the server and key, the
/// agent starts sending by itself, and the server shows a Windows host with
/// Wine's processes as a correct tree, with owners, memory and command
/// lines. The log file beside the .exe tells the same story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_clicked_exe_writes_its_config_then_reports_wines_process_tree() {
    if !wine::available() {
        return;
    }
    let started = Instant::now();
    let app = spawn_app().await;
    let wine = tokio::task::spawn_blocking(Wine::boot).await.unwrap();
    let config_path = wine.app_dir().join("procmon-agent.toml");

    // As a double-click starts it: no arguments, no config file.
    wine.spawn_agent(&[]);
    wait_until("the agent to write procmon-agent.toml", || {
        config_path.is_file()
    })
    .await;
    let default_text = wait_for_text(&config_path, DEFAULT_FILE_TEXT).await;
    for key in ["server_url", "api_key", "interval"] {
        assert!(
            set_key(&default_text, key, "x") != default_text,
            "the written config lacks {key}:\n{default_text}"
        );
    }
    assert!(
        default_text
            .lines()
            .filter(|line| line.starts_with('#'))
            .count()
            >= 3,
        "not commented:\n{default_text}"
    );
    wait_until("the agent to say what to edit", || {
        let said = wine.agent_output();
        said.contains("procmon-agent.toml")
            && said.contains("enroll_secret")
            && said.contains("no key is set")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        wine.agents_running(),
        "without a key the agent must keep running:\n{}",
        wine.agent_output()
    );

    // The person fills in the file, first with a server that is not there:
    // the agent picks the file up without a restart, says which URL it
    // tried, and keeps going.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let filled = set_key(
        &default_text,
        "server_url",
        &format!("http://127.0.0.1:{closed_port}"),
    );
    let filled = set_key(&filled, "api_key", "not-the-key");
    let filled = set_key(&filled, "interval", "1s");
    std::fs::write(&config_path, &filled).unwrap();
    let unreachable =
        format!("cannot reach the procmon server at http://127.0.0.1:{closed_port}/api/processes/");
    wait_until("the agent to report the server unreachable", || {
        wine.agent_output().contains(&unreachable)
    })
    .await;
    assert!(
        wine.agents_running(),
        "an unreachable server must not stop the agent:\n{}",
        wine.agent_output()
    );

    // The right server with a wrong key (restarted, as after any edit of a
    // running agent's settings): refused, said so, still running.
    wine.stop_agents();
    std::fs::write(&config_path, set_key(&filled, "server_url", &app.address)).unwrap();
    wine.spawn_agent(&[]);
    wait_until("the agent to report the key refused", || {
        wine.agent_output()
            .contains("the server refused this machine's key")
    })
    .await;
    assert!(
        wine.agents_running(),
        "a refused key must not stop the agent:\n{}",
        wine.agent_output()
    );

    // No key, but the enrollment secret: the agent enrolls, keeps its host
    // key beside the .exe, and snapshots arrive.
    wine.stop_agents();
    let secret = app
        .state
        .agent_keys
        .rotate_enroll_secret(chrono::Utc::now())
        .await
        .unwrap();
    let filled = set_key(&set_key(&filled, "server_url", &app.address), "api_key", "");
    let filled = set_key(
        &filled,
        "enroll_secret",
        secrecy::ExposeSecret::expose_secret(&secret),
    );
    std::fs::write(&config_path, filled).unwrap();
    wine.spawn_agent(&[]);

    let host = wait_for_windows_host(&app, &wine).await;
    assert_eq!(
        host.host.id,
        wine.machine_guid(),
        "the host id must be the prefix's MachineGuid"
    );
    let kept = std::fs::read_to_string(wine.app_dir().join("procmon-agent.key"))
        .expect("the enrolled agent keeps its key beside the .exe");
    assert!(kept.trim().starts_with("pmk_"), "{kept}");
    assert!(host.online);
    let listing = wait_for_listing_with(
        &app,
        &host.host.id,
        &["services.exe", "winedevice.exe", "procmon-agent.exe"],
    )
    .await;
    check_wine_tree(&listing);

    let agent = named(&listing, "procmon-agent.exe").next().unwrap();
    assert!(
        agent
            .cmd
            .first()
            .is_some_and(|arg0| arg0.ends_with("procmon-agent.exe")),
        "{:?}",
        agent.cmd
    );
    assert!(
        agent
            .exe
            .as_deref()
            .is_some_and(|exe| exe.ends_with(r"\app\procmon-agent.exe")),
        "{:?}",
        agent.exe
    );

    check_a_new_busy_process(&app, &host.host.id, &wine).await;

    let log = read_log(&wine.app_dir());
    let expected_lines = [
        "wrote a default config file",
        "no key is set",
        "the settings are complete now",
        "cannot reach",
        "refused this machine's key",
        "enrolled: this machine has its own key now",
        "sent",
    ];
    for expected in expected_lines {
        assert!(
            log.contains(expected),
            "the log file lacks {expected:?}:\n{log}"
        );
    }
    assert!(
        wine.agents_running(),
        "the agent stopped:\n{}",
        wine.agent_output()
    );
    eprintln!("double-click test took {:.0?}", started.elapsed());
}

/// `service install`, `stop`, `start`, `uninstall` under Wine's service
/// manager: the installed service starts when the "machine" (the Wine
/// prefix) boots, reads the config beside the .exe, sends snapshots (as a
/// child of services.exe, started as `service run`), logs to the file beside
/// the .exe, and stops cleanly on the stop control.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_starts_at_boot_sends_and_stops_cleanly() {
    if !wine::available() {
        return;
    }
    let started = Instant::now();
    let app = spawn_app().await;
    let wine = tokio::task::spawn_blocking(Wine::boot).await.unwrap();
    let config = format!(
        "server_url = \"{}\"\napi_key = \"{}\"\ninterval = \"1s\"\n",
        app.address,
        app.unbound_key().await
    );
    std::fs::write(wine.app_dir().join("procmon-agent.toml"), config).unwrap();
    wine.shut_down();
    wine.keep_wine_up();
    let wine = Arc::new(wine);
    let agent = |args: &'static [&'static str]| {
        blocking(&wine, move |wine| wine.run("procmon-agent.exe", args))
    };

    let installed = agent(&["service", "install"]).await;
    assert_succeeded("service install", &installed);
    assert!(
        String::from_utf8_lossy(&installed.stdout).contains("Installed the service procmon-agent")
    );

    // "Reboot": the service manager starts the service by itself.
    blocking(&wine, |wine| wine.shut_down()).await;
    wine.keep_wine_up();
    wait_for_service_state(&wine, "RUNNING").await;
    let host = wait_for_windows_host(&app, &wine).await;
    let listing = wait_for_listing_with(&app, &host.host.id, &["procmon-agent.exe"]).await;
    let services: Vec<u32> = named(&listing, "services.exe").map(|p| p.pid).collect();
    let service = named(&listing, "procmon-agent.exe").next().unwrap();
    assert!(
        service
            .parent_pid
            .is_some_and(|parent| services.contains(&parent)),
        "the service's parent must be services.exe: {service:?}"
    );
    assert!(
        service
            .cmd
            .ends_with(&["service".to_owned(), "run".to_owned()]),
        "{:?}",
        service.cmd
    );

    let stopped = agent(&["service", "stop"]).await;
    assert_succeeded("service stop", &stopped);
    wait_for_service_state(&wine, "STOPPED").await;
    let log = read_log(&wine.app_dir());
    for expected in [
        "running as the Windows service procmon-agent",
        "sent",
        "procmon agent stopped",
    ] {
        assert!(
            log.contains(expected),
            "the service log lacks {expected:?}:\n{log}"
        );
    }

    assert_succeeded("service start", &agent(&["service", "start"]).await);
    wait_for_service_state(&wine, "RUNNING").await;

    // Uninstall stops the running service first.
    assert_succeeded("service uninstall", &agent(&["service", "uninstall"]).await);
    let gone = agent(&["service", "start"]).await;
    assert!(!gone.status.success());
    let said = String::from_utf8_lossy(&gone.stderr);
    assert!(
        said.contains("it is not installed: run procmon-agent.exe service install first"),
        "{said}"
    );
    eprintln!("service test took {:.0?}", started.elapsed());
}

/// The spool and the key file are private to the agent's user, as far as
/// Wine can show it.
///
/// Wine (8, as Debian ships it) keeps no access list of its own: it turns
/// the list given to CreateFileW / CreateDirectoryW or set by
/// SetNamedSecurityInfoW into Unix mode bits, and GetNamedSecurityInfoW
/// reads back a list made from those bits: SYSTEM with full control, the
/// user for the owner's bits, Everyone (WD) for the other bits; never
/// protected, never Administrators. And its SetNamedSecurityInfoW adds the
/// parent folder's inheritable entries even to a protected list. So the
/// protected flag and the Administrators entry cannot be seen here; what
/// can is that nothing the agent creates or narrows lets anyone but SYSTEM
/// and its user in, as Windows reads the list back and as the Unix mode
/// says. (Without the agent's lists, Wine creates files 0644 and folders
/// 0755: Everyone may read.) Narrowing is checked in a folder that itself
/// lets only the user in, since Wine would add the app folder's entry for
/// Everyone back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_and_key_file_are_private_to_the_agents_user() {
    if !wine::available() {
        return;
    }
    let app = spawn_app().await;
    let wine = tokio::task::spawn_blocking(Wine::boot).await.unwrap();
    let app_dir = wine.app_dir();
    let config_path = app_dir.join("procmon-agent.toml");

    // A spool as an older agent left it, open to everyone, with a cursor
    // cut short in it.
    let parent = app_dir.join("private");
    std::fs::create_dir(&parent).unwrap();
    set_mode(&parent, 0o700);
    let spool = parent.join("spool");
    std::fs::create_dir(&spool).unwrap();
    set_mode(&spool, 0o755);
    std::fs::write(spool.join("cursor.tmp"), b"cut").unwrap();
    set_mode(&spool.join("cursor.tmp"), 0o644);

    // No server to reach: what the agent takes waits in the spool.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &config_path,
        format!(
            "server_url = \"http://127.0.0.1:{closed_port}\"\napi_key = \"pmk_not_sent\"\n\
             interval = \"1s\"\nspool_dir = \"private/spool\"\n"
        ),
    )
    .unwrap();
    wine.spawn_agent(&[]);
    wait_until("the agent to spool a segment", || {
        std::fs::read_dir(&spool).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.path().extension().is_some_and(|ext| ext == "seg"))
        })
    })
    .await;
    wine.stop_agents();
    let mut paths = vec!["private/spool".to_owned()];
    for entry in std::fs::read_dir(&spool).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        paths.push(format!("private/spool/{name}"));
    }
    assert!(paths.len() >= 3, "the cursor and a segment: {paths:?}");
    assert_private(&wine, &paths);
    let said = wine.agent_output();
    for (what, name) in [("folder", "spool"), ("file", "cursor.tmp")] {
        assert!(
            said.lines().any(|line| {
                line.contains(&format!("the {what} was open to other users"))
                    && line.contains("narrowed to this user only")
                    && line.contains(name)
            }),
            "the agent did not say it narrowed {name}:\n{said}"
        );
    }

    // Enrolling keeps the key in a folder that is not there yet.
    let secret = app
        .state
        .agent_keys
        .rotate_enroll_secret(chrono::Utc::now())
        .await
        .unwrap();
    std::fs::write(
        &config_path,
        format!(
            "server_url = \"{}\"\nenroll_secret = \"{}\"\ninterval = \"1s\"\n\
             key_file = \"keys/procmon-agent.key\"\nspool_dir = \"private/spool\"\n",
            app.address,
            secrecy::ExposeSecret::expose_secret(&secret)
        ),
    )
    .unwrap();
    wine.spawn_agent(&[]);
    let key_file = app_dir.join("keys").join("procmon-agent.key");
    wait_for_windows_host(&app, &wine).await;
    assert!(
        std::fs::read_to_string(&key_file).is_ok_and(|key| key.trim().starts_with("pmk_")),
        "the enrolled agent keeps its key in keys/:\n{}",
        wine.agent_output()
    );
    wine.stop_agents();
    assert_private(
        &wine,
        &["keys".to_owned(), "keys/procmon-agent.key".to_owned()],
    );
}

/// Each of `paths` (relative to `app`) lets only SYSTEM and the agent's
/// user in, as Windows reads its access list back, and is closed to others
/// by its Unix mode; see the test above for what Wine can show.
fn assert_private(wine: &Wine, paths: &[String]) {
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let read = wine.access_lists(&paths);
    assert_eq!(read.lists.len(), paths.len(), "{read:?}");
    for (path, list) in &read.lists {
        let entries = entries(list);
        assert!(
            entries
                .iter()
                .all(|(kind, sid)| kind == "A" && (sid == "SY" || *sid == read.user)),
            "{path} lets more than SYSTEM and {} in: {list}",
            read.user
        );
        assert!(
            entries.iter().any(|(_, sid)| *sid == read.user),
            "{path} does not let its user in: {list}"
        );
        let mode = std::fs::metadata(wine.app_dir().join(path))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o007, 0, "{path} is mode {mode:o}");
    }
}

/// A list's entries in SDDL ("D:P(A;;FA;;;SY)(A;;FA;;;S-1-5-...)"): kind
/// and SID of each.
fn entries(sddl: &str) -> Vec<(String, String)> {
    let Some(list) = sddl.strip_prefix("D:") else {
        panic!("not an access list: {sddl}");
    };
    list.split('(')
        .skip(1)
        .map(|entry| {
            let fields: Vec<&str> = entry.trim_end_matches(')').split(';').collect();
            assert_eq!(fields.len(), 6, "not an entry: ({entry}");
            (fields[0].to_owned(), fields[5].to_owned())
        })
        .collect()
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

// ---- checks -------------------------------------------------------------------

/// Wine's own processes form a correct tree: services.exe is the parent of
/// every winedevice.exe (Wine may run a second services.exe for a while,
/// each with its own children), and the figures a Windows user expects are
/// filled in for every process.
fn check_wine_tree(listing: &ProcessListing) {
    let services: Vec<u32> = named(listing, "services.exe").map(|p| p.pid).collect();
    let devices: Vec<_> = named(listing, "winedevice.exe").collect();
    assert!(!services.is_empty() && !devices.is_empty());
    for device in &devices {
        assert!(
            device
                .parent_pid
                .is_some_and(|parent| services.contains(&parent)),
            "winedevice.exe's parent must be services.exe (pids {services:?}): {device:?}"
        );
    }
    let services = named(listing, "services.exe").next().unwrap();
    for process in &listing.processes {
        let owner = process
            .user
            .as_deref()
            .unwrap_or_else(|| panic!("no owner: {process:?}"));
        let (domain, name) = owner
            .split_once('\\')
            .unwrap_or_else(|| panic!("owner {owner:?} is not DOMAIN\\name"));
        assert!(!domain.is_empty() && !name.is_empty(), "owner {owner:?}");
        assert!(process.memory_rss_bytes > 0, "no working set: {process:?}");
        assert!(
            process.memory_virtual_bytes >= process.memory_rss_bytes,
            "virtual below resident: {process:?}"
        );
        assert!(
            process.memory_private_bytes.is_some_and(|b| b > 0),
            "no private bytes: {process:?}"
        );
        assert!(
            process.threads.is_some_and(|t| t > 0),
            "no threads: {process:?}"
        );
        assert!(
            process.handles.is_some_and(|h| h > 0),
            "no handles: {process:?}"
        );
        assert!(!process.cmd.is_empty(), "no command line: {process:?}");
        assert!(
            process.start_time <= listing.collected_at,
            "started in the future: {process:?}"
        );
    }
    assert!(
        services
            .exe
            .as_deref()
            .is_some_and(|exe| exe.eq_ignore_ascii_case(r"C:\windows\system32\services.exe")),
        "{:?}",
        services.exe
    );
    // A service host's arguments survive as separate arguments.
    if let Some(svchost) = named(listing, "svchost.exe").next() {
        assert_eq!(
            svchost.cmd.get(1).map(String::as_str),
            Some("-k"),
            "{:?}",
            svchost.cmd
        );
    }
}

/// A process started while the agent runs (so after its first reading)
/// shows up with its executable, command line and owner, which the agent
/// reads once when a process is new; and a busy loop is measured as busy,
/// within what the machine's cores allow (100 % = one core).
async fn check_a_new_busy_process(app: &TestApp, host: &str, wine: &Wine) {
    const LOOP: &str = "for /L %i in (1,1,2000000000) do @rem";
    wine.spawn("cmd.exe", &["/c", LOOP]);
    let started = Instant::now();
    loop {
        let listing: ProcessListing = app
            .get_processes(host)
            .await
            .json()
            .await
            .expect("process listing");
        let busy = named(&listing, "cmd.exe").find(|p| p.cmd.iter().any(|arg| arg == LOOP));
        if let Some(busy) = busy.filter(|p| p.cpu_percent > 5.0) {
            assert_eq!(busy.cmd.get(1).map(String::as_str), Some("/c"), "{busy:?}");
            assert!(
                busy.exe
                    .as_deref()
                    .is_some_and(|exe| exe.eq_ignore_ascii_case(r"C:\windows\system32\cmd.exe")),
                "{busy:?}"
            );
            assert!(
                busy.user.as_deref().is_some_and(|u| u.contains('\\')),
                "{busy:?}"
            );
            let cores = listing_cores(app, host).await;
            assert!(
                busy.cpu_percent <= 100.0 * cores as f32 + 10.0,
                "more CPU than {cores} cores have: {busy:?}"
            );
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the busy cmd.exe never showed up busy with its command line; last seen: {busy:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The number of CPUs the host reported.
async fn listing_cores(app: &TestApp, host: &str) -> u32 {
    let hosts: Vec<HostSummary> = app.get_hosts().await.json().await.expect("host list");
    hosts
        .iter()
        .find(|h| h.host.id == host)
        .map_or(1, |h| h.host.cpu_count)
}

fn named<'a>(
    listing: &'a ProcessListing,
    name: &'a str,
) -> impl Iterator<Item = &'a ProcessSample> + 'a {
    listing
        .processes
        .iter()
        .filter(move |p| p.name.eq_ignore_ascii_case(name))
}

fn assert_succeeded(what: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- waiting ------------------------------------------------------------------

/// Runs a blocking Wine command off the async workers, so the server keeps
/// answering the agent meanwhile.
async fn blocking<T: Send + 'static>(
    wine: &Arc<Wine>,
    job: impl FnOnce(&Wine) -> T + Send + 'static,
) -> T {
    let wine = Arc::clone(wine);
    tokio::task::spawn_blocking(move || job(&wine))
        .await
        .unwrap()
}

/// Until `sc query procmon-agent` reports `state` (e.g. "RUNNING").
async fn wait_for_service_state(wine: &Arc<Wine>, state: &'static str) {
    let started = Instant::now();
    loop {
        let out = blocking(wine, |wine| wine.run("sc", &["query", "procmon-agent"])).await;
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if said
            .lines()
            .any(|line| line.contains("STATE") && line.contains(state))
        {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the service never became {state}; sc query says:\n{said}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < PATIENCE,
            "gave up waiting for {what} after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The file's text once it is `expected` (it may be caught half-written).
async fn wait_for_text(path: &Path, expected: &str) -> String {
    let mut text = String::new();
    wait_until("the config file to be written whole", || {
        text = std::fs::read_to_string(path).unwrap_or_default();
        text == expected
    })
    .await;
    text
}

/// `text` (a config file) with the line setting `key` set to `value`, as a
/// person would edit it; comments stay.
fn set_key(text: &str, key: &str, value: &str) -> String {
    let lines = text
        .lines()
        .map(|line| match line.split('=').next().map(str::trim) {
            Some(name) if name == key => format!("{key} = \"{value}\""),
            _ => line.to_owned(),
        });
    lines.collect::<Vec<_>>().join("\n") + "\n"
}

/// The host whose OS is Windows, once the agent's first snapshot arrived.
async fn wait_for_windows_host(app: &TestApp, wine: &Wine) -> HostSummary {
    let started = Instant::now();
    loop {
        let hosts: Vec<HostSummary> = app.get_hosts().await.json().await.expect("host list");
        if let Some(host) = hosts
            .into_iter()
            .find(|h| h.host.os_name.contains("Windows"))
        {
            return host;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no Windows host arrived within {PATIENCE:?}; the agent said:\n{}\nits log:\n{}",
            wine.agent_output(),
            read_log(&wine.app_dir())
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The host's newest listing once it holds a process of each name (Wine
/// starts some services lazily).
async fn wait_for_listing_with(app: &TestApp, host: &str, names: &[&str]) -> ProcessListing {
    let started = Instant::now();
    loop {
        let listing: ProcessListing = app
            .get_processes(host)
            .await
            .json()
            .await
            .expect("process listing");
        if names
            .iter()
            .all(|name| named(&listing, name).next().is_some())
        {
            return listing;
        }
        let seen: Vec<_> = listing
            .processes
            .iter()
            .map(|p| (p.pid, p.parent_pid, p.name.as_str()))
            .collect();
        assert!(
            started.elapsed() < PATIENCE,
            "the listing never held all of {names:?}; it holds {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Every log file beside the .exe, concatenated.
fn read_log(dir: &Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|path| path.extension().is_some_and(|ext| ext == "log"));
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap_or_default())
        .collect()
}
