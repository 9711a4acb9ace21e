//! Flags shared by several subcommands.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cwm_datasets::{Filter, ImageNaming, Instance, Slice};

/// Where the tasks come from and which of them to take.
#[derive(clap::Args, Debug, Clone)]
pub struct DatasetArgs {
    /// Dataset file (.jsonl, .json, .parquet) or a directory holding one. Defaults to the
    /// bundled fixture tasks.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub naming: ImageNamingArgs,
}

/// How task images are named (`docs/images.md`): the dataset's `image` field and the official
/// scheme, unless one of these rewrites every selected instance's image.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ImageNamingArgs {
    /// Registry namespace of the task images, as the official harness's --namespace: each
    /// image becomes NS/sweb.eval.x86_64.<id>:latest (e.g. `localhost:5000/swebench`),
    /// overriding the dataset's `image` field.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Image name template with {namespace} (default swebench), {id} (the docker-safe id,
    /// `a__b-1` → `a_1776_b-1`), {instance_id} and {arch} (x86_64), e.g.
    /// `{namespace}/sweb.eval.{arch}.{id}:v2`; overrides the dataset's `image` field.
    #[arg(long, value_name = "TEMPLATE")]
    pub image_template: Option<String>,
    /// Architecture of the task images: x86_64 (alias amd64) or arm64; images get the
    /// official name for it, as SWE-bench 5.0.2's ImageSpec.arch (default: the dataset's
    /// `image` field, else x86_64).
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
}

impl ImageNamingArgs {
    /// The naming these flags ask for; an unusable namespace, template or architecture is an
    /// error naming it.
    pub fn to_naming(&self) -> anyhow::Result<ImageNaming> {
        let naming = ImageNaming::new(self.namespace.as_deref(), self.image_template.as_deref())?;
        Ok(match &self.arch {
            Some(arch) => naming.with_arch(cwm_datasets::image_arch(arch)?),
            None => naming,
        })
    }
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

    /// The whole dataset and the instances the filters select, their images named as
    /// --namespace / --image-template say.
    pub fn load_both(&self) -> anyhow::Result<(Vec<Instance>, Vec<Instance>)> {
        let naming = self.naming.to_naming()?;
        let path = self.path();
        let mut all = cwm_datasets::load(&path)
            .with_context(|| format!("loading dataset {}", path.display()))?;
        naming.apply_all(&mut all);
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

/// A temporary file beside `out`, the file a command will write (its folder made if
/// missing): renamed over `out` once the work is done, so a run stopped by an error leaves an
/// earlier file as it was, or dropped at once to check before any work that `out` can be
/// written. Readable by all, as other outputs are. Errors name `--out` and what to do.
pub fn temp_beside(out: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    anyhow::ensure!(
        !out.is_dir() && !out.as_os_str().to_string_lossy().ends_with('/'),
        "--out {} is a folder; give the path of the file to write, e.g. {}",
        out.display(),
        out.join("out.json").display()
    );
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "--out: cannot create the folder {}; choose another place",
            dir.display()
        )
    })?;
    tempfile::Builder::new()
        .prefix(".cwm-bench-out-")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "--out: cannot write in {}; choose a writable place",
                dir.display()
            )
        })
}

/// A clap value parser of numbers from `min` up: below it, clap's error names the flag and
/// says "must be at least MIN".
pub fn at_least<T>(min: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + Send + Sync + 'static,
    T::Err: std::fmt::Display,
{
    move |text| match text.parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        Ok(_) => Err(format!("must be at least {min}")),
        Err(e) => Err(e.to_string()),
    }
}
