//! `procmon-agent.exe service install|uninstall|start|stop`: the agent as a
//! Windows service that starts at boot, runs headless as LocalSystem, reads
//! the same `procmon-agent.toml` beside the .exe and logs to the file beside
//! it (see `logfile`).

use std::ffi::OsString;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::watch;
use windows_service::service::{
    Service, ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl,
    ServiceExitCode, ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use crate::config::{self, Overrides};
use crate::first_run;

/// The service's name, for `sc query procmon-agent` and `net start`.
pub const SERVICE_NAME: &str = "procmon-agent";
const DISPLAY_NAME: &str = "procmon agent";
const DESCRIPTION: &str = "Sends a snapshot of every process of this machine to a procmon server.";
/// How long `stop` and `uninstall` wait for the service to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// What to do with the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum ServiceAction {
    /// Register the service (starts at boot, runs as LocalSystem). Needs an
    /// administrator prompt.
    Install,
    /// Stop the service if it runs, and remove it.
    Uninstall,
    /// Start the installed service now.
    Start,
    /// Stop the running service.
    Stop,
    /// What the service manager runs; not for people.
    #[command(hide = true)]
    Run,
}

/// Carries out `action`, saying on stdout what was done.
pub fn execute(action: ServiceAction) -> anyhow::Result<()> {
    match action {
        ServiceAction::Install => install(),
        ServiceAction::Uninstall => uninstall(),
        ServiceAction::Start => start(),
        ServiceAction::Stop => stop(),
        ServiceAction::Run => run_under_service_manager(),
    }
}

fn install() -> anyhow::Result<()> {
    let manager = manager(ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE)?;
    let exe = std::env::current_exe().context("cannot tell where this .exe is")?;
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: DISPLAY_NAME.into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: exe.clone(),
        launch_arguments: vec![OsString::from("service"), OsString::from("run")],
        dependencies: vec![],
        account_name: None,
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG)
        .map_err(|e| explain(e, "install the service"))?;
    service
        .set_description(DESCRIPTION)
        .map_err(|e| explain(e, "describe the service"))?;
    println!(
        "Installed the service {SERVICE_NAME} ({}); it starts at boot.",
        exe.display()
    );
    match config::default_file() {
        Some(file) => println!("It reads {}.", file.display()),
        None => println!(
            "It reads {} beside the .exe, which does not exist yet: start the .exe once by \
             double-click to write one, then set server_url and api_key in it.",
            config::FILE_NAME
        ),
    }
    println!("Start it now with: procmon-agent.exe service start");
    Ok(())
}

fn uninstall() -> anyhow::Result<()> {
    let service =
        open_service(ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE)?;
    if service
        .query_status()
        .map_err(|e| explain(e, "query the service"))?
        .current_state
        != ServiceState::Stopped
    {
        service.stop().map_err(|e| explain(e, "stop the service"))?;
        wait_for_state(&service, ServiceState::Stopped)?;
    }
    service
        .delete()
        .map_err(|e| explain(e, "remove the service"))?;
    println!("Removed the service {SERVICE_NAME}.");
    Ok(())
}

fn start() -> anyhow::Result<()> {
    let service = open_service(ServiceAccess::START | ServiceAccess::QUERY_STATUS)?;
    service
        .start::<&str>(&[])
        .map_err(|e| explain(e, "start the service"))?;
    wait_for_state(&service, ServiceState::Running)?;
    println!("Started the service {SERVICE_NAME}; its log is beside the .exe.");
    Ok(())
}

fn stop() -> anyhow::Result<()> {
    let service = open_service(ServiceAccess::STOP | ServiceAccess::QUERY_STATUS)?;
    service.stop().map_err(|e| explain(e, "stop the service"))?;
    wait_for_state(&service, ServiceState::Stopped)?;
    println!("Stopped the service {SERVICE_NAME}.");
    Ok(())
}

fn manager(access: ServiceManagerAccess) -> anyhow::Result<ServiceManager> {
    ServiceManager::local_computer(None::<&str>, access)
        .map_err(|e| explain(e, "open the service manager"))
}

/// The installed service, opened for `access`.
fn open_service(access: ServiceAccess) -> anyhow::Result<Service> {
    manager(ServiceManagerAccess::CONNECT)?
        .open_service(SERVICE_NAME, access)
        .map_err(|e| explain(e, "open the service"))
}

fn wait_for_state(service: &Service, wanted: ServiceState) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let state = service
            .query_status()
            .map_err(|e| explain(e, "query the service"))?
            .current_state;
        if state == wanted {
            return Ok(());
        }
        if started.elapsed() > STOP_TIMEOUT {
            bail!("the service is still {state:?} after {STOP_TIMEOUT:?}; see its log beside the .exe");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The Windows error codes people meet here, said with what to do.
fn explain(error: windows_service::Error, doing: &str) -> anyhow::Error {
    const ACCESS_DENIED: i32 = 5;
    const SERVICE_ALREADY_RUNNING: i32 = 1056;
    const SERVICE_DOES_NOT_EXIST: i32 = 1060;
    const SERVICE_NOT_ACTIVE: i32 = 1062;
    const SERVICE_EXISTS: i32 = 1073;
    const SERVICE_MARKED_FOR_DELETE: i32 = 1072;
    let code = match &error {
        windows_service::Error::Winapi(io) => io.raw_os_error(),
        _ => None,
    };
    let hint = match code {
        Some(ACCESS_DENIED) => {
            "access denied: run this from a command prompt opened with \"Run as administrator\""
        }
        Some(SERVICE_ALREADY_RUNNING) => "it is already running",
        Some(SERVICE_DOES_NOT_EXIST) => {
            "it is not installed: run procmon-agent.exe service install first"
        }
        Some(SERVICE_NOT_ACTIVE) => "it is not running",
        Some(SERVICE_EXISTS) => {
            "it is installed already (to reinstall: service uninstall, then service install)"
        }
        Some(SERVICE_MARKED_FOR_DELETE) => {
            "it is being removed: close the Services window and try again"
        }
        _ => "",
    };
    let cause = match &error {
        windows_service::Error::Winapi(io) => io.to_string(),
        other => format!("{other:?}"),
    };
    if hint.is_empty() {
        anyhow::anyhow!("cannot {doing}: {cause}")
    } else {
        anyhow::anyhow!("cannot {doing}: {hint} ({cause})")
    }
}

define_windows_service!(ffi_service_main, service_main);

/// Hands this process to the service manager, which calls `service_main`.
fn run_under_service_manager() -> anyhow::Result<()> {
    const NOT_STARTED_BY_SERVICE_MANAGER: i32 = 1063;
    match service_dispatcher::start(SERVICE_NAME, ffi_service_main) {
        Ok(()) => Ok(()),
        Err(windows_service::Error::Winapi(e))
            if e.raw_os_error() == Some(NOT_STARTED_BY_SERVICE_MANAGER) =>
        {
            bail!("`service run` is for the service manager; use `procmon-agent.exe service start`")
        }
        Err(e) => Err(explain(e, "run as a service")),
    }
}

fn service_main(_arguments: Vec<OsString>) {
    if let Err(error) = serve() {
        tracing::error!("the service stopped on an error: {error:#}");
    }
}

/// Reports Running, runs the agent until the service manager says stop (or
/// the machine shuts down), then reports Stopped.
fn serve() -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            let _ = stop_tx.send(true);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let status = service_control_handler::register(SERVICE_NAME, handler)
        .map_err(|e| explain(e, "register with the service manager"))?;
    let report = |state, accepted| ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accepted,
        exit_code: ServiceExitCode::Win32(0),
        checkpoint: 0,
        wait_hint: Duration::from_secs(10),
        process_id: None,
    };
    status
        .set_service_status(report(
            ServiceState::Running,
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        ))
        .map_err(|e| explain(e, "report Running"))?;
    tracing::info!("running as the Windows service {SERVICE_NAME}");

    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let result = tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")
        .and_then(|runtime| {
            // A service cannot ask anyone: with incomplete settings it logs
            // what to fix and waits, re-reading the file.
            runtime.block_on(first_run::run_when_configured(
                &Overrides::default(),
                || stopped(stop_rx.clone()),
            ))
        });
    status
        .set_service_status(report(ServiceState::Stopped, ServiceControlAccept::empty()))
        .map_err(|e| explain(e, "report Stopped"))?;
    result
}
