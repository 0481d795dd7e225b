//! `server_url` as one URL or a list: in the file a string or an array, in
//! the environment and flags a comma-separated list; every URL checked, and
//! the wrong one named.

use std::collections::HashMap;
use std::path::PathBuf;

use procmon_agent::config::{ConfigError, Overrides, Settings, DEFAULT_RETURN_AFTER};

fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("procmon-agent.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The settings from a file with `text`, the environment `vars` and the
/// flag `--server-url flag`.
fn load(text: &str, vars: &[(&str, &str)], flag: Option<&str>) -> Result<Settings, ConfigError> {
    let (_dir, path) = file(text);
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let flags = Overrides {
        config_file: Some(path),
        server_url: flag.map(str::to_owned),
        ..Overrides::default()
    };
    Settings::load_with_env(&flags, move |name| vars.get(name).cloned())
}

fn urls(settings: Result<Settings, ConfigError>) -> Vec<String> {
    settings.unwrap().server_urls
}

fn error(settings: Result<Settings, ConfigError>) -> String {
    settings.unwrap_err().to_string()
}

#[test]
fn one_string_in_the_file_is_one_server() {
    assert_eq!(
        urls(load("server_url = \"https://a:8000/\"\n", &[], None)),
        ["https://a:8000"]
    );
}

#[test]
fn a_list_in_the_file_keeps_its_order() {
    let settings = load(
        "server_url = [\"https://b:8000\", \"https://a:8000\"]\n",
        &[],
        None,
    );
    assert_eq!(urls(settings), ["https://b:8000", "https://a:8000"]);
}

#[test]
fn the_environment_and_the_flag_take_comma_separated_lists() {
    let from_env = load(
        "",
        &[(
            "PROCMON_AGENT_SERVER_URL",
            "http://a:8000, http://b:8000/ ,",
        )],
        None,
    );
    assert_eq!(urls(from_env), ["http://a:8000", "http://b:8000"]);
    let from_flag = load(
        "server_url = [\"http://file:1\", \"http://file:2\"]\n",
        &[("PROCMON_AGENT_SERVER_URL", "http://env:1")],
        Some("http://flag:1,http://flag:2"),
    );
    assert_eq!(urls(from_flag), ["http://flag:1", "http://flag:2"]);
}

#[test]
fn an_empty_list_is_an_error() {
    let message = error(load("server_url = []\n", &[], None));
    assert!(
        message.contains("key server_url") && message.contains("names no server"),
        "{message}"
    );
    let message = error(load("", &[], Some(" , ")));
    assert!(
        message.starts_with(
            "the flag --server-url: \" , \" is not a valid server_url: it names no server"
        ),
        "{message}"
    );
}

#[test]
fn a_bad_url_in_a_list_is_named() {
    let message = error(load(
        "server_url = [\"http://a:8000\", \"b.example:8000\"]\n",
        &[],
        None,
    ));
    assert!(
        message.contains("key server_url: \"b.example:8000\" is not a valid server_url: add http:// (e.g. http://b.example:8000)"),
        "{message}"
    );
    let message = error(load(
        "",
        &[("PROCMON_AGENT_SERVER_URL", "http://a:8000,ftp://b:21")],
        None,
    ));
    assert!(
        message.starts_with(
            "the environment variable PROCMON_AGENT_SERVER_URL: \"ftp://b:21\" is not a valid server_url"
        ),
        "{message}"
    );
}

#[test]
fn a_server_listed_twice_is_an_error() {
    let message = error(load("", &[], Some("http://a:8000,http://a:8000/")));
    assert!(
        message.contains("\"http://a:8000/\" is not a valid server_url: it is listed twice"),
        "{message}"
    );
}

#[test]
fn a_value_neither_text_nor_a_list_says_what_is_expected() {
    let message = error(load("server_url = 8000\n", &[], None));
    assert!(
        message.contains("server_url") && message.contains("or a list of them"),
        "{message}"
    );
}

#[test]
fn the_agent_config_has_every_server_and_the_return_interval() {
    let config = load(
        "server_url = [\"http://a:1\", \"http://b:1\"]\napi_key = \"pmk_x_y\"\n",
        &[],
        None,
    )
    .unwrap()
    .into_agent_config()
    .unwrap();
    assert_eq!(config.server_urls, ["http://a:1", "http://b:1"]);
    assert_eq!(config.return_after, DEFAULT_RETURN_AFTER);
}
