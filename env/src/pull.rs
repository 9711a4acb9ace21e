//! Pulling task images: a progress bar (or plain log lines), retries with exponential backoff
//! on transient failures, registry credentials from the Docker CLI's configuration, and
//! one-line refusals that name the image and what to do.
//!
//! A pull is atomic per image: the daemon tags the image only once every layer is in, so an
//! interrupted pull (the future dropped, the process killed) never leaves an image that
//! [`crate::image_exists`] reports; the next pull reuses the layers that did arrive.

use std::collections::HashMap;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::models::CreateImageInfo;
use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use cwm_datasets::fixtures;
use futures_util::StreamExt;

use crate::auth::{docker_config_dir, registry_auth, registry_host, RegistryAuth};
use crate::error::PullFailure;
use crate::images::{split_tag, FIXTURE_PREFIX, IMAGE_REQUEST_TIMEOUT};
use crate::EnvError;

/// Attempts a pull makes by default (the first try and three retries).
pub const DEFAULT_PULL_ATTEMPTS: u32 = 4;
/// The wait before the first retry; it doubles for each further one.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between attempts, also the cap on a registry's `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How [`pull_image`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullOptions {
    /// Plain `tracing::info!` lines (start, retries, the result) instead of a progress bar.
    /// Without a terminal on stderr the bar is never drawn, so the lines are logged then too.
    pub quiet: bool,
    /// How many times to try in all (at least 1; 0 counts as 1). Only transient failures
    /// are retried: daemon or registry 5xx, 429, timeouts, connection errors.
    pub attempts: u32,
}

impl Default for PullOptions {
    /// A progress bar and [`DEFAULT_PULL_ATTEMPTS`] attempts.
    fn default() -> Self {
        PullOptions {
            quiet: false,
            attempts: DEFAULT_PULL_ATTEMPTS,
        }
    }
}

/// What a successful [`pull_image`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PullReport {
    /// Compressed bytes downloaded in the successful attempt (layers already present locally
    /// count 0).
    pub bytes: u64,
    /// Layers of the image, whether downloaded or already present.
    pub layers: usize,
    /// Attempts made, the successful one included (1 when the first try worked).
    pub attempts: u32,
}

/// Pulls `image` from its registry (even when a local copy exists: like `docker pull`, this
/// updates the tag). Credentials for the image's registry host come from the `auths` of the
/// Docker CLI's `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`): its credential
/// helper for the host when one is set, else its `auths` entry. Transient failures are retried with exponential backoff (1 s, 2 s, 4 s,
/// ... capped at 60 s), or after the `Retry-After` a registry's message carries.
///
/// Errors: [`EnvError::ImageUnavailable`] naming the image, why (`NotFound`, `Denied`,
/// `BuiltLocally` for `cwm-bench/...` images, or `Failed` with the last cause and the
/// attempt count) and what to do; [`EnvError::DockerConfig`] for an unreadable
/// `config.json`.
pub async fn pull_image(
    docker: &Docker,
    image: &str,
    options: &PullOptions,
) -> Result<PullReport, EnvError> {
    if image.starts_with("cwm-bench/") {
        return Err(unavailable(image, PullFailure::BuiltLocally, None));
    }
    let host = registry_host(image);
    let mut auth = registry_auth(host, docker_config_dir().as_deref())?;
    auth.ask_helper(host).await;
    let plain = options.quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let attempts = options.attempts.max(1);
    let mut attempt = 1;
    loop {
        let result = pull_once(docker, image, auth.credentials.clone(), plain).await;
        let err = match result {
            Ok(report) => return Ok(finished(image, report, attempt, plain)),
            Err(err) => err,
        };
        let wait = match verdict(&err) {
            Verdict::Retry(after) if attempt < attempts => after.unwrap_or(backoff(attempt)),
            verdict => return Err(failure(image, host, &auth, verdict, err, attempt)),
        };
        tracing::warn!(
            "pulling {image} failed ({err}); attempt {} of {attempts} in {} s",
            attempt + 1,
            wait.as_secs_f32()
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// Logs a successful pull and completes its report.
fn finished(image: &str, mut report: PullReport, attempts: u32, plain: bool) -> PullReport {
    report.attempts = attempts;
    let line = format!(
        "pulled {image}: {} layers, {} downloaded, {attempts} attempt(s)",
        report.layers,
        indicatif::HumanBytes(report.bytes)
    );
    if plain {
        tracing::info!("{line}");
    } else {
        tracing::debug!("{line}");
    }
    report
}

/// The wait after failed attempt `attempt` (from 1): 1 s, 2 s, 4 s, ... up to [`MAX_BACKOFF`].
fn backoff(attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// One attempt, streaming the daemon's progress into a bar or log lines.
async fn pull_once(
    docker: &Docker,
    image: &str,
    credentials: Option<DockerCredentials>,
    plain: bool,
) -> Result<PullReport, BollardError> {
    let (repo, tag) = split_tag(image);
    let options = CreateImageOptionsBuilder::new()
        .from_image(repo)
        .tag(tag)
        .build();
    let docker = docker.clone().with_timeout(IMAGE_REQUEST_TIMEOUT);
    let mut stream = docker.create_image(Some(options), None, credentials);
    let mut progress = PullProgress::new(image, plain);
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => progress.update(&info),
            Err(err) => {
                progress.bar.abandon();
                return Err(err);
            }
        }
    }
    progress.bar.finish_and_clear();
    Ok(progress.report())
}

/// What to do about a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// No such image: never retried.
    NotFound,
    /// Access refused: never retried.
    Denied,
    /// Transient: retry, after the registry's `Retry-After` when it gave one.
    Retry(Option<Duration>),
    /// Anything else: give up.
    Fail,
}

/// Sorts a failed attempt by the daemon's status code and message (the daemon turns registry
/// failures into a 500 or 404 with the registry's text, or an error inside the stream).
fn verdict(err: &BollardError) -> Verdict {
    match err {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => verdict_of_text(message, Some(*status_code)),
        BollardError::DockerStreamError { error } => verdict_of_text(error, None),
        BollardError::RequestTimeoutError
        | BollardError::HyperResponseError { .. }
        | BollardError::HttpClientError { .. }
        | BollardError::IOError { .. } => Verdict::Retry(None),
        _ => Verdict::Fail,
    }
}

fn verdict_of_text(message: &str, status: Option<u16>) -> Verdict {
    let text = message.to_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if has(&[
        "denied",
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "forbidden",
    ]) {
        return Verdict::Denied;
    }
    if has(&["toomanyrequests", "too many requests", "429"]) {
        return Verdict::Retry(retry_after(&text));
    }
    if status == Some(404) || has(&["manifest unknown", "not found", "name unknown"]) {
        return Verdict::NotFound;
    }
    if has(&["invalid reference", "no space left", "unsupported"]) {
        return Verdict::Fail;
    }
    match status {
        Some(code) if code < 500 => Verdict::Fail,
        _ => Verdict::Retry(None),
    }
}

/// A `Retry-After: N` (seconds) in a lower-cased message, capped at [`MAX_BACKOFF`]. The
/// daemon does not pass the registry's headers on, so this only finds one a registry wrote
/// into its error text.
fn retry_after(text: &str) -> Option<Duration> {
    let rest = &text[text.find("retry-after")? + "retry-after".len()..];
    let digits: String = rest
        .trim_start_matches([':', '=', ' '])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let secs: u64 = digits.parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_BACKOFF))
}

/// The error for a pull that ended with `verdict`.
fn failure(
    image: &str,
    host: &str,
    auth: &RegistryAuth,
    verdict: Verdict,
    err: BollardError,
    attempts: u32,
) -> EnvError {
    let reason = match verdict {
        Verdict::NotFound => PullFailure::NotFound {
            detail: daemon_message(&err),
        },
        Verdict::Denied => PullFailure::Denied {
            registry: host.to_string(),
            detail: daemon_message(&err),
        },
        Verdict::Retry(_) | Verdict::Fail => PullFailure::Failed {
            attempts,
            cause: Box::new(err),
        },
    };
    unavailable(image, reason, Some(auth))
}

/// The daemon's own text of an error, without bollard's prefix.
fn daemon_message(err: &BollardError) -> String {
    match err {
        BollardError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        BollardError::DockerStreamError { error } => error.trim().to_string(),
        other => other.to_string(),
    }
}

/// [`EnvError::ImageUnavailable`] with the hint that fits `reason`.
pub(crate) fn unavailable(
    image: &str,
    reason: PullFailure,
    auth: Option<&RegistryAuth>,
) -> EnvError {
    let hint = hint(image, &reason, auth);
    EnvError::ImageUnavailable {
        image: image.to_string(),
        reason,
        hint,
    }
}

/// What the user can do about `reason`.
fn hint(image: &str, reason: &PullFailure, auth: Option<&RegistryAuth>) -> String {
    match reason {
        PullFailure::BuiltLocally if image.starts_with(FIXTURE_PREFIX) => {
            "build it with `cwm-bench images build-fixtures`".to_string()
        }
        PullFailure::BuiltLocally if image.starts_with(fixtures::BASE_IMAGE_REPO) => {
            "build it with `cwm-bench images build-base`".to_string()
        }
        PullFailure::BuiltLocally => {
            "build it again with the cwm-bench command that made it (e.g. `cwm-bench repro --repo`)"
                .to_string()
        }
        PullFailure::NotFound { .. } => "check the image name (the dataset's `image` field, \
             or --namespace / --image-template)"
            .to_string(),
        PullFailure::Denied { registry, .. } => denied_hint(registry, auth),
        PullFailure::Failed { .. } => format!(
            "check that registry {} is reachable and retry, or provide the image with `docker pull {image}`",
            registry_host(image)
        ),
    }
}

fn denied_hint(registry: &str, auth: Option<&RegistryAuth>) -> String {
    let config = docker_config_dir()
        .map(|d| d.join("config.json").display().to_string())
        .unwrap_or_else(|| "~/.docker/config.json".to_string());
    let base = format!(
        "check the image name, and log in with `docker login {registry}` (cwm-bench reads {config} and its credential helpers)"
    );
    match auth {
        Some(RegistryAuth {
            helper: Some(helper),
            helper_error: Some(error),
            ..
        }) => format!("{base}; credential helper `{helper}` failed: {error}"),
        Some(RegistryAuth {
            credentials: None,
            helper: Some(helper),
            ..
        }) => format!("{base}; credential helper `{helper}` has no credentials for {registry}"),
        _ => base,
    }
}

/// Per-layer progress of one attempt: a bar on a terminal, else nothing until the end.
struct PullProgress {
    bar: indicatif::ProgressBar,
    image: String,
    /// Layer id to (downloaded, total) bytes; (0, 0) for a layer already present.
    layers: HashMap<String, (u64, u64)>,
    /// Layers that are fully in (downloaded and extracted, or already present).
    complete: usize,
}

impl PullProgress {
    fn new(image: &str, plain: bool) -> Self {
        let bar = if plain {
            tracing::info!("pulling {image}");
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(0)
        };
        let style = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style.progress_chars("=> "));
        bar.set_message(format!("pulling {image}"));
        PullProgress {
            bar,
            image: image.to_string(),
            layers: HashMap::new(),
            complete: 0,
        }
    }

    fn update(&mut self, info: &CreateImageInfo) {
        let (Some(id), Some(status)) = (&info.id, &info.status) else {
            return;
        };
        match status.as_str() {
            "Pulling fs layer" | "Waiting" => {
                self.layers.entry(id.clone()).or_default();
            }
            "Already exists" | "Pull complete" => {
                self.layers.entry(id.clone()).or_default();
                self.complete += 1;
                tracing::debug!("{}: layer {id} {}", self.image, status.to_lowercase());
            }
            "Downloading" => self.downloading(id, info),
            _ => return,
        }
        self.redraw();
    }

    fn downloading(&mut self, id: &str, info: &CreateImageInfo) {
        let Some(detail) = &info.progress_detail else {
            return;
        };
        let current = detail.current.unwrap_or(0).max(0) as u64;
        let total = detail.total.unwrap_or(0).max(0) as u64;
        let layer = self.layers.entry(id.to_string()).or_default();
        *layer = (current.max(layer.0), total.max(layer.1));
    }

    fn redraw(&self) {
        let (done, all) = self
            .layers
            .values()
            .fold((0, 0), |(d, a), (c, t)| (d + c, a + t));
        self.bar.set_length(all);
        self.bar.set_position(done);
        self.bar.set_message(format!(
            "pulling {} ({}/{} layers)",
            self.image,
            self.complete,
            self.layers.len()
        ));
    }

    fn report(&self) -> PullReport {
        PullReport {
            bytes: self.layers.values().map(|(_, total)| total).sum(),
            layers: self.layers.len(),
            attempts: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status_code: u16, message: &str) -> BollardError {
        BollardError::DockerResponseServerError {
            status_code,
            message: message.to_string(),
        }
    }

    #[test]
    fn refusals_are_final_and_transient_failures_are_retried() {
        let cases = [
            (server(404, "manifest for x:latest not found: manifest unknown"), Verdict::NotFound),
            (server(500, "manifest for x:latest not found: manifest unknown: manifest unknown"), Verdict::NotFound),
            (server(404, "pull access denied for x, repository does not exist or may require 'docker login'"), Verdict::Denied),
            (server(500, "Head \"http://h/v2/x/manifests/latest\": no basic auth credentials"), Verdict::Denied),
            (server(500, "unauthorized: authentication required"), Verdict::Denied),
            (server(500, "received unexpected HTTP status: 503 Service Unavailable"), Verdict::Retry(None)),
            (server(500, "toomanyrequests: slow down"), Verdict::Retry(None)),
            (server(500, "toomanyrequests: retry-after: 7"), Verdict::Retry(Some(Duration::from_secs(7)))),
            (server(400, "invalid reference format"), Verdict::Fail),
            (server(500, "write /var/lib/docker/tmp/x: no space left on device"), Verdict::Fail),
            (BollardError::DockerStreamError { error: "unexpected EOF".into() }, Verdict::Retry(None)),
            (BollardError::RequestTimeoutError, Verdict::Retry(None)),
        ];
        for (err, expected) in cases {
            assert_eq!(verdict(&err), expected, "{err}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(40), MAX_BACKOFF);
        assert_eq!(retry_after("retry-after=900"), Some(MAX_BACKOFF));
        assert_eq!(retry_after("no header"), None);
    }

    #[test]
    fn hints_name_what_to_do() {
        let fixture = unavailable(
            "cwm-bench/fixture.x:latest",
            PullFailure::BuiltLocally,
            None,
        );
        assert!(
            fixture
                .to_string()
                .contains("cwm-bench images build-fixtures"),
            "{fixture}"
        );
        let denied = PullFailure::Denied {
            registry: "ghcr.io".into(),
            detail: "denied".into(),
        };
        let helper = RegistryAuth {
            credentials: None,
            helper: Some("desktop".into()),
            helper_error: Some("cannot run docker-credential-desktop".into()),
        };
        let err = unavailable("ghcr.io/a/b:1", denied, Some(&helper)).to_string();
        assert!(
            err.contains("docker login ghcr.io")
                && err.contains("`desktop` failed: cannot run docker-credential-desktop"),
            "{err}"
        );
        let failed = PullFailure::Failed {
            attempts: 4,
            cause: Box::new(BollardError::RequestTimeoutError),
        };
        let image = "swebench/sweb.eval.x86_64.a:latest";
        let err = unavailable(image, failed, None).to_string();
        assert!(
            err.contains(&format!("docker pull {image}")) && err.contains("4 attempt"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }
}
