//! Registry credentials on the client side, in docker's `config.json` format: berthctl's
//! own file (`$BERTH_CONFIG/config.json`, else `~/.config/berth/config.json`, mode 0600,
//! replaced atomically) is read and written; docker's (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`) is read as a fallback. Entries live under `auths.<key>` with
//! `auth` = base64 of `user:password` and optionally `identitytoken`; docker.io's key is
//! `https://index.docker.io/v1/`, as docker writes it. Credential helpers
//! (`credsStore`, `credHelpers`) are not run.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

/// The key docker uses for docker.io in `auths`.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Credentials for one registry as stored.
#[derive(Clone, PartialEq, Eq)]
pub enum StoredCredentials {
    Basic {
        username: String,
        password: String,
    },
    /// An identity (refresh) token; the user name is kept for display.
    IdentityToken {
        username: String,
        token: String,
    },
}

impl std::fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredCredentials::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
            StoredCredentials::IdentityToken { username, .. } => {
                write!(
                    f,
                    "IdentityToken {{ username: {username:?}, token: <redacted> }}"
                )
            }
        }
    }
}

impl StoredCredentials {
    pub fn username(&self) -> &str {
        match self {
            StoredCredentials::Basic { username, .. }
            | StoredCredentials::IdentityToken { username, .. } => username,
        }
    }
}

/// Why credentials could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("read credentials file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credentials file {path} is not valid JSON: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("credentials file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("write credentials file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot find the home directory: set HOME or BERTH_CONFIG")]
    NoHome,
}

type Result<T, E = CredentialsError> = std::result::Result<T, E>;

/// The credential files of the current user.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
    docker_path: Option<PathBuf>,
}

impl CredentialStore {
    /// The files named by `BERTH_CONFIG`, `DOCKER_CONFIG` and `HOME`.
    pub fn from_env() -> Result<CredentialStore> {
        Self::from_vars(|k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }

    /// Like [`from_env`](Self::from_env) with the variables looked up by `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<PathBuf>) -> Result<CredentialStore> {
        let home = var("HOME");
        let path = match (var("BERTH_CONFIG"), &home) {
            (Some(dir), _) => dir.join("config.json"),
            (None, Some(h)) => h.join(".config/berth/config.json"),
            (None, None) => return Err(CredentialsError::NoHome),
        };
        let docker_path = match (var("DOCKER_CONFIG"), &home) {
            (Some(dir), _) => Some(dir.join("config.json")),
            (None, Some(h)) => Some(h.join(".docker/config.json")),
            (None, None) => None,
        };
        Ok(CredentialStore { path, docker_path })
    }

    /// berthctl's own file, the one login and logout change.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credentials for `registry` (a host as in references, `docker.io` for Docker
    /// Hub): berthctl's file first, then docker's. None when neither has an entry.
    pub fn get(&self, registry: &str) -> Result<Option<StoredCredentials>> {
        let want = normalize_registry(registry);
        for path in std::iter::once(&self.path).chain(self.docker_path.as_ref()) {
            let Some(doc) = read_doc(path)? else { continue };
            let Some(auths) = doc.get("auths").and_then(Value::as_object) else {
                continue;
            };
            // An exact key first, then any key that names the same host.
            let key = server_key(&want);
            let entry = auths.get(&key).or_else(|| {
                auths
                    .iter()
                    .find(|(k, _)| normalize_registry(k) == want)
                    .map(|(_, v)| v)
            });
            if let Some(entry) = entry
                && let Some(c) = decode_entry(path, &key, entry)?
            {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Stores credentials for `registry` in berthctl's file, keeping its other content.
    pub fn store(&self, registry: &str, creds: &StoredCredentials) -> Result<()> {
        let mut doc = read_doc(&self.path)?.unwrap_or_else(|| Value::Object(Map::new()));
        let key = server_key(&normalize_registry(registry));
        let obj = doc
            .as_object_mut()
            .ok_or_else(|| CredentialsError::Invalid {
                path: self.path.clone(),
                reason: "the top level is not a JSON object".into(),
            })?;
        let auths = obj
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(|| CredentialsError::Invalid {
                path: self.path.clone(),
                reason: "\"auths\" is not a JSON object".into(),
            })?;
        // Drop other spellings of the same registry so the new entry is the one read.
        let want = normalize_registry(registry);
        auths.retain(|k, _| normalize_registry(k) != want);
        let mut entry = Map::new();
        match creds {
            StoredCredentials::Basic { username, password } => {
                entry.insert(
                    "auth".into(),
                    Value::String(STANDARD.encode(format!("{username}:{password}"))),
                );
            }
            StoredCredentials::IdentityToken { username, token } => {
                entry.insert(
                    "auth".into(),
                    Value::String(STANDARD.encode(format!("{username}:"))),
                );
                entry.insert("identitytoken".into(), Value::String(token.clone()));
            }
        }
        auths.insert(key, Value::Object(entry));
        write_atomic(&self.path, &doc)
    }

    /// Removes the credentials for `registry` from berthctl's file. Returns whether
    /// there were any. docker's own file is never changed.
    pub fn erase(&self, registry: &str) -> Result<bool> {
        let Some(mut doc) = read_doc(&self.path)? else {
            return Ok(false);
        };
        let want = normalize_registry(registry);
        let removed = match doc.get_mut("auths").and_then(Value::as_object_mut) {
            Some(auths) => {
                let before = auths.len();
                auths.retain(|k, _| normalize_registry(k) != want);
                before != auths.len()
            }
            None => false,
        };
        if removed {
            write_atomic(&self.path, &doc)?;
        }
        Ok(removed)
    }
}

/// The registry host a login argument or `auths` key names: scheme and path dropped,
/// lower-cased, Docker Hub's spellings made `docker.io`; empty means `docker.io`.
pub fn normalize_registry(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("").to_ascii_lowercase();
    match host.as_str() {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        _ => host,
    }
}

/// The `auths` key docker uses for a registry host.
pub fn server_key(registry: &str) -> String {
    if registry == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

fn read_doc(path: &Path) -> Result<Option<Value>> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CredentialsError::Read {
                path: path.into(),
                source,
            });
        }
    };
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|source| CredentialsError::Parse {
            path: path.into(),
            source,
        })
}

fn decode_entry(path: &Path, key: &str, entry: &Value) -> Result<Option<StoredCredentials>> {
    let invalid = |reason: String| CredentialsError::Invalid {
        path: path.into(),
        reason: format!("auths.{key:?}: {reason}"),
    };
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (mut username, mut password) = (String::new(), String::new());
    if let Some(auth) = field("auth") {
        let raw = STANDARD
            .decode(auth.trim())
            .map_err(|e| invalid(format!("\"auth\" is not base64: {e}")))?;
        let text = String::from_utf8(raw).map_err(|_| invalid("\"auth\" is not UTF-8".into()))?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| invalid("\"auth\" is not user:password".into()))?;
        username = u.to_string();
        password = p.to_string();
    } else {
        if let Some(u) = field("username") {
            username = u.to_string();
        }
        if let Some(p) = field("password") {
            password = p.to_string();
        }
    }
    if let Some(token) = field("identitytoken") {
        return Ok(Some(StoredCredentials::IdentityToken {
            username,
            token: token.to_string(),
        }));
    }
    if username.is_empty() && password.is_empty() {
        return Ok(None);
    }
    Ok(Some(StoredCredentials::Basic { username, password }))
}

/// Writes `doc` to `path` with mode 0600 through a temporary file and a rename.
fn write_atomic(path: &Path, doc: &Value) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let werr = |source| CredentialsError::Write {
        path: path.into(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(werr)?;
    let mut text = serde_json::to_vec_pretty(doc).map_err(|e| werr(e.into()))?;
    text.push(b'\n');
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("config.json"),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn store_in(home: &Path) -> CredentialStore {
        let home = home.to_path_buf();
        CredentialStore::from_vars(move |k| (k == "HOME").then(|| home.clone())).unwrap()
    }

    #[test]
    fn paths_follow_the_environment() {
        let s = CredentialStore::from_vars(|k| match k {
            "HOME" => Some("/home/u".into()),
            "BERTH_CONFIG" => Some("/etc/b".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.path(), Path::new("/etc/b/config.json"));
        assert_eq!(
            s.docker_path.as_deref(),
            Some(Path::new("/home/u/.docker/config.json"))
        );
        let s = store_in(Path::new("/home/u"));
        assert_eq!(s.path(), Path::new("/home/u/.config/berth/config.json"));
        assert!(matches!(
            CredentialStore::from_vars(|_| None),
            Err(CredentialsError::NoHome)
        ));
    }

    #[test]
    fn store_get_erase_round_trip() {
        let home = tempfile::tempdir().unwrap();
        let s = store_in(home.path());
        assert_eq!(s.get("docker.io").unwrap(), None);
        let alice = StoredCredentials::Basic {
            username: "alice".into(),
            password: "p:w".into(),
        };
        s.store("docker.io", &alice).unwrap();
        s.store(
            "localhost:5000",
            &StoredCredentials::IdentityToken {
                username: "bob".into(),
                token: "tok".into(),
            },
        )
        .unwrap();
        let mode = std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let doc: Value = serde_json::from_slice(&std::fs::read(s.path()).unwrap()).unwrap();
        assert_eq!(
            doc["auths"][DOCKER_HUB_KEY]["auth"],
            Value::String(STANDARD.encode("alice:p:w"))
        );
        assert_eq!(s.get("docker.io").unwrap(), Some(alice.clone()));
        assert_eq!(s.get("index.docker.io").unwrap(), Some(alice.clone()));
        assert_eq!(s.get("https://index.docker.io/v1/").unwrap(), Some(alice));
        assert_eq!(s.get("localhost:5000").unwrap().unwrap().username(), "bob");
        assert!(s.erase("docker.io").unwrap());
        assert!(!s.erase("docker.io").unwrap());
        assert_eq!(s.get("docker.io").unwrap(), None);
        assert!(s.get("localhost:5000").unwrap().is_some());
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(s.path().parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.json")]);
    }

    #[test]
    fn keeps_other_settings_and_reads_dockers_file() {
        let home = tempfile::tempdir().unwrap();
        let s = store_in(home.path());
        std::fs::create_dir_all(s.path().parent().unwrap()).unwrap();
        std::fs::write(
            s.path(),
            r#"{"psFormat":"table","auths":{"http://reg.example:5000/v2/":{"auth":"b2xkOm9sZA=="}}}"#,
        )
        .unwrap();
        s.store(
            "reg.example:5000",
            &StoredCredentials::Basic {
                username: "new".into(),
                password: "new".into(),
            },
        )
        .unwrap();
        let doc: Value = serde_json::from_slice(&std::fs::read(s.path()).unwrap()).unwrap();
        assert_eq!(doc["psFormat"], "table");
        assert_eq!(doc["auths"].as_object().unwrap().len(), 1);
        assert_eq!(
            s.get("reg.example:5000").unwrap().unwrap().username(),
            "new"
        );

        let docker = home.path().join(".docker");
        std::fs::create_dir_all(&docker).unwrap();
        std::fs::write(
            docker.join("config.json"),
            format!(
                r#"{{"auths":{{"{DOCKER_HUB_KEY}":{{"auth":"{}"}},"quay.io":{{"auth":"","identitytoken":"refresh"}}}},"credsStore":"desktop"}}"#,
                STANDARD.encode("dock:er")
            ),
        )
        .unwrap();
        assert_eq!(
            s.get("docker.io").unwrap(),
            Some(StoredCredentials::Basic {
                username: "dock".into(),
                password: "er".into()
            })
        );
        assert_eq!(
            s.get("quay.io").unwrap(),
            Some(StoredCredentials::IdentityToken {
                username: String::new(),
                token: "refresh".into()
            })
        );
        // berthctl's own entry wins over docker's.
        s.store(
            "docker.io",
            &StoredCredentials::Basic {
                username: "mine".into(),
                password: "x".into(),
            },
        )
        .unwrap();
        assert_eq!(s.get("docker.io").unwrap().unwrap().username(), "mine");
        // logout never touches docker's file.
        assert!(s.erase("docker.io").unwrap());
        assert_eq!(s.get("docker.io").unwrap().unwrap().username(), "dock");
    }

    #[test]
    fn broken_files_are_named() {
        let home = tempfile::tempdir().unwrap();
        let s = store_in(home.path());
        std::fs::create_dir_all(s.path().parent().unwrap()).unwrap();
        std::fs::write(s.path(), "{not json").unwrap();
        let e = s.get("docker.io").unwrap_err().to_string();
        assert!(
            e.contains("config.json") && e.contains("not valid JSON"),
            "{e}"
        );
        std::fs::write(s.path(), r#"{"auths":{"h.io":{"auth":"!!"}}}"#).unwrap();
        let e = s.get("h.io").unwrap_err().to_string();
        assert!(e.contains("not base64"), "{e}");
    }

    #[test]
    fn registry_names_normalise() {
        for (input, want) in [
            ("", "docker.io"),
            ("docker.io", "docker.io"),
            ("https://index.docker.io/v1/", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("Localhost:5000", "localhost:5000"),
            ("http://reg.example:5000/v2/", "reg.example:5000"),
        ] {
            assert_eq!(normalize_registry(input), want, "{input}");
        }
        assert_eq!(server_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_key("quay.io"), "quay.io");
    }
}
