//! The settings of a run as one typed tree: dataset and filters, episode, sampling, backend,
//! eval. Defaults live only in the `Default` impls here (and in the library types they take
//! them from: [`Budgets`], [`OpenAiSampling`], [`EvalOptions`]). A TOML file and the `run`
//! flags overlay the tree through [`ConfigOverrides`]: the file first, then the flags.

use std::path::{Path, PathBuf};

use bytesize::ByteSize;
use cwm_agent::{OpenAiSampling, Policy};
use cwm_eval::EvalOptions;
use cwm_protocol::{Budgets, OnBudget, ToolName};
use serde::{Deserialize, Serialize};

use crate::error::PipelineError;

/// Every setting of a run; saved with it as `config.json` (plus the policy's own `policy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// The run's identity, place and parallelism.
    pub run: RunSettings,
    /// Which tasks.
    pub dataset: DatasetSelection,
    /// Each episode's limits, tools and prompts.
    pub episode: EpisodeSettings,
    /// How the model samples.
    pub sampling: SamplingSettings,
    /// Which model, and how to reach it.
    pub backend: BackendSettings,
    /// Grading.
    pub eval: EvalSettings,
}

impl RunConfig {
    /// The built-in default job: the small local model (when `scripts/setup` installed it),
    /// whose 8k context and slow CPU decoding call for short budgets, greedy so the demo is
    /// the same on every machine. Any other model gets CWM's budgets and sampling.
    pub fn default_job() -> Self {
        let mut config = Self::default();
        if config.backend.model.starts_with("local:") {
            let budgets = &mut config.episode.budgets;
            budgets.max_turns = 3;
            budgets.context_tokens = 8192;
            budgets.max_action_tokens = 128;
            budgets.wall_clock_secs = Some(300);
            config.sampling.temperature = 0.0;
            config.sampling.top_p = 1.0;
        }
        config
    }

    /// The effective settings: `file` then `flags` over the defaults ([`Self::default_job`]
    /// when neither names a model). Errors name the setting that is out of range.
    pub fn resolve(
        file: Option<ConfigOverrides>,
        flags: ConfigOverrides,
    ) -> Result<Self, PipelineError> {
        let file = file.unwrap_or_default();
        let model_chosen = file.backend.model.is_some() || flags.backend.model.is_some();
        let mut config = if model_chosen {
            Self::default()
        } else {
            Self::default_job()
        };
        file.apply(&mut config);
        flags.apply(&mut config);
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), PipelineError> {
        let invalid = |setting: &str, why: &str| {
            Err(PipelineError::InvalidSetting {
                setting: setting.into(),
                why: why.into(),
            })
        };
        if self.run.workers == 0 {
            return invalid("workers", "must be at least 1");
        }
        if self.run.samples == 0 {
            return invalid("samples", "must be at least 1");
        }
        if self.eval.timeout_secs == 0 {
            return invalid("eval_timeout", "must be at least 1 second");
        }
        Ok(())
    }

    /// The agent's episode settings; the prompt profile is loaded here, so a bad profile
    /// stops the run before anything starts.
    pub fn episode_config(&self) -> Result<cwm_agent::EpisodeConfig, PipelineError> {
        let profile = match &self.episode.prompts {
            Some(path) => cwm_tools::Profile::load(path)?,
            None => cwm_tools::Profile::builtin(),
        };
        Ok(cwm_agent::EpisodeConfig {
            budgets: self.episode.budgets.clone(),
            on_budget: self.episode.on_budget,
            tools: self.episode.tools.tools(),
            profile,
            ..cwm_agent::EpisodeConfig::default()
        })
    }

    /// The grader's options for this run.
    pub fn eval_options(&self) -> EvalOptions {
        let mut options = EvalOptions::new(&self.run.run_id);
        options.timeout = std::time::Duration::from_secs(self.eval.timeout_secs);
        self.eval.limit(&mut options);
        options
    }

    /// Builds a fresh policy for the backend (a local model is loaded from disk each time).
    pub fn policy(&self) -> Result<Box<dyn Policy>, PipelineError> {
        crate::policies::build_policy(
            &self.backend,
            &self.sampling,
            self.episode.budgets.max_action_tokens,
        )
    }

    /// The run's directory, `<runs_dir>/<run_id>`.
    pub fn run_dir(&self) -> PathBuf {
        self.run.runs_dir.join(&self.run.run_id)
    }

    /// The oracle and replay models do not sample: sampling settings given for them are an
    /// error rather than values silently recorded and ignored. `given` names the settings the
    /// user set.
    pub fn refuse_unappliable_sampling(&self, given: &[&str]) -> Result<(), PipelineError> {
        let model = &self.backend.model;
        let samples = !(model == "oracle" || model.starts_with("replay:"));
        if samples || given.is_empty() {
            return Ok(());
        }
        Err(PipelineError::InvalidSetting {
            setting: given.join(", "),
            why: format!(
                "model `{model}` does not sample, so it cannot be applied; drop {}",
                if given.len() == 1 { "it" } else { "them" }
            ),
        })
    }
}

/// The run's identity, place and parallelism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSettings {
    /// Runs are stored in `<runs_dir>/<run_id>/`; reusing an id resumes that run. Default:
    /// `run-<UTC time>`.
    pub run_id: String,
    /// Parent directory of run directories (default `runs`).
    pub runs_dir: PathBuf,
    /// Instances worked on at once (default 1), each with its own policy.
    pub workers: usize,
    /// What happens to a task image this run pulled once its instance is done.
    pub cache_level: CacheLevel,
    /// Disk the task images this run pulls may take together (default: no budget); checked
    /// against Docker's free space at the start, kept by evicting the least recently used.
    pub max_disk: Option<ByteSize>,
    /// While instances run, pull the images of up to this many next ones in the background
    /// (0: off, the default).
    pub prefetch: usize,
    /// Redo an instance once, at once, when its episode or evaluation fails for a reason that
    /// is not the model's (a container killed or OOM-killed, the daemon or the model server
    /// failing); without it such an instance is left for the next start of the run.
    pub retry_infra: bool,
    /// Independent episodes per instance (default 1). With more, each sample is a run of
    /// its own under `<run>/samples/` with the sampling seed `seed + k` (see
    /// [`crate::pipeline::samples`]).
    pub samples: usize,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            run_id: format!("run-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S")),
            runs_dir: PathBuf::from("runs"),
            workers: 1,
            cache_level: CacheLevel::default(),
            max_disk: None,
            prefetch: 0,
            retry_infra: false,
            samples: 1,
        }
    }
}

/// Which task images a run keeps, as the official harness's `--cache_level` (its `none` and
/// `instance` levels; `env` and `base` images do not exist here).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheLevel {
    /// An image this run pulled is removed once its instance's episode and evaluation are
    /// done (images that were there before the run stay).
    None,
    /// Every image stays.
    #[default]
    Instance,
}

/// Which tasks: a dataset file and the filters over it (see [`cwm_datasets::Filter`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetSelection {
    /// Dataset file (.jsonl, .json, .parquet) or a directory holding one (default: the
    /// bundled fixture tasks).
    pub path: PathBuf,
    /// Only these instance ids (empty: all).
    pub instances: Vec<String>,
    /// Only this repo, e.g. `django/django`.
    pub repo: Option<String>,
    /// Only this difficulty, e.g. `<15 min fix`.
    pub difficulty: Option<String>,
    /// A Python-style slice `A:B` over the selected instances.
    pub slice: Option<String>,
    /// Shuffle before slicing, seeded by `seed`.
    pub shuffle: bool,
    /// Seed of the shuffle.
    pub seed: u64,
    /// Leave out the instances this file lists (a `validation.json` from `eval --validate`,
    /// a JSON list of ids, or one id per line).
    pub known_bad: Option<PathBuf>,
    /// Registry namespace of the task images, e.g. `localhost:5000/swebench`: images are
    /// named as the official harness names them there (see docs/images.md).
    pub namespace: Option<String>,
    /// Image name template with `{namespace}`, `{id}`, `{instance_id}` and `{arch}`.
    pub image_template: Option<String>,
    /// Architecture of the task images (`x86_64` or `arm64`): images get the official name
    /// for it (default: the dataset's `image` field, else `x86_64`).
    pub arch: Option<String>,
}

impl Default for DatasetSelection {
    fn default() -> Self {
        Self {
            path: cwm_datasets::fixtures::fixtures_jsonl(),
            instances: Vec::new(),
            repo: None,
            difficulty: None,
            slice: None,
            shuffle: false,
            seed: 0,
            known_bad: None,
            namespace: None,
            image_template: None,
            arch: None,
        }
    }
}

impl DatasetSelection {
    /// Loads the dataset and applies the filters. Errors name the file or the bad filter.
    pub fn load(&self) -> Result<Vec<cwm_datasets::Instance>, PipelineError> {
        let all = cwm_datasets::load(&self.path).map_err(|source| PipelineError::Dataset {
            path: self.path.clone(),
            source,
        })?;
        let slice = self.slice.as_deref().map(str::parse).transpose().map_err(
            |why: cwm_datasets::SliceError| PipelineError::InvalidSetting {
                setting: "slice".into(),
                why: why.to_string(),
            },
        )?;
        let filter = cwm_datasets::Filter {
            instances: self.instances.clone(),
            repo: self.repo.clone(),
            difficulty: self.difficulty.clone(),
            shuffle_seed: self.shuffle.then_some(self.seed),
            slice,
        };
        let mut selected = filter.apply(all)?;
        if let Some(path) = &self.known_bad {
            let bad = crate::pipeline::validate::read_known_bad(path)?;
            selected.retain(|i| !bad.contains(&i.instance_id));
        }
        let invalid = |e: cwm_datasets::ImageNamingError| PipelineError::InvalidSetting {
            setting: "--namespace/--image-template/--arch".into(),
            why: e.to_string(),
        };
        let mut naming = cwm_datasets::ImageNaming::new(
            self.namespace.as_deref(),
            self.image_template.as_deref(),
        )
        .map_err(invalid)?;
        if let Some(arch) = &self.arch {
            naming = naming.with_arch(cwm_datasets::image_arch(arch).map_err(invalid)?);
        }
        naming.apply_all(&mut selected);
        Ok(selected)
    }
}

/// Each episode's limits, tools and prompts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct EpisodeSettings {
    /// Turns, tokens and seconds (defaults: CWM's SWE-bench settings, [`Budgets`]).
    pub budgets: Budgets,
    /// What a budget that runs out leaves as the patch (default `fail`: nothing, as CWM).
    pub on_budget: OnBudget,
    /// The tools the model may call.
    pub tools: ToolPreset,
    /// A prompt profile (TOML) overriding built-in texts; see docs/prompts.md.
    pub prompts: Option<PathBuf>,
}

/// A named tool set.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolPreset {
    /// bash, edit, create, submit and test.
    #[default]
    Default,
    /// CWM's own four tools: bash, edit, create, submit.
    Cwm,
}

impl ToolPreset {
    /// The tool names of the preset.
    pub fn tools(self) -> Vec<ToolName> {
        match self {
            Self::Default => ToolName::ALL.to_vec(),
            Self::Cwm => ToolName::CWM.to_vec(),
        }
    }
}

/// How the model samples (defaults: CWM's SWE-bench settings, from [`OpenAiSampling`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingSettings {
    /// Temperature; 0 is greedy.
    pub temperature: f64,
    /// Nucleus sampling threshold; 1 turns it off.
    pub top_p: f64,
    /// Keep only the K most likely tokens; 0 turns it off.
    pub top_k: usize,
    /// Sampling seed, sent to `openai:` servers as `seed`.
    pub seed: u64,
}

impl Default for SamplingSettings {
    fn default() -> Self {
        let cwm = OpenAiSampling::default();
        Self {
            temperature: cwm.temperature,
            top_p: cwm.top_p,
            top_k: cwm.top_k,
            seed: cwm.seed.unwrap_or(0),
        }
    }
}

/// Which model, and how to reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendSettings {
    /// `local:PATH`, `openai:MODEL[@URL]`, `replay:FILE` or `oracle` (default: the local
    /// SmolLM2 model when `scripts/setup` installed it, else `oracle`).
    pub model: String,
    /// The served model's tokenizer (tokenizer.json or GGUF) for exact token counts of
    /// `openai:` models.
    pub tokenizer: Option<PathBuf>,
    /// Extra JSON fields for every OpenAI-compatible request; they win over the sampling
    /// settings.
    pub extra_body: Option<serde_json::Value>,
    /// Role of tool observations sent to an OpenAI-compatible server (default: CWM's
    /// `tool: NAME`).
    pub tool_role: Option<String>,
    /// API key for `openai:` models (default: `OPENAI_API_KEY`); never saved.
    #[serde(skip)]
    pub api_key: Option<String>,
}

impl Default for BackendSettings {
    fn default() -> Self {
        Self {
            model: default_model(),
            tokenizer: None,
            extra_body: None,
            tool_role: None,
            api_key: None,
        }
    }
}

/// `local:` the SmolLM2 GGUF that `scripts/setup` installs, when it is there; else `oracle`.
pub fn default_model() -> String {
    let path = cwm_engine::smollm2_path();
    if path.exists() {
        format!("local:{}", path.display())
    } else {
        "oracle".into()
    }
}

/// Grading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSettings {
    /// Grade each patch in a fresh container as soon as it is submitted.
    pub evaluate: bool,
    /// Seconds for an eval script (default: the grader's, [`EvalOptions`]).
    pub timeout_secs: u64,
    /// CPUs an eval container may use (default: no limit, as the official harness).
    pub cpus: Option<f64>,
    /// Memory an eval container may use (default: no limit, as the official harness).
    pub memory: Option<ByteSize>,
}

impl Default for EvalSettings {
    fn default() -> Self {
        Self {
            evaluate: false,
            timeout_secs: EvalOptions::new("").timeout.as_secs(),
            cpus: None,
            memory: None,
        }
    }
}

impl EvalSettings {
    /// Sets the limits on `options`.
    pub fn limit(&self, options: &mut EvalOptions) {
        if let Some(cpus) = self.cpus {
            options.nano_cpus = (cpus * 1e9) as i64;
        }
        if let Some(memory) = self.memory {
            options.memory_bytes = i64::try_from(memory.as_u64()).unwrap_or(i64::MAX);
        }
    }
}

/// Settings given by a TOML file or by flags; `None` leaves the tree's value. The file has
/// one table per section (`[run]`, `[dataset]`, `[episode]`, `[sampling]`, `[backend]`,
/// `[eval]`) with the flag names in snake_case as keys.
#[derive(clap::Args, Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigOverrides {
    #[command(flatten)]
    pub run: RunOverrides,
    #[command(flatten)]
    pub dataset: DatasetOverrides,
    #[command(flatten)]
    pub episode: EpisodeOverrides,
    #[command(flatten)]
    pub sampling: SamplingOverrides,
    #[command(flatten)]
    pub backend: BackendOverrides,
    #[command(flatten)]
    pub eval: EvalOverrides,
}

impl ConfigOverrides {
    /// Reads a TOML file of overrides. Errors name the file and the bad key.
    pub fn from_file(path: &Path) -> Result<Self, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Io {
            what: format!("reading config file {}", path.display()),
            source,
        })?;
        toml::from_str(&text).map_err(|e| PipelineError::ConfigFile {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }

    /// Sets every given value in `config`.
    pub fn apply(&self, config: &mut RunConfig) {
        self.run.apply(&mut config.run);
        self.dataset.apply(&mut config.dataset);
        self.episode.apply(&mut config.episode);
        self.sampling.apply(&mut config.sampling);
        self.backend.apply(&mut config.backend);
        self.eval.apply(&mut config.eval);
    }

    /// The sampling settings given, as flag names (for [`RunConfig::refuse_unappliable_sampling`]).
    pub fn sampling_given(&self) -> Vec<&'static str> {
        let s = &self.sampling;
        [
            ("--temperature", s.temperature.is_some()),
            ("--top-p", s.top_p.is_some()),
            ("--top-k", s.top_k.is_some()),
            ("--sampling-seed", s.sampling_seed.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, set)| set.then_some(flag))
        .collect()
    }
}

fn set<T: Clone>(target: &mut T, value: &Option<T>) {
    if let Some(value) = value {
        *target = value.clone();
    }
}

/// `[run]`.
#[derive(clap::Args, Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunOverrides {
    /// Run id; runs are stored in `<runs-dir>/<run-id>/`. Reusing an id resumes that run.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Parent directory of run directories (default: `runs`).
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
    /// Instances worked on at once (default 1).
    #[arg(long)]
    pub workers: Option<usize>,
    /// `none`: remove each task image this run pulled once its instance is done (images
    /// present before the run stay); `instance` (default): keep them.
    #[arg(long, value_enum)]
    pub cache_level: Option<CacheLevel>,
    /// Disk the task images this run pulls may take together, e.g. 200GiB: checked against
    /// Docker's free space at the start; images the run pulled are evicted least recently
    /// used to stay under it (default: no budget).
    #[arg(long)]
    pub max_disk: Option<ByteSize>,
    /// Pull the images of up to N next instances in the background while instances run, so an
    /// episode rarely waits for its image (default 0: off; the disk budget still applies).
    #[arg(long)]
    pub prefetch: Option<usize>,
    /// Redo an instance once, at once, when its episode or evaluation fails for a reason that
    /// is not the model's (a container killed or OOM-killed, the daemon or the model server
    /// failing). Without it, such instances are listed as infrastructure failures and redone
    /// by the next start of the run (same --run-id).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub retry_infra: Option<bool>,
    /// Independent episodes per instance (default 1): CWM's test-time scaling. Sample k runs
    /// with the sampling seed --sampling-seed + k; preds.jsonl gets one patch per instance
    /// (majority vote), samples.jsonl every sample's, and graded runs report pass@1 with a
    /// confidence interval, pass@k, the majority vote and the oracle (any sample resolved).
    #[arg(long)]
    pub samples: Option<usize>,
}

impl RunOverrides {
    fn apply(&self, run: &mut RunSettings) {
        set(&mut run.run_id, &self.run_id);
        set(&mut run.runs_dir, &self.runs_dir);
        set(&mut run.workers, &self.workers);
        set(&mut run.cache_level, &self.cache_level);
        if self.max_disk.is_some() {
            run.max_disk = self.max_disk;
        }
        set(&mut run.prefetch, &self.prefetch);
        set(&mut run.retry_infra, &self.retry_infra);
        set(&mut run.samples, &self.samples);
    }
}

/// `[dataset]`.
#[derive(clap::Args, Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetOverrides {
    /// Dataset file or directory (default: the bundled fixture tasks).
    #[arg(long = "dataset")]
    pub path: Option<PathBuf>,
    /// Instance ids, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub instances: Option<Vec<String>>,
    /// Only this repo, e.g. `django/django`.
    #[arg(long)]
    pub repo: Option<String>,
    /// Only this difficulty, e.g. "<15 min fix".
    #[arg(long)]
    pub difficulty: Option<String>,
    /// Python-style slice A:B.
    #[arg(long)]
    pub slice: Option<String>,
    /// Shuffle the instances before slicing (seeded by --seed).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub shuffle: Option<bool>,
    /// Seed for --shuffle.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Leave out the instances this file lists: a `validation.json` written by
    /// `eval --validate`, a JSON list of ids, or one id per line.
    #[arg(long)]
    pub known_bad: Option<PathBuf>,
    /// Registry namespace of the task images, e.g. `localhost:5000/swebench`, named as the
    /// official harness names them (default: the dataset's `image` field, else `swebench`).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Image name template, e.g. `mirror.example/{id}:v1`, with `{namespace}`, `{id}` (the
    /// Docker-safe instance id), `{instance_id}` and `{arch}`.
    #[arg(long)]
    pub image_template: Option<String>,
    /// Architecture of the task images: `x86_64` (alias `amd64`) or `arm64`; images get the
    /// official name for it, as SWE-bench 5.0.2's `ImageSpec.arch` (default: the dataset's
    /// `image` field, else x86_64).
    #[arg(long)]
    pub arch: Option<String>,
}

impl DatasetOverrides {
    fn apply(&self, dataset: &mut DatasetSelection) {
        set(&mut dataset.path, &self.path);
        set(&mut dataset.instances, &self.instances);
        if self.repo.is_some() {
            dataset.repo.clone_from(&self.repo);
        }
        if self.difficulty.is_some() {
            dataset.difficulty.clone_from(&self.difficulty);
        }
        if self.slice.is_some() {
            dataset.slice.clone_from(&self.slice);
        }
        set(&mut dataset.shuffle, &self.shuffle);
        set(&mut dataset.seed, &self.seed);
        if self.known_bad.is_some() {
            dataset.known_bad.clone_from(&self.known_bad);
        }
        if self.namespace.is_some() {
            dataset.namespace.clone_from(&self.namespace);
        }
        if self.image_template.is_some() {
            dataset.image_template.clone_from(&self.image_template);
        }
        if self.arch.is_some() {
            dataset.arch.clone_from(&self.arch);
        }
    }
}

/// `[episode]`.
#[derive(clap::Args, Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EpisodeOverrides {
    /// Turn budget (default 128, CWM's eval setting).
    #[arg(long)]
    pub max_turns: Option<u64>,
    /// Context budget in tokens (default 131072).
    #[arg(long)]
    pub max_context_tokens: Option<usize>,
    /// Tokens per model action (default 65536).
    #[arg(long)]
    pub max_action_tokens: Option<usize>,
    /// Seconds per bash command (default 120).
    #[arg(long)]
    pub command_timeout: Option<u64>,
    /// Wall-clock seconds per episode (default 7200).
    #[arg(long)]
    pub time_limit: Option<u64>,
    /// End an episode after this many format errors in a row (default: no limit, as CWM;
    /// each error still costs a turn).
    #[arg(long)]
    pub max_format_errors: Option<u64>,
    /// What a budget that runs out (turns, context, time) leaves as the patch: `fail`
    /// (nothing: the episode failed and is not graded, as CWM; the default),
    /// `last-submission`, or `autosubmit` (the working-tree diff).
    #[arg(long, value_parser = parse_on_budget)]
    pub on_budget: Option<OnBudget>,
    /// The same as `--on-budget autosubmit`.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub autosubmit: Option<bool>,
    /// The tools the model may call: `default` (bash, edit, create, submit, test) or `cwm`
    /// (CWM's four: bash, edit, create, submit, for reproducing CWM's numbers).
    #[arg(long, value_enum)]
    pub tools: Option<ToolPreset>,
    /// A prompt profile (TOML) overriding any of the built-in texts the model sees; see
    /// docs/prompts.md and `cwm-bench prompts dump`.
    #[arg(long)]
    pub prompts: Option<PathBuf>,
}

fn parse_on_budget(text: &str) -> Result<OnBudget, String> {
    serde_json::from_value(serde_json::Value::String(text.into()))
        .map_err(|_| format!("`{text}` is not one of fail, last-submission, autosubmit"))
}

impl EpisodeOverrides {
    fn apply(&self, episode: &mut EpisodeSettings) {
        let budgets = &mut episode.budgets;
        set(&mut budgets.max_turns, &self.max_turns);
        set(&mut budgets.context_tokens, &self.max_context_tokens);
        set(&mut budgets.max_action_tokens, &self.max_action_tokens);
        set(&mut budgets.command_timeout_secs, &self.command_timeout);
        if let Some(secs) = self.time_limit {
            budgets.wall_clock_secs = Some(secs);
        }
        if self.max_format_errors.is_some() {
            budgets.max_format_errors = self.max_format_errors;
        }
        set(&mut episode.on_budget, &self.on_budget);
        if self.autosubmit == Some(true) {
            episode.on_budget = OnBudget::Autosubmit;
        }
        set(&mut episode.tools, &self.tools);
        if self.prompts.is_some() {
            episode.prompts.clone_from(&self.prompts);
        }
    }
}

/// `[sampling]`.
#[derive(clap::Args, Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingOverrides {
    /// Sampling temperature (default 1.0, CWM's SWE-bench setting; 0 is greedy). Sent to
    /// `openai:` servers and used by the local engine.
    #[arg(long)]
    pub temperature: Option<f64>,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches this
    /// (default 0.95, CWM's SWE-bench setting; 1 turns it off).
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Keep only the K most likely tokens (default 0: off). Sent to `openai:` servers as
    /// `top_k`, which vLLM and llama.cpp's server accept.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Sampling seed (default 0), sent to `openai:` servers as `seed`.
    #[arg(long)]
    #[serde(rename = "seed")]
    pub sampling_seed: Option<u64>,
}

impl SamplingOverrides {
    fn apply(&self, sampling: &mut SamplingSettings) {
        set(&mut sampling.temperature, &self.temperature);
        set(&mut sampling.top_p, &self.top_p);
        set(&mut sampling.top_k, &self.top_k);
        set(&mut sampling.seed, &self.sampling_seed);
    }
}

/// `[backend]`.
#[derive(clap::Args, Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendOverrides {
    /// `local:PATH`, `openai:MODEL[@URL]`, `replay:FILE` or `oracle`
    /// (default: the local SmolLM2 model when present, else `oracle`).
    #[arg(long)]
    pub model: Option<String>,
    /// The served model's tokenizer (a tokenizer.json, or a GGUF file) for exact token counts
    /// of `openai:` models; without it they are estimated, and config.json says so.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Extra JSON fields for OpenAI-compatible requests, e.g.
    /// '{"chat_template_kwargs": {"enable_thinking": true}}'.
    #[arg(long, value_parser = parse_json)]
    pub extra_body: Option<serde_json::Value>,
    /// Role for tool observations sent to an OpenAI-compatible server (default: CWM's
    /// `tool: NAME`, as vLLM serving facebook/cwm expects; `user` for servers that only accept
    /// the standard roles, such as llama.cpp's).
    #[arg(long)]
    pub tool_role: Option<String>,
    /// API key for `openai:` models (default: OPENAI_API_KEY). Never saved with the run.
    #[arg(long)]
    #[serde(skip)]
    pub api_key: Option<String>,
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
}

impl BackendOverrides {
    fn apply(&self, backend: &mut BackendSettings) {
        set(&mut backend.model, &self.model);
        if self.tokenizer.is_some() {
            backend.tokenizer.clone_from(&self.tokenizer);
        }
        if self.extra_body.is_some() {
            backend.extra_body.clone_from(&self.extra_body);
        }
        if self.tool_role.is_some() {
            backend.tool_role.clone_from(&self.tool_role);
        }
        if self.api_key.is_some() {
            backend.api_key.clone_from(&self.api_key);
        }
    }
}

/// `[eval]`.
#[derive(clap::Args, Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalOverrides {
    /// Grade each patch in a fresh container as soon as it is submitted.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub evaluate: Option<bool>,
    /// Seconds for an eval script (default 1800).
    #[arg(long)]
    #[serde(rename = "timeout")]
    pub eval_timeout: Option<u64>,
    /// CPUs an eval container may use, e.g. 2 or 0.5 (default: no limit, as the official
    /// harness).
    #[arg(long, value_parser = parse_cpus)]
    #[serde(rename = "cpus")]
    pub eval_cpus: Option<f64>,
    /// Memory an eval container may use, e.g. 8GiB (default: no limit, as the official
    /// harness).
    #[arg(long)]
    #[serde(rename = "memory")]
    pub eval_memory: Option<ByteSize>,
}

/// A positive, finite number of CPUs.
pub fn parse_cpus(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(cpus) if cpus > 0.0 && cpus.is_finite() => Ok(cpus),
        _ => Err(format!("`{text}` is not a positive number of CPUs")),
    }
}

impl EvalOverrides {
    fn apply(&self, eval: &mut EvalSettings) {
        set(&mut eval.evaluate, &self.evaluate);
        set(&mut eval.timeout_secs, &self.eval_timeout);
        if self.eval_cpus.is_some() {
            eval.cpus = self.eval_cpus;
        }
        if self.eval_memory.is_some() {
            eval.memory = self.eval_memory;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn flags_override_file_override_defaults() {
        let (_dir, path) =
            file("[run]\nworkers = 3\n[episode]\nmax_turns = 10\n[backend]\nmodel = \"oracle\"\n");
        let mut flags = ConfigOverrides::default();
        flags.episode.max_turns = Some(5);
        let config =
            RunConfig::resolve(Some(ConfigOverrides::from_file(&path).unwrap()), flags).unwrap();
        assert_eq!(config.run.workers, 3);
        assert_eq!(config.episode.budgets.max_turns, 5);
        assert_eq!(config.backend.model, "oracle");
        let expected = Budgets {
            max_turns: 5,
            ..Budgets::default()
        };
        assert_eq!(config.episode.budgets, expected);
    }

    #[test]
    fn unknown_config_keys_are_rejected_by_name() {
        let (_dir, path) = file("[run]\nwrokers = 3\n");
        let err = ConfigOverrides::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("wrokers") && err.contains("run.toml"), "{err}");
        let (_dir, path) = file("workers = 3\n");
        let err = ConfigOverrides::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("workers"), "{err}");
    }

    #[test]
    fn a_chosen_model_gets_cwm_budgets_and_sampling() {
        let mut flags = ConfigOverrides::default();
        flags.backend.model = Some("oracle".into());
        let config = RunConfig::resolve(None, flags).unwrap();
        assert_eq!(config.episode.budgets, Budgets::default());
        assert_eq!(config.sampling, SamplingSettings::default());
        assert_eq!(config.sampling.temperature, 1.0);
    }

    #[test]
    fn zero_workers_is_an_error_naming_the_setting() {
        let mut flags = ConfigOverrides::default();
        flags.run.workers = Some(0);
        let err = RunConfig::resolve(None, flags).unwrap_err().to_string();
        assert!(err.contains("workers"), "{err}");
    }

    #[test]
    fn a_namespace_renames_the_selected_images_and_a_bad_template_is_named() {
        let mut flags = ConfigOverrides::default();
        flags.dataset.namespace = Some("localhost:5000/swebench".into());
        flags.dataset.instances = Some(vec!["fixtures__paginate-1".into()]);
        let config = RunConfig::resolve(None, flags.clone()).unwrap();
        let instances = config.dataset.load().unwrap();
        assert_eq!(
            instances[0].image_name(),
            "localhost:5000/swebench/sweb.eval.x86_64.fixtures_1776_paginate-1:latest"
        );
        flags.dataset.image_template = Some("mirror/{nope}".into());
        let config = RunConfig::resolve(None, flags).unwrap();
        let err = config.dataset.load().unwrap_err().to_string();
        assert!(
            err.contains("image-template") && err.contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn the_saved_tree_reads_back_the_same() {
        let config = RunConfig::default_job();
        let text = serde_json::to_string(&config).unwrap();
        let back: RunConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, config);
    }
}
