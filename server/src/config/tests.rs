//! The layers of the settings, each over the one before, and what is
//! refused with which message.

use super::*;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;

fn cli_with_file(text: &str) -> (tempfile::NamedTempFile, Cli) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let cli = Cli {
        config: Some(file.path().to_owned()),
        ..Cli::default()
    };
    (file, cli)
}

#[test]
fn unknown_key_in_file_is_named() {
    let (_file, cli) = cli_with_file("listen = \"127.0.0.1:9000\"\nretension = \"1h\"\n");
    let error = format!("{:#}", Settings::from_cli(cli).unwrap_err());
    assert!(error.contains("retension"), "{error}");
}

#[test]
fn every_unknown_key_in_file_is_named() {
    let (_file, cli) = cli_with_file("retension = \"1h\"\nlisten = \"127.0.0.1:1\"\nport = 1\n");
    let error = format!("{:#}", Settings::from_cli(cli).unwrap_err());
    assert!(error.contains("unknown keys port, retension"), "{error}");
    assert!(
        error.contains("the known keys are listen, data_dir"),
        "{error}"
    );
}

#[test]
fn the_known_keys_are_exactly_the_file_fields() {
    // serde lists every field it expects when one is unknown.
    let error = toml::from_str::<Settings>("zzz = 1")
        .unwrap_err()
        .to_string();
    for key in layers::setting_keys() {
        assert!(
            error.contains(&format!("`{key}`")),
            "{key} missing from {error}"
        );
    }
    assert_eq!(
        error.matches('`').count() / 2,
        layers::setting_keys().len() + 1,
        "{error}"
    );
}

#[test]
fn listen_takes_ip_port_or_localhost_port() {
    assert_eq!(
        parse_listen("localhost:8001"),
        Ok("127.0.0.1:8001".parse().unwrap())
    );
    assert_eq!(
        parse_listen("0.0.0.0:8001"),
        Ok("0.0.0.0:8001".parse().unwrap())
    );
    assert_eq!(
        parse_listen("[::1]:8001"),
        Ok("[::1]:8001".parse().unwrap())
    );
    for bad in ["8001", "localhost", "example.com:80", "localhost:99999"] {
        let error = parse_listen(bad).unwrap_err();
        assert!(
            error.contains("give IP:PORT, e.g. 127.0.0.1:8000"),
            "{error}"
        );
    }
    let (_file, cli) = cli_with_file("listen = \"8001\"\n");
    let error = format!("{:#}", Settings::from_cli(cli).unwrap_err());
    assert!(error.contains("listen in the config file"), "{error}");
    let (_file, cli) = cli_with_file("listen = \"localhost:8001\"\n");
    assert_eq!(Settings::from_cli(cli).unwrap().listen.port(), 8001);
}

#[test]
fn flags_override_file_which_overrides_defaults() {
    let (_file, mut cli) = cli_with_file(
        "listen = \"127.0.0.1:9000\"\nretention = \"2h\"\ndata_dir = \"d\"\nembedded_agent = false\n",
    );
    cli.retention = Some("30m".parse().unwrap());
    let settings = Settings::from_cli(cli).unwrap();
    assert_eq!(settings.listen, "127.0.0.1:9000".parse().unwrap());
    assert_eq!(settings.retention, Duration::from_secs(30 * 60));
    assert_eq!(settings.minute_retention, Retention::default().minute);
    assert_eq!(
        settings.database,
        DatabaseUrl::Sqlite(PathBuf::from("d").join("procmon.db"))
    );
    assert!(!settings.embedded_agent);
    assert_eq!(settings.body_limit, 32 * 1024 * 1024);
}

#[test]
fn the_metrics_token_comes_from_the_file_or_a_flag_and_is_never_shown() {
    let (_file, mut cli) = cli_with_file("metrics_token = \"file-token-0123456789\"\n");
    let file_only = Cli {
        config: cli.config.clone(),
        ..Cli::default()
    };
    let settings = Settings::from_cli(file_only).unwrap();
    let token = settings.metrics_token.as_ref().unwrap();
    assert_eq!(token.expose_secret(), "file-token-0123456789");
    assert!(
        !format!("{settings:?}").contains("file-token"),
        "{settings:?}"
    );
    cli.metrics_token = Some(SecretString::from("flag-token-0123456789"));
    assert!(!format!("{cli:?}").contains("flag-token"), "{cli:?}");
    let settings = Settings::from_cli(cli).unwrap();
    assert_eq!(
        settings.metrics_token.unwrap().expose_secret(),
        "flag-token-0123456789"
    );
}

#[test]
fn a_weak_or_unsendable_metrics_token_is_refused_without_showing_it() {
    for (text, expected) in [
        (
            "metrics_token = \"short-secret\"\n",
            "metrics_token is 12 characters long: give at least 16",
        ),
        (
            "metrics_token = \"a secret with spaces\"\n",
            "metrics_token has a space",
        ),
        (
            "metrics_token = \"\"\n",
            "metrics_token is 0 characters long",
        ),
    ] {
        let (_file, cli) = cli_with_file(text);
        let error = format!("{:#}", Settings::from_cli(cli).unwrap_err());
        assert!(error.contains(expected), "{error}");
        assert!(!error.contains("secret"), "{error}");
    }
}

#[test]
fn out_of_range_values_are_refused_naming_them() {
    for (text, expected) in [
        ("retention = \"10s\"\n", "retention 10s is too short"),
        ("body_limit = 100\n", "body_limit 100 is too small"),
        (
            "embedded_agent_interval = \"1ms\"\n",
            "embedded_agent_interval 1ms",
        ),
        (
            "embedded_agent_interval = \"2days\"\n",
            "embedded_agent_interval 2days is out of range: it must be between 100ms and 1day",
        ),
        (
            "header_timeout = \"0s\"\n",
            "header_timeout 0s is out of range: it must be between 1s and 5m",
        ),
        ("body_timeout = \"1h\"\n", "body_timeout 1h is out of range"),
        (
            "request_timeout = \"2h\"\n",
            "request_timeout 2h is out of range",
        ),
        (
            "shutdown_grace = \"1h\"\n",
            "shutdown_grace 1h is out of range",
        ),
        (
            "max_connections = 0\n",
            "max_connections 0 is out of range: it must be between 1 and 100000",
        ),
        (
            "ingest_per_second = 0\n",
            "ingest_per_second 0 is out of range",
        ),
        ("ingest_burst = 0\n", "ingest_burst 0 is out of range"),
    ] {
        let (_file, cli) = cli_with_file(text);
        let error = format!("{:#}", Settings::from_cli(cli).unwrap_err());
        assert!(error.contains(expected), "{error}");
    }
}

/// An environment of the given variables only, in place of the process's.
fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let vars: HashMap<String, OsString> = vars
        .iter()
        .map(|(name, value)| (name.to_string(), OsString::from(value)))
        .collect();
    move |name| vars.get(name).cloned()
}

/// A number, a path, a list and a secret from each layer: the file over
/// the defaults, the environment over the file, the flags over both.
#[test]
fn each_layer_overrides_the_one_before() {
    let file_text = "body_limit = 100000\ndata_dir = \"from-file\"\n\
                     allowed_hosts = [\"file.example\"]\n\
                     metrics_token = \"file-token-0123456789\"\n";
    let (_file, cli) = cli_with_file(file_text);
    let no_env = env_of(&[]);
    let env = env_of(&[
        ("PROCMON_BODY_LIMIT", "200000"),
        ("PROCMON_DATA_DIR", "from-env"),
        ("PROCMON_ALLOWED_HOSTS", "env.example,other.example"),
        ("PROCMON_METRICS_TOKEN", "0000env-token-0123456789"),
    ]);

    let defaults = Settings::from_cli_and_env(&Cli::default(), &no_env).unwrap();
    assert_eq!(defaults.body_limit, 32 * 1024 * 1024);
    assert_eq!(defaults.data_dir, PathBuf::from("procmon-data"));
    assert!(defaults.allowed_hosts.is_empty());
    assert!(defaults.metrics_token.is_none());

    let file = Settings::from_cli_and_env(&cli, &no_env).unwrap();
    assert_eq!(file.body_limit, 100_000);
    assert_eq!(file.data_dir, PathBuf::from("from-file"));
    assert_eq!(file.allowed_hosts, ["file.example"]);
    assert_eq!(
        file.metrics_token.unwrap().expose_secret(),
        "file-token-0123456789"
    );

    let over_file = Settings::from_cli_and_env(&cli, &env).unwrap();
    assert_eq!(over_file.body_limit, 200_000);
    assert_eq!(over_file.data_dir, PathBuf::from("from-env"));
    assert_eq!(
        over_file.database,
        DatabaseUrl::Sqlite(PathBuf::from("from-env").join("procmon.db"))
    );
    assert_eq!(over_file.allowed_hosts, ["env.example", "other.example"]);
    // Text stays text: leading zeros are kept.
    assert_eq!(
        over_file.metrics_token.unwrap().expose_secret(),
        "0000env-token-0123456789"
    );

    let flags = Cli {
        config: cli.config.clone(),
        ..Cli::try_parse_from([
            "procmon-server",
            "--body-limit",
            "300000",
            "--data-dir",
            "from-flag",
            "--allowed-hosts",
            "flag.example",
            "--metrics-token",
            "flag-token-0123456789",
        ])
        .unwrap()
    };
    let over_env = Settings::from_cli_and_env(&flags, &env).unwrap();
    assert_eq!(over_env.body_limit, 300_000);
    assert_eq!(over_env.data_dir, PathBuf::from("from-flag"));
    assert_eq!(over_env.allowed_hosts, ["flag.example"]);
    assert_eq!(
        over_env.metrics_token.unwrap().expose_secret(),
        "flag-token-0123456789"
    );
}

#[test]
fn durations_and_switches_come_from_the_environment() {
    let env = env_of(&[
        ("PROCMON_RETENTION", "2h"),
        ("PROCMON_NO_LOGIN", "1"),
        ("PROCMON_EMBEDDED_AGENT", "false"),
        ("PROCMON_LISTEN", "localhost:9001"),
        (
            "PROCMON_DATABASE",
            "postgres://procmon:hunter2@db.example/procmon",
        ),
        // Not a setting of the server's: looked past, not refused.
        ("PROCMON_AGENT_SERVER_URL", "http://elsewhere:8000"),
    ]);
    let settings = Settings::from_cli_and_env(&Cli::default(), &env).unwrap();
    assert_eq!(settings.retention, Duration::from_secs(2 * 3600));
    assert!(settings.no_login);
    assert!(!settings.embedded_agent);
    assert_eq!(settings.listen, "127.0.0.1:9001".parse().unwrap());
    assert!(matches!(settings.database, DatabaseUrl::Postgres(_)));
    assert!(!format!("{settings:?}").contains("hunter2"), "{settings:?}");
}

#[test]
fn the_no_agent_flag_turns_the_files_embedded_agent_off() {
    let (_file, cli) = cli_with_file("embedded_agent = true\n");
    let cli = Cli {
        no_agent: true,
        ..cli
    };
    let settings = Settings::from_cli_and_env(&cli, env_of(&[])).unwrap();
    assert!(!settings.embedded_agent);
}

#[test]
fn an_unknown_key_is_named_with_the_file_and_its_line() {
    let (file, cli) =
        cli_with_file("listen = \"127.0.0.1:9000\"\n\n# typo below\nretension = \"1h\"\n");
    let error = format!(
        "{:#}",
        Settings::from_cli_and_env(&cli, env_of(&[])).unwrap_err()
    );
    assert!(
        error.contains(&format!("invalid config file {}", file.path().display())),
        "{error}"
    );
    assert!(error.contains("unknown key retension (line 4)"), "{error}");
}

#[test]
fn a_bad_value_names_the_setting_its_layer_and_what_was_expected() {
    let env = env_of(&[("PROCMON_MAX_CONNECTIONS", "many")]);
    let error = format!(
        "{:#}",
        Settings::from_cli_and_env(&Cli::default(), env).unwrap_err()
    );
    assert!(
        error.contains("max_connections in the environment variable PROCMON_MAX_CONNECTIONS"),
        "{error}"
    );
    assert!(error.contains("expected usize"), "{error}");

    let env = env_of(&[("PROCMON_SESSION_IDLE", "soon")]);
    let error = format!(
        "{:#}",
        Settings::from_cli_and_env(&Cli::default(), env).unwrap_err()
    );
    assert!(
        error.contains("session_idle in the environment variable PROCMON_SESSION_IDLE"),
        "{error}"
    );

    let (file, cli) = cli_with_file("listen = \"127.0.0.1:9000\"\nbody_limit = \"big\"\n");
    let error = format!(
        "{:#}",
        Settings::from_cli_and_env(&cli, env_of(&[])).unwrap_err()
    );
    assert!(
        error.contains(&format!(
            "body_limit in the config file {}, line 2",
            file.path().display()
        )),
        "{error}"
    );

    let error = Cli::try_parse_from(["procmon-server", "--ingest-burst", "lots"])
        .unwrap_err()
        .to_string();
    assert!(error.contains("--ingest-burst"), "{error}");
}

#[test]
fn secrets_are_not_shown_in_debug_or_errors() {
    let env = env_of(&[
        ("PROCMON_METRICS_TOKEN", "env-token-0123456789"),
        (
            "PROCMON_DATABASE",
            "postgres://procmon:hunter2@db.example/procmon",
        ),
    ]);
    let settings = Settings::from_cli_and_env(&Cli::default(), env).unwrap();
    let shown = format!("{settings:?}");
    assert!(!shown.contains("env-token"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("db.example"), "{shown}");

    // A secret of the wrong type is refused without being repeated.
    let (_file, cli) = cli_with_file("metrics_token = 9876543210987654\n");
    let error = format!(
        "{:#}",
        Settings::from_cli_and_env(&cli, env_of(&[])).unwrap_err()
    );
    assert!(
        error.contains("metrics_token in the config file"),
        "{error}"
    );
    assert!(error.contains("found a number, expected a text"), "{error}");
    assert!(!error.contains("98765"), "{error}");

    // Nor is the line of a file that is not TOML, as toml would quote it.
    let (_file, cli) = cli_with_file("listen = \"127.0.0.1:1\"\nmetrics_token = unquoted-98765\n");
    let error = format!(
        "{:#}",
        Settings::from_cli_and_env(&cli, env_of(&[])).unwrap_err()
    );
    assert!(error.contains("line 2, column 17"), "{error}");
    assert!(!error.contains("98765"), "{error}");

    // A refused database URL is shown without its password.
    let env = env_of(&[(
        "PROCMON_DATABASE",
        "mysql://procmon:hunter2@db.example/procmon",
    )]);
    let error = format!(
        "{:#}",
        Settings::from_cli_and_env(&Cli::default(), env).unwrap_err()
    );
    assert!(
        error.contains("database in the environment variable PROCMON_DATABASE"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");

    let cli = Cli::try_parse_from([
        "procmon-server",
        "--database",
        "postgres://procmon:hunter2@db.example/procmon",
    ])
    .unwrap();
    assert!(!format!("{cli:?}").contains("hunter2"), "{cli:?}");
}

/// Every flag that is a setting serializes under a setting's key (the
/// struct refuses others), so a renamed field cannot drift from its flag.
#[test]
fn every_flag_lands_on_a_setting() {
    let cli = Cli::try_parse_from([
        "procmon-server",
        "--listen=127.0.0.1:1",
        "--data-dir=d",
        "--database=sqlite://x.db",
        "--no-login",
        "--allowed-hosts=a.example",
        "--session-idle=1h",
        "--session-lifetime=2h",
        "--retention=1h",
        "--minute-retention=2h",
        "--hour-retention=3h",
        "--body-limit=100000",
        "--no-agent",
        "--embedded-agent-interval=1s",
        "--embedded-agent-actions=terminate,suspend",
        "--header-timeout=2s",
        "--body-timeout=3s",
        "--request-timeout=4s",
        "--max-connections=5",
        "--shutdown-grace=6s",
        "--ingest-per-second=7",
        "--ingest-burst=8",
        "--metrics-token=flag-token-0123456789",
    ])
    .unwrap();
    let settings = Settings::from_cli_and_env(&cli, env_of(&[])).unwrap();
    assert_eq!(
        settings.database,
        DatabaseUrl::Sqlite(PathBuf::from("x.db"))
    );
    assert_eq!(settings.session_lifetime, Duration::from_secs(7200));
    assert_eq!(settings.hour_retention, Duration::from_secs(3 * 3600));
    assert_eq!(settings.shutdown_grace, Duration::from_secs(6));
    assert_eq!(settings.ingest_burst, 8);
    assert!(settings.no_login && !settings.embedded_agent);
    assert_eq!(
        settings.embedded_agent_kinds().unwrap(),
        [ActionKind::Terminate, ActionKind::Suspend]
    );
    let keys = layers::setting_keys();
    assert_eq!(keys.len(), 24, "{keys:?}");
    assert!(!keys.contains(&"maintenance_every"), "{keys:?}");
}

/// Actions of the server's own agent: none unless listed, from the file,
/// the environment or a flag; a name that is not an action is refused,
/// naming it and the actions there are.
#[test]
fn the_embedded_agents_actions_are_off_unless_listed_and_checked() {
    let none = Settings::from_cli_and_env(&Cli::default(), env_of(&[])).unwrap();
    assert!(none.embedded_agent_kinds().unwrap().is_empty());

    let (_file, cli) = cli_with_file("embedded_agent_actions = [\"kill\"]\n");
    let file = Settings::from_cli_and_env(&cli, env_of(&[])).unwrap();
    assert_eq!(file.embedded_agent_kinds().unwrap(), [ActionKind::Kill]);
    let env = env_of(&[("PROCMON_EMBEDDED_AGENT_ACTIONS", "resume, lower_priority")]);
    let over_file = Settings::from_cli_and_env(&cli, env).unwrap();
    assert_eq!(
        over_file.embedded_agent_kinds().unwrap(),
        [ActionKind::Resume, ActionKind::LowerPriority]
    );

    let (_file, cli) = cli_with_file("embedded_agent_actions = \"terminate,reboot\"\n");
    let error = Settings::from_cli_and_env(&cli, env_of(&[]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "embedded_agent_actions entry \"reboot\" is not an action: the actions are terminate, \
         kill, suspend, resume, lower_priority"
    );
}
