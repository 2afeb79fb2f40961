//! `berthctl search`, `login` and `logout`: registry commands. Credentials are checked
//! by berthd against the registry and stored here, in docker's config.json format (see
//! `credentials.rs`).

use std::io::{BufRead, IsTerminal, Read, Write};

use berth_api::berth::v1::{LoginRequest, RegistryAuth, SearchImagesRequest};
use serde_json::json;

use super::image::list::print_rows;
use super::image::{auth_for, client};
use crate::credentials::{CredentialStore, StoredCredentials, normalize_registry, server_key};
use crate::global::{Format, GlobalOptions};

#[derive(clap::Args)]
pub struct SearchArgs {
    /// Most results shown.
    #[arg(long, default_value_t = 25)]
    limit: i32,
    /// Do not truncate the output.
    #[arg(long)]
    no_trunc: bool,
    /// TERM, or HOST/TERM to search another registry's catalog.
    term: String,
}

#[derive(clap::Args)]
pub struct LoginArgs {
    /// User name.
    #[arg(short, long)]
    username: Option<String>,
    /// Password (visible to other users of this machine; prefer --password-stdin).
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    password_stdin: bool,
    /// The registry host; docker.io by default.
    server: Option<String>,
}

#[derive(clap::Args)]
pub struct LogoutArgs {
    /// The registry host; docker.io by default.
    server: Option<String>,
}

pub async fn search(g: &GlobalOptions, a: SearchArgs) -> anyhow::Result<i32> {
    if let Format::Other(f) = &g.format {
        anyhow::bail!("--format {f:?}: use table, json or a template");
    }
    let registry = super::image::registry_of(&format!("{}/x", a.term));
    let registry = if a.term.starts_with(&format!("{registry}/")) {
        registry
    } else {
        "docker.io".into()
    };
    let results = client(g)
        .await?
        .search(SearchImagesRequest {
            term: a.term,
            auth: auth_for(&registry)?,
            limit: a.limit,
        })
        .await?
        .into_inner()
        .results;
    let rows: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            json!({
                "Name": r.name,
                "Description": if a.no_trunc { r.description.clone() } else { r.description.chars().take(45).collect() },
                "StarCount": r.stars.to_string(),
                "IsOfficial": if r.official { "[OK]" } else { "" },
            })
        })
        .collect();
    let header = |f: &str| match f {
        "StarCount" => "STARS".to_string(),
        "IsOfficial" => "OFFICIAL".to_string(),
        other => other.to_uppercase(),
    };
    print_rows(
        &g.format,
        &rows,
        &["Name", "Description", "StarCount", "IsOfficial"],
        &header,
    )?;
    Ok(0)
}

/// Reads a line from the terminal without echoing it.
fn read_secret(prompt: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    print!("{prompt}");
    std::io::stdout().flush()?;
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, t);
    }
    println!();
    r?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_line(prompt: &str) -> anyhow::Result<String> {
    print!("{prompt}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn login(g: &GlobalOptions, a: LoginArgs) -> anyhow::Result<i32> {
    let server = normalize_registry(a.server.as_deref().unwrap_or(""));
    if a.password.is_some() && a.password_stdin {
        anyhow::bail!("--password and --password-stdin are mutually exclusive");
    }
    if a.password_stdin && a.username.is_none() {
        anyhow::bail!("must provide --username with --password-stdin");
    }
    let store = CredentialStore::from_env()?;
    let username = match a.username {
        Some(u) => u,
        None => {
            let known = store
                .get(&server)
                .ok()
                .flatten()
                .map(|c| c.username().to_string())
                .filter(|u| !u.is_empty());
            let prompt = match &known {
                Some(u) => format!("Username ({u}): "),
                None => "Username: ".to_string(),
            };
            let u = read_line(&prompt)?;
            match (u.is_empty(), known) {
                (true, Some(k)) => k,
                (true, None) => anyhow::bail!("Error: Non-null Username Required"),
                (false, _) => u,
            }
        }
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s.trim_end_matches(['\r', '\n']).to_string()
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else if std::io::stdin().is_terminal() {
        read_secret("Password: ")?
    } else {
        read_line("Password: ")?
    };
    if password.is_empty() {
        anyhow::bail!("Error: Password Required");
    }
    let r = client(g)
        .await?
        .login(LoginRequest {
            server: server.clone(),
            auth: Some(RegistryAuth {
                username: username.clone(),
                password: password.clone(),
                identity_token: String::new(),
            }),
        })
        .await?
        .into_inner();
    let creds = if r.identity_token.is_empty() {
        StoredCredentials::Basic { username, password }
    } else {
        StoredCredentials::IdentityToken {
            username,
            token: r.identity_token,
        }
    };
    store.store(&server, &creds)?;
    eprintln!(
        "WARNING! Your password will be stored unencrypted in {}.",
        store.path().display()
    );
    println!("{}", r.status);
    Ok(0)
}

pub async fn logout(_g: &GlobalOptions, a: LogoutArgs) -> anyhow::Result<i32> {
    let server = normalize_registry(a.server.as_deref().unwrap_or(""));
    let store = CredentialStore::from_env()?;
    if store.erase(&server)? {
        println!("Removing login credentials for {}", server_key(&server));
    } else {
        println!("Not logged in to {}", server_key(&server));
    }
    Ok(0)
}
