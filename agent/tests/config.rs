//! Settings: the layers (file < environment < flags) and the errors for
//! settings that are wrong.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use procmon_agent::config::{ConfigError, Overrides, Settings, DEFAULT_FILE_TEXT};
use procmon_agent::{AgentConfig, ServerTrust};
use secrecy::{ExposeSecret, SecretString};

/// A config file in a fresh temp dir (kept alive by the returned guard).
fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("procmon-agent.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn with_file(path: &Path) -> Overrides {
    Overrides {
        config_file: Some(path.to_owned()),
        ..Overrides::default()
    }
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

fn key(settings: &Settings) -> Option<&str> {
    settings.api_key.as_ref().map(|k| k.expose_secret())
}

const FULL_FILE: &str = r#"
server_url = "http://file.example:8000"
api_key = "from-file"
interval = "5s"
"#;

#[test]
fn the_file_sets_everything_it_names() {
    let (_dir, path) = file(FULL_FILE);
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    assert_eq!(settings.server_urls, ["http://file.example:8000"]);
    assert_eq!(key(&settings), Some("from-file"));
    assert_eq!(settings.interval, Duration::from_secs(5));
    assert_eq!(settings.file.as_ref(), Some(&path));
}

#[test]
fn the_environment_beats_the_file_and_flags_beat_both() {
    let (_dir, path) = file(FULL_FILE);
    let environment = env(&[
        ("PROCMON_AGENT_SERVER_URL", "http://env.example:8000"),
        ("PROCMON_AGENT_API_KEY", "from-env"),
    ]);
    let settings = Settings::load_with_env(&with_file(&path), &environment).unwrap();
    assert_eq!(settings.server_urls, ["http://env.example:8000"]);
    assert_eq!(key(&settings), Some("from-env"));
    // Not set in the environment, so the file's value stands.
    assert_eq!(settings.interval, Duration::from_secs(5));

    let flags = Overrides {
        api_key: Some(SecretString::from("from-flag")),
        interval: Some("750ms".to_owned()),
        ..with_file(&path)
    };
    let settings = Settings::load_with_env(&flags, &environment).unwrap();
    assert_eq!(settings.server_urls, ["http://env.example:8000"]);
    assert_eq!(key(&settings), Some("from-flag"));
    assert_eq!(settings.interval, Duration::from_millis(750));
}

#[test]
fn without_any_layer_the_defaults_hold_and_sending_needs_a_key() {
    let (_dir, path) = file("");
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    assert_eq!(settings.server_urls, ["http://127.0.0.1:8000"]);
    assert_eq!(settings.interval, Duration::from_secs(2));
    assert!(settings.api_key.is_none());
    let error = settings.into_agent_config().unwrap_err();
    assert!(matches!(error, ConfigError::MissingApiKey { .. }));
    let message = error.to_string();
    assert!(message.contains("PROCMON_AGENT_ENROLL_SECRET"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn an_enrollment_secret_enrolls_keeping_the_key_beside_the_config_file() {
    let (dir, path) = file("enroll_secret = \"pme_from-file\"\n");
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    let config = settings.into_agent_config().unwrap();
    let procmon_agent::AgentKey::Enroll { secret, key_file } = config.key else {
        panic!("enrolls");
    };
    assert_eq!(secret.expose_secret(), "pme_from-file");
    assert_eq!(key_file, dir.path().join("procmon-agent.key"));

    // Once the key file exists and no secret is set any more, its key is
    // used; an api_key, when set, wins over both.
    std::fs::write(dir.path().join("procmon-agent.key"), "pmk_kept_x\n").unwrap();
    let (_other, bare) = file("");
    let flags = procmon_agent::config::Overrides {
        key_file: Some(dir.path().join("procmon-agent.key")),
        ..with_file(&bare)
    };
    let config = Settings::load_with_env(&flags, env(&[]))
        .unwrap()
        .into_agent_config()
        .unwrap();
    let procmon_agent::AgentKey::Given(key) = config.key else {
        panic!("uses the kept key");
    };
    assert_eq!(key.expose_secret(), "pmk_kept_x");
    let config = Settings::load_with_env(
        &with_file(&path),
        env(&[("PROCMON_AGENT_API_KEY", "pmk_given_y")]),
    )
    .unwrap()
    .into_agent_config()
    .unwrap();
    assert!(
        matches!(config.key, procmon_agent::AgentKey::Given(k) if k.expose_secret() == "pmk_given_y")
    );
}

#[test]
fn the_commented_default_file_is_valid_and_asks_for_a_key() {
    let (_dir, path) = file(DEFAULT_FILE_TEXT);
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    assert_eq!(settings.server_urls, ["http://127.0.0.1:8000"]);
    assert_eq!(settings.interval, Duration::from_secs(2));
    // Its empty key counts as no key.
    assert!(settings.api_key.is_none());
}

#[test]
fn an_unknown_key_in_the_file_is_named_with_the_file() {
    let (_dir, path) = file("server_url = \"http://a:1\"\napi_kee = \"typo\"\n");
    let error = Settings::load_with_env(&with_file(&path), env(&[])).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("api_kee"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn a_bad_interval_says_where_it_came_from() {
    let (_dir, path) = file("interval = \"often\"\n");
    let message = Settings::load_with_env(&with_file(&path), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("interval") && message.contains("often"),
        "{message}"
    );

    let (_dir, path) = file("");
    let message = Settings::load_with_env(
        &with_file(&path),
        env(&[("PROCMON_AGENT_INTERVAL", "2 parsecs")]),
    )
    .unwrap_err()
    .to_string();
    assert!(message.contains("PROCMON_AGENT_INTERVAL"), "{message}");

    let flags = Overrides {
        interval: Some("10ms".to_owned()),
        ..with_file(&path)
    };
    let message = Settings::load_with_env(&flags, env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("--interval") && message.contains("at least"),
        "{message}"
    );
}

#[test]
fn an_interval_over_one_day_is_refused_naming_the_key() {
    let (_dir, path) = file("interval = \"25h\"\n");
    let message = Settings::load_with_env(&with_file(&path), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("key interval") && message.contains("at most 1day"),
        "{message}"
    );

    let (_dir, path) = file("");
    let flags = Overrides {
        interval: Some("2days".to_owned()),
        ..with_file(&path)
    };
    let message = Settings::load_with_env(&flags, env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("--interval") && message.contains("at most"),
        "{message}"
    );

    // One day itself is accepted.
    let (_dir, path) = file("interval = \"1day\"\n");
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    assert_eq!(settings.interval, procmon_agent::config::MAX_INTERVAL);
}

#[test]
fn an_interval_that_is_a_number_not_a_duration_is_refused() {
    let (_dir, path) = file("interval = 2\n");
    let message = Settings::load_with_env(&with_file(&path), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(message.contains("interval"), "{message}");
}

#[test]
fn a_bad_server_url_is_refused() {
    let (_dir, path) = file("server_url = \"ftp://example\"\n");
    let message = Settings::load_with_env(&with_file(&path), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("server_url") && message.contains("http"),
        "{message}"
    );

    let (_dir, path) = file("");
    let flags = Overrides {
        server_url: Some("not a url".to_owned()),
        ..with_file(&path)
    };
    let message = Settings::load_with_env(&flags, env(&[]))
        .unwrap_err()
        .to_string();
    assert!(message.contains("--server-url"), "{message}");
}

#[test]
fn a_config_file_given_but_missing_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.toml");
    let error = Settings::load_with_env(&with_file(&path), env(&[])).unwrap_err();
    assert!(matches!(error, ConfigError::FileUnreadable { .. }));
    assert!(error.to_string().contains("nowhere.toml"), "{error}");
}

#[test]
fn a_file_that_is_not_toml_is_an_error_naming_it() {
    let (_dir, path) = file("server_url = \n[[[");
    let error = Settings::load_with_env(&with_file(&path), env(&[])).unwrap_err();
    assert!(matches!(error, ConfigError::FileInvalid { .. }));
    assert!(error.to_string().contains(&path.display().to_string()));
}

#[test]
fn debug_output_never_shows_the_key() {
    let config = AgentConfig::new("http://127.0.0.1:8000", "s3cret-agent-key");
    assert_eq!(config.interval, Duration::from_secs(2));
    let printed = format!("{config:?}");
    assert!(!printed.contains("s3cret"), "{printed}");
    assert!(printed.contains("127.0.0.1:8000"));

    let (_dir, path) = file("api_key = \"s3cret-from-file\"\n");
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    assert!(!format!("{settings:?}").contains("s3cret"));
    let error_free = format!("{:?}", settings.into_agent_config().unwrap());
    assert!(!error_free.contains("s3cret"));
}

#[test]
fn the_parsed_command_line_never_shows_the_key() {
    use clap::Parser;
    let cli = procmon_agent::cli::Cli::parse_from(["procmon-agent", "--api-key", "s3cret-flag"]);
    assert!(!format!("{cli:?}").contains("s3cret"));
    let key = cli.overrides().api_key.expect("the flag is kept");
    assert_eq!(key.expose_secret(), "s3cret-flag");
}

/// A self-signed CA certificate (P-256). Only its form matters here:
/// sending through a CA is tested with the server, with fresh certificates.
const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBlDCCATugAwIBAgIUROwD3xGnqCBRmcUK+/acN9z9ueMwCgYIKoZIzj0EAwIw
IDEeMBwGA1UEAwwVcHJvY21vbiBhZ2VudCB0ZXN0IENBMB4XDTI2MTEyNjA2MTc0
MloXDTM2MTEyMzA2MTc0MlowIDEeMBwGA1UEAwwVcHJvY21vbiBhZ2VudCB0ZXN0
IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEgcKKFfPrQAoKs+dUH0qEKNPo
J81Px+qBzMGBKqNWHEfpZpUMIVRYy2l44YoRvADqkl76kE/SkyKuGK5VuUeyZaNT
MFEwHQYDVR0OBBYEFBj3Mcuezm+esY6x9e0FcML2wX04MB8GA1UdIwQYMBaAFBj3
Mcuezm+esY6x9e0FcML2wX04MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID
RwAwRAIgEds4cBrWcUw2sXnFNWD8l0wxpspS+dTd98cidAOIW6ACIEd/2dh9Y+Ot
SWycIfFM0eJS/Cx8tpXlDbR4eepLMXk7
-----END CERTIFICATE-----
";

#[test]
fn ca_file_in_the_file_is_relative_to_the_file_and_the_environment_and_flag_beat_it() {
    let (dir, path) = file("api_key = \"k\"\nca_file = \"ca.pem\"\n");
    let beside = dir.path().join("ca.pem");
    std::fs::write(&beside, TEST_CA).unwrap();
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    assert_eq!(settings.ca_file.as_ref(), Some(&beside));
    match settings.into_agent_config().unwrap().trust {
        ServerTrust::CaFile(ca) => {
            assert_eq!(ca.path(), beside);
            assert_eq!(ca.certificates().len(), 1);
        }
        other => panic!("the CA file is not trusted: {other:?}"),
    }

    let from_env = env(&[("PROCMON_AGENT_CA_FILE", "/env/ca.pem")]);
    let settings = Settings::load_with_env(&with_file(&path), &from_env).unwrap();
    assert_eq!(settings.ca_file, Some(PathBuf::from("/env/ca.pem")));
    let flags = Overrides {
        ca_file: Some(PathBuf::from("/flag/ca.pem")),
        ..with_file(&path)
    };
    let settings = Settings::load_with_env(&flags, &from_env).unwrap();
    assert_eq!(settings.ca_file, Some(PathBuf::from("/flag/ca.pem")));

    // An empty key in the file is no CA file either (not the file's folder).
    let (_dir, path) = file("api_key = \"k\"\nca_file = \"\"\n");
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    assert_eq!(settings.ca_file, None);

    // A variable set to nothing is no CA file.
    let (_dir, path) = file("api_key = \"k\"\n");
    let settings =
        Settings::load_with_env(&with_file(&path), env(&[("PROCMON_AGENT_CA_FILE", "")])).unwrap();
    assert_eq!(settings.ca_file, None);
    assert!(matches!(
        settings.into_agent_config().unwrap().trust,
        ServerTrust::PublicCas
    ));
}

#[test]
fn a_ca_file_that_cannot_be_used_stops_the_agent_naming_it_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let missing = dir.path().join("missing.pem");
    let cases = [
        (missing.clone(), "cannot read it"),
        (
            write("garbage.pem", "not a certificate"),
            "it holds no certificate",
        ),
        (
            write(
                "damaged.pem",
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
            ),
            "it is not valid PEM: a block's base64 text is damaged",
        ),
        (
            write(
                "not-x509.pem",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ),
            "certificate 1 of 1 in it cannot be used as a CA",
        ),
    ];
    for (path, why) in cases {
        let settings = Settings::load_with_env(
            &Overrides {
                ca_file: Some(path.clone()),
                api_key: Some(SecretString::from("k")),
                ..Overrides::default()
            },
            env(&[]),
        )
        .unwrap();
        let error = settings.into_agent_config().unwrap_err();
        assert!(matches!(error, ConfigError::CaFile { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "the CA file {} (ca_file) cannot be used: {why}",
                path.display()
            )),
            "{message}"
        );
    }
}

#[test]
fn the_spool_is_beside_the_key_file_and_holds_64_mib_unless_set() {
    let (dir, path) = file("");
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    assert_eq!(settings.spool_dir, dir.path().join("procmon-agent-spool"));
    assert_eq!(settings.spool_max_bytes.get(), 64 * 1024 * 1024);

    // It follows the key file when that is moved.
    let flags = Overrides {
        key_file: Some(PathBuf::from("/var/lib/procmon/agent.key")),
        ..with_file(&path)
    };
    let settings = Settings::load_with_env(&flags, env(&[])).unwrap();
    assert_eq!(
        settings.spool_dir,
        PathBuf::from("/var/lib/procmon/procmon-agent-spool")
    );

    // The commented default file leaves both at their defaults.
    let (dir, path) = file(DEFAULT_FILE_TEXT);
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    assert_eq!(settings.spool_dir, dir.path().join("procmon-agent-spool"));
    assert_eq!(settings.spool_max_bytes.get(), 64 * 1024 * 1024);
}

#[test]
fn spool_settings_are_layered_and_reach_the_agent_config() {
    let (dir, path) = file("api_key = \"k\"\nspool_dir = \"queue\"\nspool_max_mb = 8\n");
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    // Relative to the file's folder, as ca_file.
    assert_eq!(settings.spool_dir, dir.path().join("queue"));
    assert_eq!(settings.spool_max_bytes.get(), 8 * 1024 * 1024);
    let config = settings.into_agent_config().unwrap();
    assert_eq!(config.spool_dir, dir.path().join("queue"));
    assert_eq!(config.spool_max_bytes.get(), 8 * 1024 * 1024);

    let environment = env(&[
        ("PROCMON_AGENT_SPOOL_DIR", "/env/spool"),
        ("PROCMON_AGENT_SPOOL_MAX_MB", "16"),
    ]);
    let settings = Settings::load_with_env(&with_file(&path), &environment).unwrap();
    assert_eq!(settings.spool_dir, PathBuf::from("/env/spool"));
    assert_eq!(settings.spool_max_bytes.get(), 16 * 1024 * 1024);

    let flags = Overrides {
        spool_dir: Some(PathBuf::from("/flag/spool")),
        spool_max_mb: Some("32".to_owned()),
        ..with_file(&path)
    };
    let settings = Settings::load_with_env(&flags, &environment).unwrap();
    assert_eq!(settings.spool_dir, PathBuf::from("/flag/spool"));
    assert_eq!(settings.spool_max_bytes.get(), 32 * 1024 * 1024);

    // A variable set to nothing is no spool folder.
    let settings =
        Settings::load_with_env(&with_file(&path), env(&[("PROCMON_AGENT_SPOOL_DIR", "")]))
            .unwrap();
    assert_eq!(settings.spool_dir, dir.path().join("queue"));
    // Nor is an empty key in the file (it is not the file's own folder).
    let (dir, path) = file("spool_dir = \"\"\n");
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    assert_eq!(settings.spool_dir, dir.path().join("procmon-agent-spool"));
}

#[test]
fn a_bad_spool_size_says_where_it_came_from() {
    for (text, why) in [
        ("spool_max_mb = 0\n", "between 1 and"),
        ("spool_max_mb = -1\n", "whole number of MiB"),
        ("spool_max_mb = 1.5\n", "whole number of MiB"),
    ] {
        let (_dir, path) = file(text);
        let message = Settings::load_with_env(&with_file(&path), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains("key spool_max_mb") && message.contains(why),
            "{message}"
        );
    }

    let (_dir, path) = file("");
    let message = Settings::load_with_env(
        &with_file(&path),
        env(&[("PROCMON_AGENT_SPOOL_MAX_MB", "64MB")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("PROCMON_AGENT_SPOOL_MAX_MB") && message.contains("whole number of MiB"),
        "{message}"
    );

    let flags = Overrides {
        spool_max_mb: Some("99999999999".to_owned()),
        ..with_file(&path)
    };
    let message = Settings::load_with_env(&flags, env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("--spool-max-mb") && message.contains("between 1 and"),
        "{message}"
    );
}

#[test]
fn the_command_line_sets_the_spool() {
    use clap::Parser;
    let cli = procmon_agent::cli::Cli::parse_from([
        "procmon-agent",
        "--spool-dir",
        "/tmp/q",
        "--spool-max-mb",
        "5",
    ]);
    let overrides = cli.overrides();
    assert_eq!(overrides.spool_dir, Some(PathBuf::from("/tmp/q")));
    assert_eq!(overrides.spool_max_mb.as_deref(), Some("5"));
}

#[test]
fn full_every_comes_from_the_file_the_environment_or_the_flag() {
    let (_dir, path) = file("full_every = \"5m\"\n");
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    assert_eq!(settings.full_every, Duration::from_secs(300));
    let environment = env(&[("PROCMON_AGENT_FULL_EVERY", "1h")]);
    let settings = Settings::load_with_env(&with_file(&path), &environment).unwrap();
    assert_eq!(settings.full_every, Duration::from_secs(3600));
    let flags = Overrides {
        full_every: Some("0s".to_owned()),
        ..with_file(&path)
    };
    let settings = Settings::load_with_env(&flags, &environment).unwrap();
    assert_eq!(settings.full_every, Duration::ZERO);

    let (_bare_dir, bare) = file("");
    let settings = Settings::load_with_env(&with_file(&bare), env(&[])).unwrap();
    assert_eq!(settings.full_every, procmon_agent::DEFAULT_FULL_EVERY);

    let flags = Overrides {
        full_every: Some("often".to_owned()),
        ..with_file(&bare)
    };
    let message = Settings::load_with_env(&flags, env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("the flag --full-every: \"often\" is not a valid full_every"),
        "{message}"
    );
}

#[test]
fn a_server_url_without_its_scheme_says_to_add_http() {
    let (_dir, path) = file("");
    let flags = Overrides {
        server_url: Some("127.0.0.1:8000".to_owned()),
        ..with_file(&path)
    };
    let message = Settings::load_with_env(&flags, env(&[]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "the flag --server-url: \"127.0.0.1:8000\" is not a valid server_url: add http:// \
         (e.g. http://127.0.0.1:8000)"
    );
}

/// A server key as `procmon-server action-key` prints it.
fn server_key(seed: u8) -> String {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key();
    procmon_agent::actions::ServerKey::from_verifying_key(key).to_string()
}

#[test]
fn actions_are_off_unless_enabled_and_allow_four_kinds_by_default() {
    use procmon_model::actions::ActionKind;
    let settings = Settings::load_with_env(&Overrides::default(), env(&[])).unwrap();
    assert!(!settings.actions.enabled);
    assert_eq!(
        settings.actions.allow,
        [
            ActionKind::Terminate,
            ActionKind::Kill,
            ActionKind::Suspend,
            ActionKind::Resume
        ]
    );
    assert_eq!(settings.server_key, None);
}

#[test]
fn action_settings_are_layered_file_environment_flags() {
    use procmon_model::actions::ActionKind;
    let key_1 = server_key(1);
    let (_dir, path) = file(&format!(
        "api_key = \"k\"\n[actions]\nenabled = true\nallow = [\"kill\", \"lower_priority\"]\n\
         server_key = \"{key_1}\"\n"
    ));
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    assert!(settings.actions.enabled);
    assert_eq!(
        settings.actions.allow,
        [ActionKind::Kill, ActionKind::LowerPriority]
    );
    assert_eq!(settings.server_key.unwrap().to_string(), key_1);

    let key_2 = server_key(2);
    let environment = env(&[
        ("PROCMON_AGENT_ACTIONS_ENABLED", "false"),
        ("PROCMON_AGENT_ACTIONS_ALLOW", "suspend, resume"),
        ("PROCMON_AGENT_ACTIONS_SERVER_KEY", &key_2),
    ]);
    let settings = Settings::load_with_env(&with_file(&path), &environment).unwrap();
    assert!(!settings.actions.enabled);
    assert_eq!(
        settings.actions.allow,
        [ActionKind::Suspend, ActionKind::Resume]
    );
    assert_eq!(settings.server_key.unwrap().to_string(), key_2);

    let flags = Overrides {
        actions_enabled: Some("true".into()),
        actions_allow: Some("terminate".into()),
        ..with_file(&path)
    };
    let settings = Settings::load_with_env(&flags, &environment).unwrap();
    assert!(settings.actions.enabled);
    assert_eq!(settings.actions.allow, [ActionKind::Terminate]);

    // They reach the agent's config, with the saved key beside the key file.
    let config = settings.into_agent_config().unwrap();
    assert!(config.actions.settings.enabled);
    assert_eq!(
        config.actions.pinned.configured().unwrap().to_string(),
        key_2
    );
}

#[test]
fn an_unknown_action_kind_is_named_with_the_kinds_there_are() {
    let (_dir, path) = file("[actions]\nenabled = true\nallow = [\"kill\", \"reboot\"]\n");
    let error = Settings::load_with_env(&with_file(&path), env(&[]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!(
            "the config file {}, key allow of [actions]: \"reboot\" is not a valid action kind: \
             the kinds are terminate, kill, suspend, resume, lower_priority",
            path.display()
        )
    );
    let error = Settings::load_with_env(
        &Overrides::default(),
        env(&[("PROCMON_AGENT_ACTIONS_ALLOW", "kill,nap")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with(
            "the environment variable PROCMON_AGENT_ACTIONS_ALLOW: \"nap\" is not a valid action kind"
        ),
        "{error}"
    );
}

#[test]
fn a_malformed_server_key_or_switch_says_where_and_what_is_wrong() {
    let (_dir, path) = file("[actions]\nserver_key = \"ed25519:AAAA\"\n");
    let error = Settings::load_with_env(&with_file(&path), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("key server_key of [actions]: \"ed25519:AAAA\" is not a valid server key: it holds 3 bytes"),
        "{error}"
    );
    let flags = Overrides {
        actions_server_key: Some("AAAA".into()),
        ..Overrides::default()
    };
    let error = Settings::load_with_env(&flags, env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("the flag --actions-server-key: \"AAAA\" is not a valid server key: it must start with ed25519:"),
        "{error}"
    );
    let error = Settings::load_with_env(
        &Overrides::default(),
        env(&[("PROCMON_AGENT_ACTIONS_ENABLED", "yes")]),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        error,
        "the environment variable PROCMON_AGENT_ACTIONS_ENABLED: \"yes\" is not a valid switch: \
         write true or false"
    );
    let (_dir, path) = file("[actions]\nenabled = 1\n");
    let error = Settings::load_with_env(&with_file(&path), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"1\" is not a valid switch"), "{error}");
    let (_dir, path) = file("[actions]\nenable = true\n");
    let error = Settings::load_with_env(&with_file(&path), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `enable`"), "{error}");
}

#[test]
fn the_command_line_sets_the_actions() {
    use clap::Parser;
    let cli = procmon_agent::cli::Cli::try_parse_from([
        "procmon-agent",
        "--actions-enabled",
        "true",
        "--actions-allow",
        "kill",
        "--actions-server-key",
        "ed25519:x",
    ])
    .unwrap();
    let overrides = cli.overrides();
    assert_eq!(overrides.actions_enabled.as_deref(), Some("true"));
    assert_eq!(overrides.actions_allow.as_deref(), Some("kill"));
    assert_eq!(overrides.actions_server_key.as_deref(), Some("ed25519:x"));
}

#[test]
fn labels_are_layered_file_environment_flags_and_reach_the_agent_config() {
    let (_dir, path) = file("api_key = \"k\"\nlabels = [\"prod\", \"role=db\", \"prod\"]\n");
    let settings = Settings::load_with_env(&with_file(&path), env(&[])).unwrap();
    // Each once, in the order given.
    assert_eq!(settings.labels, ["prod", "role=db"]);

    let environment = env(&[("PROCMON_AGENT_LABELS", " staging , dc/eu-1,")]);
    let settings = Settings::load_with_env(&with_file(&path), &environment).unwrap();
    assert_eq!(settings.labels, ["staging", "dc/eu-1"]);

    let flags = Overrides {
        labels: Some("edge".into()),
        ..with_file(&path)
    };
    let settings = Settings::load_with_env(&flags, &environment).unwrap();
    assert_eq!(settings.labels, ["edge"]);
    assert_eq!(settings.into_agent_config().unwrap().labels, ["edge"]);

    // Empty text sets nothing; without any layer there are none.
    let settings =
        Settings::load_with_env(&with_file(&path), env(&[("PROCMON_AGENT_LABELS", " ")])).unwrap();
    assert_eq!(settings.labels, ["prod", "role=db"]);
    let settings = Settings::load_with_env(&Overrides::default(), env(&[])).unwrap();
    assert!(settings.labels.is_empty());
}

#[test]
fn a_bad_label_is_refused_naming_it_and_where_it_came_from() {
    let (_dir, path) = file("labels = [\"prod\", \"two words\"]\n");
    let error = Settings::load_with_env(&with_file(&path), env(&[]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!(
            "the config file {}, key labels: \"two words\" is not a valid label: ' ' cannot be \
             in a label: use letters, digits and _ . : = / -",
            path.display()
        )
    );
    let long = "x".repeat(65);
    let error = Settings::load_with_env(
        &Overrides::default(),
        env(&[("PROCMON_AGENT_LABELS", &format!("prod,{long}"))]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with(&format!(
            "the environment variable PROCMON_AGENT_LABELS: \"{long}\" is not a valid label: \
             it is 65 bytes long"
        )),
        "{error}"
    );
    let many: Vec<String> = (0..33).map(|i| format!("l{i}")).collect();
    let flags = Overrides {
        labels: Some(many.join(",")),
        ..Overrides::default()
    };
    let error = Settings::load_with_env(&flags, env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("the flag --labels: ") && error.contains("at most 32"),
        "{error}"
    );
    let (_dir, path) = file("labels = 7\n");
    let error = Settings::load_with_env(&with_file(&path), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("a list of labels"), "{error}");
}
