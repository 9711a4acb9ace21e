//! The disk budget of a run's task images (`--max-disk`): a preflight check, and least
//! recently used eviction of the images the run pulled.

use std::sync::Mutex;

use bytesize::ByteSize;
use cwm_env::Docker;

use crate::error::PipelineError;

/// The images this run pulled, least recently used first, and the budget they share.
pub struct ImageBudget {
    budget: u64,
    /// (image, bytes, in use by an instance now)
    pulled: Mutex<Vec<(String, u64, bool)>>,
}

impl ImageBudget {
    /// Checks that Docker's data root has `budget` free; errors say how much is free where.
    pub async fn preflight(docker: &Docker, budget: ByteSize) -> Result<Self, PipelineError> {
        let space = cwm_env::disk_space(docker).await?;
        if space.free_bytes < budget.as_u64() {
            return Err(PipelineError::InvalidSetting {
                setting: "--max-disk".into(),
                why: format!(
                    "the budget is {budget} but only {} is free on {} (Docker's data root); free space there or lower --max-disk",
                    ByteSize(space.free_bytes),
                    space.path.display()
                ),
            });
        }
        Ok(Self {
            budget: budget.as_u64(),
            pulled: Mutex::new(Vec::new()),
        })
    }

    /// Makes `image` present for an instance: when it is missing, evicts images this run
    /// pulled (least recently used, not in use) until the rest leave room for one more of
    /// the largest size seen, then pulls it. Errors: the image alone exceeds the budget, or
    /// Docker fails.
    pub async fn acquire(&self, docker: &Docker, image: &str) -> Result<(), PipelineError> {
        if cwm_env::image_exists(docker, image).await? {
            self.mark(image, true);
            return Ok(());
        }
        for victim in self.victims() {
            match cwm_env::remove_image(docker, &victim).await {
                Ok(_) => tracing::info!("evicted {victim} to stay under --max-disk"),
                Err(e) => tracing::warn!("could not evict {victim}: {e}"),
            }
        }
        cwm_env::ensure_image(docker, image).await?;
        let size = cwm_env::image_size(docker, image).await?.unwrap_or(0);
        if size > self.budget {
            let _ = cwm_env::remove_image(docker, image).await;
            return Err(PipelineError::InvalidSetting {
                setting: "--max-disk".into(),
                why: format!(
                    "{image} needs {} but the budget is {}; raise --max-disk",
                    ByteSize(size),
                    ByteSize(self.budget)
                ),
            });
        }
        if let Ok(mut pulled) = self.pulled.lock() {
            pulled.push((image.to_string(), size, true));
        }
        Ok(())
    }

    /// The instance using `image` is done with it.
    pub fn release(&self, image: &str) {
        self.mark(image, false);
    }

    fn mark(&self, image: &str, in_use: bool) {
        if let Ok(mut pulled) = self.pulled.lock() {
            if let Some(i) = pulled.iter().position(|(name, ..)| name == image) {
                let mut entry = pulled.remove(i);
                entry.2 = in_use;
                pulled.push(entry);
            }
        }
    }

    /// The images to evict before a pull, taken off the list.
    fn victims(&self) -> Vec<String> {
        let Ok(mut pulled) = self.pulled.lock() else {
            return Vec::new();
        };
        let largest = pulled.iter().map(|(_, size, _)| *size).max().unwrap_or(0);
        let mut total: u64 = pulled.iter().map(|(_, size, _)| size).sum();
        let mut victims = Vec::new();
        while total + largest > self.budget {
            let Some(i) = pulled.iter().position(|(.., in_use)| !in_use) else {
                break;
            };
            let (name, size, _) = pulled.remove(i);
            total -= size;
            victims.push(name);
        }
        victims
    }
}
