//! A cross-process lock, so that concurrent test binaries or CLI runs build an image once.

use std::fs::File;

use crate::EnvError;

/// An exclusive `flock` on a file under the temp dir, released when dropped.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Waits (without blocking the async runtime) until the lock named `name` is ours.
    pub(crate) async fn acquire(name: &str) -> Result<FileLock, EnvError> {
        let path = std::env::temp_dir().join(name);
        let what = format!("locking {}", path.display());
        let locked = tokio::task::spawn_blocking(move || lock_file(&path)).await;
        match locked {
            Ok(result) => result.map_err(EnvError::io(what)),
            Err(join) => Err(EnvError::io(what)(std::io::Error::other(join))),
        }
    }
}

fn lock_file(path: &std::path::Path) -> std::io::Result<FileLock> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    file.lock()?;
    Ok(FileLock { _file: file })
}
