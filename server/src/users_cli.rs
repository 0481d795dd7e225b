//! `procmon-server users ...` and `procmon-server signin-link`: managing
//! accounts from the server's own machine; and `procmon-server action-key`,
//! the key actions are signed with. Each opens the database the server
//! uses (a running server sees the change at once), acts, closes.

use std::io::BufRead;

use anyhow::Context;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};

use crate::accounts::{self, FIRST_ADMIN};
use crate::config::{Command, Settings, UsersCommand};
use crate::store::accounts::Role;
use crate::store::Backend;

/// Runs `command` against the database named by `settings`.
pub async fn run(command: Command, settings: &Settings) -> anyhow::Result<()> {
    crate::private::create_dir(&settings.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            settings.data_dir.display()
        )
    })?;
    let backend = crate::store::open(&settings.database).await?;
    let result = act(command, settings, &backend).await;
    backend.store.close().await;
    result
}

async fn act(command: Command, settings: &Settings, backend: &Backend) -> anyhow::Result<()> {
    let store = backend.accounts.as_ref();
    let now = Utc::now();
    match command {
        Command::SigninLink { name } => {
            let name = name.unwrap_or_else(|| FIRST_ADMIN.to_owned());
            let scheme = if settings.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            let base = crate::startup::local_url(settings.listen, scheme);
            let link = accounts::signin_link(store, &name, now, &base).await?;
            println!("{}", link.expose_secret());
            eprintln!(
                "This link signs {name:?} in once, within {}; open it in a browser on this \
                 machine (or replace the address with one that reaches the server).",
                humantime::format_duration(accounts::LINK_VALID_FOR)
            );
        }
        Command::Users(UsersCommand::Add {
            name,
            role,
            password_stdin,
        }) => {
            accounts::check_name(&name)?;
            let role = Role::parse(&role).context("the role is viewer, operator or admin")?;
            let password = read_password(password_stdin, &format!("Password for {name}: "))?;
            accounts::add_user(store, &name, role, Some(password), now).await?;
            println!("added {name} ({role})");
        }
        Command::Users(UsersCommand::Passwd {
            name,
            password_stdin,
        }) => {
            if store.find_user(&name).await?.is_none() {
                anyhow::bail!("no user named {name:?}");
            }
            let password = read_password(password_stdin, &format!("New password for {name}: "))?;
            accounts::set_password(store, &name, password, None).await?;
            println!("password of {name} set; their sessions have ended");
        }
        Command::Users(UsersCommand::Remove { name }) => {
            let users = store.list_users().await?;
            let user = users
                .iter()
                .find(|u| u.name == name)
                .with_context(|| format!("no user named {name:?}"))?;
            let admins = users.iter().filter(|u| u.role == Role::Admin).count();
            anyhow::ensure!(
                user.role != Role::Admin || admins > 1,
                "{name:?} is the only admin: add another admin before removing it"
            );
            store.remove_user(&name).await?;
            println!("removed {name}");
        }
        Command::Users(UsersCommand::List) => {
            for user in store.list_users().await? {
                let password = if user.password_hash.is_some() {
                    ""
                } else {
                    "  (no password yet)"
                };
                println!("{}\t{}{password}", user.name, user.role);
            }
        }
        Command::ActionKey => {
            let signer = crate::actions::ActionSigner::load(backend.actions.as_ref(), now).await?;
            println!("{}", signer.public_key());
            eprintln!(
                "the key this database's servers sign actions with; an agent that is not \
                 enrolled pins it as server_key in its [actions] settings"
            );
        }
        Command::Keys(command) => {
            let keys = crate::agent_keys::AgentKeys::new(backend.keys.clone());
            crate::commands::execute(command, &keys).await?;
        }
    }
    Ok(())
}

/// A password from the first line of stdin, or typed twice at the
/// terminal without echo.
fn read_password(from_stdin: bool, prompt: &str) -> anyhow::Result<SecretString> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let first = rpassword::prompt_password(prompt)
            .context("cannot read the password (no terminal? use --password-stdin)")?;
        let again = rpassword::prompt_password("Again: ").context("cannot read the password")?;
        anyhow::ensure!(first == again, "the two passwords differ; nothing changed");
        first
    };
    let password = SecretString::from(password);
    accounts::check_password(&password)?;
    Ok(password)
}
