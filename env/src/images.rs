//! Images: whether a task image is present (pulling it is `pull.rs`), and building the offline
//! base and fixture images.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::query_parameters::{CommitContainerOptionsBuilder, CreateImageOptionsBuilder};
use bollard::Docker;
use cwm_datasets::fixtures;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::container::{INSTANCE_LABEL, RUN_LABEL};
use crate::error::is_not_found;
use crate::hygiene::last_lines;
use crate::lock::FileLock;
use crate::pull::{pull_image, PullOptions};
use crate::{Container, ContainerConfig, EnvError, CONDA_ACTIVATE, DEFAULT_PATH, REPO_ROOT};

/// Label on fixture images: a digest of everything they were built from.
pub const INPUTS_LABEL: &str = "cwm-bench.inputs";
/// Repository prefix of fixture images: `cwm-bench/fixture.<name>:latest`.
pub(crate) const FIXTURE_PREFIX: &str = "cwm-bench/fixture.";
/// Bumped whenever the way fixture images are built changes, so existing ones are rebuilt.
const FIXTURE_RECIPE: &str = "fixture-recipe-2";
/// One lock for all image builds on this machine.
const LOCK_NAME: &str = "cwm-bench-images.lock";
/// Importing a few hundred MB or committing can exceed bollard's default 2-minute timeout.
pub(crate) const IMAGE_REQUEST_TIMEOUT: Duration = Duration::from_secs(1800);
/// The Dockerfile instructions applied to the imported root filesystem: Debian's usual
/// PATH ([`DEFAULT_PATH`]; `docker import` sets none), a UTF-8 locale, bash as the command.
fn image_changes() -> Vec<String> {
    vec![
        format!("ENV PATH={DEFAULT_PATH}"),
        "ENV LANG=C.UTF-8".to_string(),
        "CMD [\"/bin/bash\"]".to_string(),
    ]
}

/// Whether `image` exists locally.
pub async fn image_exists(docker: &Docker, image: &str) -> Result<bool, EnvError> {
    match docker.inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(err) if is_not_found(&err) => Ok(false),
        Err(cause) => Err(EnvError::Docker {
            action: format!("looking up image {image}"),
            cause,
        }),
    }
}

/// Makes sure `image` is available: the local tag, else [`pull_image`] with the default
/// [`PullOptions`] (a progress bar, retries), else its one-line error naming the image and
/// what to do.
pub async fn ensure_image(docker: &Docker, image: &str) -> Result<(), EnvError> {
    if image_exists(docker, image).await? {
        return Ok(());
    }
    pull_image(docker, image, &PullOptions::default())
        .await
        .map(|_| ())
}

/// `repo:tag` split at the tag's colon (not a registry port's); the tag defaults to latest.
/// A digest reference `repo@sha256:...` splits at the `@`, as the Docker CLI sends it.
pub(crate) fn split_tag(image: &str) -> (&str, &str) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo, digest);
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], &image[name_start + i + 1..]),
        None => (image, "latest"),
    }
}

/// Builds the fixture base image (debootstrap minbase plus the conda shim) unless its
/// recipe-derived tag exists. Returns the tag.
pub async fn build_base_image(docker: &Docker) -> Result<String, EnvError> {
    let image = fixtures::base_image();
    let _lock = FileLock::acquire(LOCK_NAME).await?;
    if image_exists(docker, &image).await? {
        return Ok(image);
    }
    let debootstrap = find_debootstrap().ok_or(EnvError::DebootstrapMissing)?;
    let workdir = tempfile::Builder::new()
        .prefix("cwm-bench-rootfs-")
        .tempdir()
        .map_err(EnvError::io(
            "creating a temporary directory for the root filesystem",
        ))?;
    let rootfs = workdir.path().join("rootfs");
    run_debootstrap(&debootstrap, &rootfs).await?;
    finish_rootfs(&rootfs)?;
    import_rootfs(docker, &rootfs, &image).await?;
    Ok(image)
}

/// debootstrap lives in /usr/sbin, which a non-root PATH may lack.
fn find_debootstrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("debootstrap"))
        .find(|candidate| candidate.is_file())
}

async fn run_debootstrap(debootstrap: &Path, rootfs: &Path) -> Result<(), EnvError> {
    let log_path = std::env::temp_dir().join("cwm-bench-debootstrap.log");
    let log = std::fs::File::create(&log_path)
        .map_err(EnvError::io(format!("creating {}", log_path.display())))?;
    let log_err = log
        .try_clone()
        .map_err(EnvError::io(format!("opening {}", log_path.display())))?;
    let status = tokio::process::Command::new(debootstrap)
        .arg("--variant=minbase")
        .arg(format!("--include={}", fixtures::BASE_PACKAGES.join(",")))
        .arg(fixtures::BASE_SUITE)
        .arg(rootfs)
        .arg(fixtures::BASE_MIRROR)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .status()
        .await
        .map_err(EnvError::io(format!("running {}", debootstrap.display())))?;
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    Err(EnvError::CommandFailed {
        what: format!("debootstrap ({status})"),
        detail: format!(
            "{} (full log: {}; it must run as root and reach {})",
            last_lines(&text, 3),
            log_path.display(),
            fixtures::BASE_MIRROR
        ),
    })
}

/// Adds the conda shim and drops the downloaded .deb files (about 100 MB).
fn finish_rootfs(rootfs: &Path) -> Result<(), EnvError> {
    let shim = rootfs.join(CONDA_ACTIVATE.trim_start_matches('/'));
    if let Some(shim_dir) = shim.parent() {
        std::fs::create_dir_all(shim_dir)
            .map_err(EnvError::io(format!("creating {}", shim_dir.display())))?;
    }
    std::fs::write(&shim, fixtures::CONDA_SHIM)
        .map_err(EnvError::io(format!("writing {}", shim.display())))?;
    let archives = rootfs.join("var/cache/apt/archives");
    if let Ok(entries) = std::fs::read_dir(&archives) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|ext| ext == "deb") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// Streams `tar` of the root filesystem into `docker import`, never holding it in memory.
async fn import_rootfs(docker: &Docker, rootfs: &Path, image: &str) -> Result<(), EnvError> {
    let mut tar = tokio::process::Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(rootfs)
        .args(["-cf", "-", "."])
        .stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(EnvError::io("running tar over the root filesystem"))?;
    let stdout = tar.stdout.take().ok_or_else(|| EnvError::CommandFailed {
        what: "tar".into(),
        detail: "no stdout pipe".into(),
    })?;
    let (repo, tag) = split_tag(image);
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .changes(image_changes())
        .build();
    let body = bollard::body_try_stream(read_chunks(stdout));
    let docker = docker.clone().with_timeout(IMAGE_REQUEST_TIMEOUT);
    let mut progress = docker.create_image(Some(options), Some(body), None);
    while let Some(item) = progress.next().await {
        item.map_err(EnvError::docker(format!(
            "importing the root filesystem as {image}"
        )))?;
    }
    let status = tar.wait().await.map_err(EnvError::io("waiting for tar"))?;
    if !status.success() {
        return Err(EnvError::CommandFailed {
            what: "tar of the root filesystem".into(),
            detail: status.to_string(),
        });
    }
    Ok(())
}

/// An async reader as a stream of chunks.
fn read_chunks<R>(reader: R) -> impl Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    futures_util::stream::unfold(Some(reader), |state| async move {
        let mut reader = state?;
        let mut buf = vec![0u8; 256 * 1024];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(reader)))
            }
            Err(err) => Some((Err(err), None)),
        }
    })
}

/// One fixture image and whether this call built it (false: it was up to date).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureImage {
    pub image: String,
    pub built: bool,
}

/// Builds every fixture image that is missing or out of date (base image first).
/// Returns all fixture image tags.
pub async fn build_fixture_images(docker: &Docker) -> Result<Vec<String>, EnvError> {
    let built = build_fixture_images_report(docker).await?;
    Ok(built.into_iter().map(|f| f.image).collect())
}

/// Like [`build_fixture_images`], saying which images were (re)built.
pub async fn build_fixture_images_report(docker: &Docker) -> Result<Vec<FixtureImage>, EnvError> {
    let base = build_base_image(docker).await?;
    let base_id = image_id(docker, &base).await?;
    let path = fixtures::fixtures_jsonl();
    let instances = cwm_datasets::load(&path).map_err(|e| EnvError::FixtureDataset {
        path,
        source: Box::new(e),
    })?;
    let _lock = FileLock::acquire(LOCK_NAME).await?;
    let mut images = Vec::new();
    for instance in &instances {
        let fixture = Fixture::from_instance(instance)?;
        let inputs = fixture.inputs_digest(&base_id)?;
        let current = image_label(docker, &fixture.image, INPUTS_LABEL).await?;
        let built = current.as_deref() != Some(inputs.as_str());
        if built {
            fixture.rebuild(docker, &base, &inputs).await?;
        }
        images.push(FixtureImage {
            image: fixture.image,
            built,
        });
    }
    Ok(images)
}

async fn image_id(docker: &Docker, image: &str) -> Result<String, EnvError> {
    let inspect = docker
        .inspect_image(image)
        .await
        .map_err(EnvError::docker(format!("inspecting image {image}")))?;
    Ok(inspect.id.unwrap_or_default())
}

/// The value of `label` on a local image; None when the image or the label is missing.
async fn image_label(
    docker: &Docker,
    image: &str,
    label: &str,
) -> Result<Option<String>, EnvError> {
    match docker.inspect_image(image).await {
        Ok(inspect) => Ok(inspect
            .config
            .and_then(|c| c.labels)
            .and_then(|labels| labels.get(label).cloned())),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(cause) => Err(EnvError::Docker {
            action: format!("inspecting image {image}"),
            cause,
        }),
    }
}

/// A fixture task as an image recipe.
struct Fixture {
    name: String,
    image: String,
    base_commit: String,
    dir: PathBuf,
}

impl Fixture {
    fn from_instance(instance: &cwm_datasets::Instance) -> Result<Fixture, EnvError> {
        let image = instance.image_name();
        let name = image
            .strip_prefix(FIXTURE_PREFIX)
            .and_then(|rest| rest.strip_suffix(":latest"))
            .ok_or_else(|| EnvError::FixtureImageName {
                instance_id: instance.instance_id.clone(),
                image: image.clone(),
            })?
            .to_string();
        let dir = fixtures::fixtures_dir().join(&name);
        Ok(Fixture {
            name,
            image,
            base_commit: instance.base_commit.clone(),
            dir,
        })
    }

    /// Every file that goes into the image, as (path in the container relative to `/`, host
    /// path).
    fn inputs(&self) -> Result<Vec<(String, PathBuf)>, EnvError> {
        let repo = self.dir.join("repo");
        let mut files = Vec::new();
        collect_files(&repo, &repo, &mut files)?;
        let root = REPO_ROOT.trim_start_matches('/');
        let mut inputs: Vec<(String, PathBuf)> = files
            .into_iter()
            .map(|(rel, host)| (format!("{root}/{rel}"), host))
            .collect();
        for patch in ["gold.patch", "test.patch"] {
            inputs.push((format!("{root}/.fixture/{patch}"), self.dir.join(patch)));
        }
        let init = fixtures::fixtures_dir().join("init_repo.sh");
        inputs.push(("tmp/init_repo.sh".to_string(), init));
        Ok(inputs)
    }

    fn inputs_digest(&self, base_id: &str) -> Result<String, EnvError> {
        let mut hasher = Sha256::new();
        for part in [FIXTURE_RECIPE, base_id, &self.name, &self.base_commit] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        for (target, host) in self.inputs()? {
            let content = std::fs::read(&host)
                .map_err(EnvError::io(format!("reading {}", host.display())))?;
            hasher.update((target.len() as u64).to_le_bytes());
            hasher.update(target.as_bytes());
            hasher.update((content.len() as u64).to_le_bytes());
            hasher.update(&content);
        }
        Ok(hex::encode(hasher.finalize()))
    }

    /// Builds the image and deletes the one it replaces, so rebuilds leave no dangling images.
    async fn rebuild(&self, docker: &Docker, base: &str, inputs: &str) -> Result<(), EnvError> {
        let previous = docker
            .inspect_image(&self.image)
            .await
            .ok()
            .and_then(|i| i.id);
        self.build(docker, base, inputs).await?;
        if let Some(previous) = previous {
            // Best effort: a container may still use it; then it stays until `docker image prune`.
            let options = bollard::query_parameters::RemoveImageOptionsBuilder::new().build();
            let _ = docker.remove_image(&previous, Some(options), None).await;
        }
        Ok(())
    }

    /// Builds in a throwaway container, which is removed whatever happens.
    async fn build(&self, docker: &Docker, base: &str, inputs: &str) -> Result<(), EnvError> {
        let run_id = format!("images-{}", std::process::id());
        let config = ContainerConfig::new(base, run_id, format!("fixture-{}", self.name));
        let container = Container::start(docker, &config).await?;
        let result = self.build_in(&container, inputs).await;
        let removed = container.remove().await;
        result.and(removed)
    }

    async fn build_in(&self, container: &Container, inputs: &str) -> Result<(), EnvError> {
        let archive = self.input_tar()?;
        upload_archive(container, archive, &format!("fixture {}", self.name)).await?;
        let script = format!(
            "bash /tmp/init_repo.sh {REPO_ROOT} {} && rm -f /tmp/init_repo.sh",
            self.name
        );
        let result = container.exec(&script, Duration::from_secs(300)).await?;
        if result.exit_code != Some(0) {
            return Err(EnvError::CommandFailed {
                what: format!("init_repo.sh for fixture {}", self.name),
                detail: format!(
                    "exit code {:?}: {}",
                    result.exit_code,
                    last_lines(&result.output, 5)
                ),
            });
        }
        let got = result.output.lines().last().unwrap_or_default().trim();
        if got != self.base_commit {
            return Err(EnvError::FixtureCommitMismatch {
                name: self.name.clone(),
                expected: self.base_commit.clone(),
                got: got.to_string(),
            });
        }
        commit_image(container, &self.image, Some(inputs)).await
    }

    fn input_tar(&self) -> Result<Vec<u8>, EnvError> {
        let pack = || -> std::io::Result<Vec<u8>> {
            let mut builder = tar::Builder::new(Vec::new());
            for (target, host) in self.inputs().map_err(std::io::Error::other)? {
                let content = std::fs::read(&host)?;
                let mut header = tar::Header::new_gnu();
                header.set_size(content.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(0);
                header.set_entry_type(tar::EntryType::Regular);
                builder.append_data(&mut header, &target, content.as_slice())?;
            }
            builder.into_inner()
        };
        pack().map_err(EnvError::io(format!("packing fixture {}", self.name)))
    }
}

/// Commits `container` as `image`, with `inputs` (a digest of what it was built from) as the
/// [`INPUTS_LABEL`] when given.
/// Unpacks a tar archive at the container's root.
pub(crate) async fn upload_archive(
    container: &Container,
    archive: Vec<u8>,
    what: &str,
) -> Result<(), EnvError> {
    let options = bollard::query_parameters::UploadToContainerOptionsBuilder::new()
        .path("/")
        .build();
    container
        .docker()
        .upload_to_container(
            container.id(),
            Some(options),
            bollard::body_full(archive.into()),
        )
        .await
        .map_err(EnvError::docker(format!("uploading {what}")))
}

pub(crate) async fn commit_image(
    container: &Container,
    image: &str,
    inputs: Option<&str>,
) -> Result<(), EnvError> {
    let (repo, tag) = split_tag(image);
    let options = CommitContainerOptionsBuilder::new()
        .container(container.id())
        .repo(repo)
        .tag(tag)
        .pause(true)
        .build();
    // The daemon merges in the build container's labels; blank the per-run ones so that
    // the image does not claim a run.
    let mut labels = HashMap::from([
        (RUN_LABEL.to_string(), String::new()),
        (INSTANCE_LABEL.to_string(), String::new()),
    ]);
    if let Some(inputs) = inputs {
        labels.insert(INPUTS_LABEL.to_string(), inputs.to_string());
    }
    let config = bollard::models::ContainerConfig {
        labels: Some(labels),
        // `[""]` resets the build container's `sleep` entrypoint (an empty list would not).
        entrypoint: Some(vec![String::new()]),
        cmd: Some(vec!["/bin/bash".to_string()]),
        working_dir: Some(REPO_ROOT.to_string()),
        ..Default::default()
    };
    container
        .docker()
        .clone()
        .with_timeout(IMAGE_REQUEST_TIMEOUT)
        .commit_container(options, config)
        .await
        .map_err(EnvError::docker(format!("committing image {image}")))?;
    Ok(())
}

/// Files under `dir` as (path relative to `root`, host path), sorted; caches are skipped
/// because init_repo.sh insists on a clean tree.
fn collect_files(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), EnvError> {
    let entries =
        std::fs::read_dir(dir).map_err(EnvError::io(format!("listing {}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "__pycache__" || name == ".pytest_cache" || name.ends_with(".pyc") {
            continue;
        }
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push((rel.to_string_lossy().into_owned(), path.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(split_tag("a/b:1"), ("a/b", "1"));
        assert_eq!(split_tag("host:5000/a/b"), ("host:5000/a/b", "latest"));
        assert_eq!(split_tag("ubuntu"), ("ubuntu", "latest"));
    }

    #[test]
    fn digests_split_at_the_at_sign() {
        assert_eq!(
            split_tag("localhost:5000/a/b@sha256:abc"),
            ("localhost:5000/a/b", "sha256:abc")
        );
    }
}
