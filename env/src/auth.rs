//! Registry credentials from the Docker CLI's configuration file, for pulls.
//!
//! The file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. As in the Docker
//! CLI, a credential helper named for the registry (`credHelpers`, else `credsStore`) is asked
//! first (`docker-credential-<name> get`, the server address on stdin, a JSON
//! `{ServerURL, Username, Secret}` on stdout; a `Username` of `<token>` makes `Secret` an
//! identity token). When it has nothing for the registry, or cannot be run, the `auths` entry
//! is used (a base64 `auth` of `user:password`, or `username`/`password`, or an
//! `identitytoken`), and a refusal names the helper's failure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use bollard::auth::DockerCredentials;
use serde::Deserialize;

use crate::EnvError;

/// The registry host Docker Hub images live on, as `docker login` records it.
const DOCKER_HUB: &str = "docker.io";
/// The key `docker login` writes for Docker Hub in `auths`.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// What the configuration says about one registry.
#[derive(Debug, Default)]
pub(crate) struct RegistryAuth {
    /// Credentials to send with the pull, when `auths` has an entry for the registry.
    pub credentials: Option<DockerCredentials>,
    /// The credential helper that keeps this registry's secret, when one is set.
    pub helper: Option<String>,
    /// Why the helper gave no credentials, when it was asked and failed (not run, timed
    /// out, exited non-zero other than "not found", or printed something unreadable).
    pub helper_error: Option<String>,
}

/// How long a credential helper may take (one that waits for a keychain to be unlocked
/// would otherwise stall every pull).
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// What a credential helper prints for `get`.
#[derive(Debug, Deserialize)]
struct HelperReply {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

impl RegistryAuth {
    /// Asks the helper, when one is set, for `host`'s credentials; they replace those from
    /// `auths`. A helper that has none leaves `auths`' credentials; one that fails also
    /// does, and records why in `helper_error` (logged as a warning).
    pub(crate) async fn ask_helper(&mut self, host: &str) {
        let Some(helper) = self.helper.clone() else {
            return;
        };
        match helper_credentials(&helper, host).await {
            Ok(Some(credentials)) => self.credentials = Some(credentials),
            Ok(None) => {}
            Err(err) => {
                tracing::warn!("credential helper docker-credential-{helper}: {err}");
                self.helper_error = Some(err);
            }
        }
    }
}

/// Runs `docker-credential-<helper> get` for `host`. `Ok(None)` when the helper has no
/// credentials for it.
async fn helper_credentials(helper: &str, host: &str) -> Result<Option<DockerCredentials>, String> {
    use tokio::io::AsyncWriteExt;
    let server = server_address(host);
    let program = format!("docker-credential-{helper}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("cannot run {program} ({e}); install it or remove it from config.json")
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .await
            .map_err(|e| format!("cannot write to {program} ({e})"))?;
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("{program} gave no answer in {} s", HELPER_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{program} failed ({e})"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = format!("{} {}", stdout.trim(), stderr.trim());
        return Err(format!(
            "{program} get exited with {} ({})",
            output.status,
            said.trim()
        ));
    }
    let reply: HelperReply = serde_json::from_str(&stdout)
        .map_err(|e| format!("{program} get printed no credentials JSON ({e})"))?;
    let token = reply.username == "<token>";
    Ok(Some(DockerCredentials {
        username: (!token).then_some(reply.username),
        password: (!token).then(|| reply.secret.clone()),
        identitytoken: token.then_some(reply.secret),
        serveraddress: Some(server),
        ..Default::default()
    }))
}

/// The server address Docker uses for `host` in `auths` keys and helper requests.
fn server_address(host: &str) -> String {
    if host == DOCKER_HUB {
        DOCKER_HUB_KEY.to_string()
    } else {
        host.to_string()
    }
}

/// The parts of `config.json` read here.
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The registry host of an image reference: the first path component when it looks like a
/// host (has a `.` or a `:`, or is `localhost`), else Docker Hub (`docker.io`).
pub(crate) fn registry_host(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => DOCKER_HUB,
    }
}

/// The Docker CLI's configuration directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub(crate) fn docker_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker"))
}

/// Credentials for `host` from `<config_dir>/config.json`. A missing file (or no directory)
/// means no credentials; a file that cannot be read or parsed is an error naming it.
pub(crate) fn registry_auth(
    host: &str,
    config_dir: Option<&Path>,
) -> Result<RegistryAuth, EnvError> {
    let Some(dir) = config_dir else {
        return Ok(RegistryAuth::default());
    };
    let path = dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(RegistryAuth::default())
        }
        Err(err) => return Err(config_error(&path, err.to_string())),
    };
    let config: ConfigFile =
        serde_json::from_str(&text).map_err(|e| config_error(&path, e.to_string()))?;
    auth_from_config(&config, host).map_err(|detail| config_error(&path, detail))
}

fn config_error(path: &Path, detail: String) -> EnvError {
    EnvError::DockerConfig {
        path: path.to_path_buf(),
        detail,
    }
}

/// Looks `host` up in a parsed configuration. Errors are about the entry's content.
fn auth_from_config(config: &ConfigFile, host: &str) -> Result<RegistryAuth, String> {
    let helper = config
        .cred_helpers
        .get(host)
        .or(config.creds_store.as_ref())
        .cloned();
    let entry = config
        .auths
        .iter()
        .find(|(key, _)| normalise_key(key) == host);
    let credentials = match entry {
        Some((key, entry)) => Some(entry_credentials(key, entry, host)?),
        None => None,
    };
    Ok(RegistryAuth {
        credentials,
        helper,
        helper_error: None,
    })
}

/// An `auths` key as a bare host: no scheme, no path; Docker Hub's aliases become `docker.io`.
fn normalise_key(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB,
        other => other,
    }
}

/// The credentials of one `auths` entry; `auth` (base64 `user:password`) wins over
/// `username`/`password`, as in the Docker CLI.
fn entry_credentials(
    key: &str,
    entry: &AuthEntry,
    host: &str,
) -> Result<DockerCredentials, String> {
    let (username, password) = match entry.auth.as_deref().filter(|a| !a.is_empty()) {
        Some(auth) => decode_auth(auth).map_err(|e| format!("auths.\"{key}\".auth: {e}"))?,
        None => (entry.username.clone(), entry.password.clone()),
    };
    let serveraddress = server_address(host);
    Ok(DockerCredentials {
        username,
        password,
        identitytoken: entry.identitytoken.clone().filter(|t| !t.is_empty()),
        serveraddress: Some(serveraddress),
        ..Default::default()
    })
}

/// Splits a base64 `user:password`.
fn decode_auth(auth: &str) -> Result<(Option<String>, Option<String>), String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| format!("not base64 ({e})"))?;
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 once decoded".to_string())?;
    let (user, password) = text
        .split_once(':')
        .ok_or_else(|| "does not decode to user:password".to_string())?;
    Ok((Some(user.to_string()), Some(password.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> ConfigFile {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn hosts_are_the_first_component_when_it_looks_like_one() {
        assert_eq!(
            registry_host("swebench/sweb.eval.x86_64.a:latest"),
            "docker.io"
        );
        assert_eq!(registry_host("ubuntu"), "docker.io");
        assert_eq!(registry_host("localhost:5000/ns/img:1"), "localhost:5000");
        assert_eq!(registry_host("localhost/img"), "localhost");
        assert_eq!(registry_host("ghcr.io/org/img"), "ghcr.io");
    }

    #[test]
    fn base64_auth_and_plain_fields_are_read() {
        // "alice:s3:cret" (a colon in the password stays in the password)
        let cfg = config(
            r#"{"auths": {"https://index.docker.io/v1/": {"auth": "YWxpY2U6czM6Y3JldA=="},
                          "http://localhost:5000/v2/": {"username": "bob", "password": "pw"}}}"#,
        );
        let hub = auth_from_config(&cfg, "docker.io")
            .unwrap()
            .credentials
            .unwrap();
        assert_eq!(hub.username.as_deref(), Some("alice"));
        assert_eq!(hub.password.as_deref(), Some("s3:cret"));
        assert_eq!(hub.serveraddress.as_deref(), Some(DOCKER_HUB_KEY));
        let local = auth_from_config(&cfg, "localhost:5000")
            .unwrap()
            .credentials
            .unwrap();
        assert_eq!(local.username.as_deref(), Some("bob"));
        assert_eq!(local.serveraddress.as_deref(), Some("localhost:5000"));
        assert!(auth_from_config(&cfg, "ghcr.io")
            .unwrap()
            .credentials
            .is_none());
    }

    #[test]
    fn helpers_are_named_and_bad_entries_are_errors() {
        let cfg = config(r#"{"credsStore": "desktop", "credHelpers": {"gcr.io": "gcloud"}}"#);
        assert_eq!(
            auth_from_config(&cfg, "gcr.io").unwrap().helper.as_deref(),
            Some("gcloud")
        );
        assert_eq!(
            auth_from_config(&cfg, "docker.io")
                .unwrap()
                .helper
                .as_deref(),
            Some("desktop")
        );
        let bad = config(r#"{"auths": {"ghcr.io": {"auth": "!!"}}}"#);
        let err = auth_from_config(&bad, "ghcr.io").unwrap_err();
        assert!(
            err.contains("auths.\"ghcr.io\".auth") && err.contains("base64"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_is_no_credentials_and_a_broken_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let none = registry_auth("docker.io", Some(dir.path())).unwrap();
        assert!(none.credentials.is_none() && none.helper.is_none());
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let err = registry_auth("docker.io", Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.json") && !err.contains('\n'), "{err}");
    }
}
