//! Reading and writing files in a container through the archive API (tar), so nothing is
//! needed inside the image and any bytes survive the trip.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use bollard::container::PathStatResponse;
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, DownloadFromContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::container::short;
use crate::error::is_not_found;
use crate::{Container, EnvError, REPO_ROOT};

/// Symlinks followed at most this deep when reading.
const MAX_LINK_DEPTH: usize = 8;
/// Go's `os.ModeDir`, as the daemon reports it in a path stat.
const GO_MODE_DIR: u32 = 1 << 31;
/// Go's `os.ModeSymlink`.
const GO_MODE_SYMLINK: u32 = 1 << 27;

/// Makes `path` absolute (relative paths are relative to [`REPO_ROOT`], the working dir) and
/// resolves `.` and `..` lexically.
pub fn container_path(path: &str) -> String {
    let joined = Path::new(REPO_ROOT).join(path);
    let mut clean = PathBuf::from("/");
    for part in joined.components() {
        match part {
            Component::Normal(name) => clean.push(name),
            Component::ParentDir => {
                clean.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    clean.to_string_lossy().into_owned()
}

impl Container {
    /// Reads a whole file, following symlinks. Binary-safe.
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, EnvError> {
        let mut path = container_path(path);
        for _ in 0..MAX_LINK_DEPTH {
            match self.read_archive_entry(&path).await? {
                Entry::File(bytes) => return Ok(bytes),
                Entry::Link(target) => path = link_target(&path, &target),
            }
        }
        Err(self.not_a_file(&path, "a symlink chain deeper than 8 links"))
    }

    /// Writes a whole file, creating missing parent directories. An existing file keeps its
    /// permission bits (a script stays executable); a new one gets 0644. A symlink is
    /// followed: its target is written and the link stays a link.
    pub async fn write_file(&self, path: &str, content: &[u8]) -> Result<(), EnvError> {
        let (path, mode) = self.write_target(&container_path(path)).await?;
        let mode = mode.unwrap_or(0o644);
        let archive = single_file_tar(&path, content, mode)
            .map_err(EnvError::io(format!("packing {path} for upload")))?;
        let options = UploadToContainerOptionsBuilder::new().path("/").build();
        self.docker()
            .upload_to_container(self.id(), Some(options), bollard::body_full(archive.into()))
            .await
            .map_err(EnvError::docker(format!(
                "writing {path} in container {}",
                short(self.id())
            )))
    }

    /// The file a write to `path` lands in, following symlinks, and its permission bits
    /// (None when it does not exist yet).
    async fn write_target(&self, path: &str) -> Result<(String, Option<u32>), EnvError> {
        let mut path = path.to_string();
        for _ in 0..MAX_LINK_DEPTH {
            let Some(stat) = self.stat(&path).await? else {
                return Ok((path, None));
            };
            if stat.file_mode & GO_MODE_DIR != 0 {
                return Err(self.not_a_file(&path, "a directory"));
            }
            if stat.file_mode & GO_MODE_SYMLINK == 0 {
                return Ok((path, Some(stat.file_mode & 0o777)));
            }
            if stat.link_target.is_empty() {
                return Err(self.not_a_file(&path, "a symlink the daemon did not resolve"));
            }
            // The daemon reports the link fully resolved; a relative target is handled too.
            path = link_target(&path, &stat.link_target);
        }
        Err(self.not_a_file(&path, "a symlink chain deeper than 8 links"))
    }

    /// The daemon's stat of `path` (not following a final symlink), None when it is missing.
    async fn stat(&self, path: &str) -> Result<Option<PathStatResponse>, EnvError> {
        let options = ContainerArchiveInfoOptionsBuilder::new().path(path).build();
        match self
            .docker()
            .get_container_archive_info(self.id(), Some(options))
            .await
        {
            Ok(stat) => Ok(Some(stat)),
            Err(err) if is_not_found(&err) => Ok(None),
            Err(cause) => Err(EnvError::Docker {
                action: format!("checking {path} in container {}", short(self.id())),
                cause,
            }),
        }
    }

    async fn read_archive_entry(&self, path: &str) -> Result<Entry, EnvError> {
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        let mut stream = self
            .docker()
            .download_from_container(self.id(), Some(options));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(err) if is_not_found(&err) => {
                    return Err(EnvError::FileNotFound {
                        container: short(self.id()).to_string(),
                        path: path.to_string(),
                    })
                }
                Err(cause) => {
                    return Err(EnvError::Docker {
                        action: format!("reading {path} in container {}", short(self.id())),
                        cause,
                    })
                }
            }
        }
        self.first_entry(path, &archive)
    }

    fn first_entry(&self, path: &str, archive: &[u8]) -> Result<Entry, EnvError> {
        let unpack_err = EnvError::io(format!("unpacking {path} from the container"));
        let mut tar = tar::Archive::new(archive);
        let mut entries = tar.entries().map_err(unpack_err)?;
        let Some(entry) = entries.next() else {
            return Err(self.not_a_file(path, "missing from the archive"));
        };
        let mut entry = entry.map_err(EnvError::io(format!("unpacking {path}")))?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() {
            let target = entry.link_name().ok().flatten().unwrap_or_default();
            return Ok(Entry::Link(target.to_string_lossy().into_owned()));
        }
        if kind.is_dir() {
            return Err(self.not_a_file(path, "a directory"));
        }
        if !kind.is_file() {
            return Err(self.not_a_file(path, &format!("a special file ({kind:?})")));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(EnvError::io(format!("unpacking {path}")))?;
        Ok(Entry::File(bytes))
    }

    fn not_a_file(&self, path: &str, kind: &str) -> EnvError {
        EnvError::NotAFile {
            container: short(self.id()).to_string(),
            path: path.to_string(),
            kind: kind.to_string(),
        }
    }
}

enum Entry {
    File(Vec<u8>),
    Link(String),
}

/// Where a symlink at `path` pointing to `target` leads.
fn link_target(path: &str, target: &str) -> String {
    if target.starts_with('/') {
        return container_path(target);
    }
    let parent = Path::new(path).parent().unwrap_or(Path::new("/"));
    container_path(&parent.join(target).to_string_lossy())
}

/// A tar holding one regular file at absolute `path` (stored relative to `/`).
fn single_file_tar(path: &str, content: &[u8], mode: u32) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    header.set_mtime(mtime);
    let mut builder = tar::Builder::new(Vec::with_capacity(content.len() + 2048));
    builder.append_data(&mut header, path.trim_start_matches('/'), content)?;
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_absolute_and_clean() {
        assert_eq!(container_path("a/b.py"), format!("{REPO_ROOT}/a/b.py"));
        assert_eq!(container_path("/tmp/../etc/./x"), "/etc/x");
        assert_eq!(container_path("../../.."), "/");
    }

    #[test]
    fn relative_links_resolve_against_their_directory() {
        assert_eq!(link_target("/a/b/link", "../c"), "/a/c");
        assert_eq!(link_target("/a/b/link", "/etc/x"), "/etc/x");
    }
}
