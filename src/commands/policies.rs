//! Building a policy from a `--model` spec and the sampling settings.

use anyhow::Context;
use cwm_agent::LocalPolicy;
use cwm_agent::{
    parse_model_spec, ModelSpec, OpenAiConfig, OpenAiPolicy, OpenAiSampling, OraclePolicy, Policy,
    ReplayPolicy,
};
use cwm_engine::SamplingParams;

/// Sampling and request settings shared by `run` and `repro`.
#[derive(Debug, Clone, Default)]
pub struct PolicySettings {
    pub temperature: f64,
    pub top_p: f64,
    pub top_k: usize,
    pub seed: u64,
    pub max_action_tokens: usize,
    pub extra_body: Option<serde_json::Value>,
    pub tool_role: Option<String>,
    pub api_key: Option<String>,
    /// The served model's tokenizer, for `openai:` models.
    pub tokenizer: Option<std::path::PathBuf>,
}

/// Makes a fresh policy for `spec`. A local model is loaded from disk each time, so callers
/// build one per worker and reuse it across instances (its KV cache is per episode anyway).
pub fn build_policy(spec: &str, settings: &PolicySettings) -> anyhow::Result<Box<dyn Policy>> {
    let parsed = parse_model_spec(spec)?;
    anyhow::ensure!(
        settings.tokenizer.is_none() || matches!(parsed, ModelSpec::OpenAi { .. }),
        "--tokenizer is for openai: models; `{spec}` counts tokens its own way, so drop it"
    );
    let policy: Box<dyn Policy> = match parsed {
        ModelSpec::Oracle => Box::new(OraclePolicy::new()),
        ModelSpec::Replay { path } => Box::new(ReplayPolicy::load(&path)?),
        ModelSpec::OpenAi { model, base_url } => {
            let mut config = OpenAiConfig::new(model, base_url);
            if let Some(serde_json::Value::Object(extra)) = &settings.extra_body {
                config.extra_body.extend(extra.clone());
            }
            config.tool_role = settings.tool_role.clone();
            config.sampling = OpenAiSampling {
                temperature: settings.temperature,
                top_p: settings.top_p,
                top_k: settings.top_k,
                seed: Some(settings.seed),
            };
            if settings.api_key.is_some() {
                config.api_key = settings.api_key.clone();
            }
            let policy = OpenAiPolicy::new(config)?;
            match &settings.tokenizer {
                Some(path) => Box::new(policy.with_tokenizer(path)?),
                None => Box::new(policy),
            }
        }
        ModelSpec::Local { path } => {
            let sampling = SamplingParams {
                temperature: settings.temperature as f32,
                top_p: settings.top_p as f32,
                top_k: settings.top_k,
                seed: settings.seed,
                max_new_tokens: settings.max_action_tokens,
                ..SamplingParams::default()
            };
            Box::new(
                LocalPolicy::load(&path, sampling)
                    .with_context(|| format!("loading local model {}", path.display()))?,
            )
        }
    };
    Ok(policy)
}
