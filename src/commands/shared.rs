//! Flags shared by several subcommands.

use std::path::PathBuf;

use anyhow::Context;
use cwm_datasets::{Filter, Instance, Slice};

/// Where the tasks come from and which of them to take.
#[derive(clap::Args, Debug, Clone)]
pub struct DatasetArgs {
    /// Dataset file (.jsonl, .json, .parquet) or a directory holding one. Defaults to the
    /// bundled fixture tasks.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only these instance ids, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub instances: Vec<String>,
    /// Only this repo, e.g. `django/django`.
    #[arg(long)]
    pub repo: Option<String>,
    /// Only this difficulty, e.g. "<15 min fix".
    #[arg(long)]
    pub difficulty: Option<String>,
    /// Python-style slice A:B over the selected instances.
    #[arg(long)]
    pub slice: Option<Slice>,
    /// Shuffle before slicing (seeded by --seed).
    #[arg(long)]
    pub shuffle: bool,
    /// Seed for --shuffle.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl FilterArgs {
    pub fn to_filter(&self) -> Filter {
        Filter {
            instances: self.instances.clone(),
            repo: self.repo.clone(),
            difficulty: self.difficulty.clone(),
            shuffle_seed: self.shuffle.then_some(self.seed),
            slice: self.slice,
        }
    }
}

impl DatasetArgs {
    pub fn path(&self) -> PathBuf {
        self.dataset
            .clone()
            .unwrap_or_else(cwm_datasets::fixtures::fixtures_jsonl)
    }

    /// Loads the dataset and applies the filters.
    pub fn load(&self) -> anyhow::Result<Vec<Instance>> {
        Ok(self.load_both()?.1)
    }

    /// The whole dataset and the instances the filters select.
    pub fn load_both(&self) -> anyhow::Result<(Vec<Instance>, Vec<Instance>)> {
        let path = self.path();
        let all = cwm_datasets::load(&path)
            .with_context(|| format!("loading dataset {}", path.display()))?;
        let selected = self.filter.to_filter().apply(all.clone())?;
        Ok((all, selected))
    }
}

/// The predictions `arg` names: `gold` (the selected instances' fixes), `empty` when
/// `allow_empty`, or a file whose every instance id must be in the whole dataset `all`.
pub fn load_predictions(
    arg: &str,
    selected: &[Instance],
    all: &[Instance],
    allow_empty: bool,
) -> anyhow::Result<cwm_eval::predictions::Predictions> {
    use cwm_eval::predictions;
    Ok(match arg {
        "gold" => predictions::gold(selected),
        "empty" if allow_empty => predictions::empty(selected),
        file => {
            let preds = predictions::load(std::path::Path::new(file))?;
            predictions::check_known(&preds, all)?;
            preds
        }
    })
}
