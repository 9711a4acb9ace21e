//! Building a policy (the model backend) from the run's backend and sampling settings.

use cwm_agent::{
    parse_model_spec, LocalPolicy, ModelSpec, OpenAiConfig, OpenAiPolicy, OpenAiSampling,
    OraclePolicy, Policy, PolicyError, ReplayPolicy,
};
use cwm_engine::SamplingParams;

use crate::config::{BackendSettings, SamplingSettings};
use crate::error::PipelineError;

/// Makes a fresh policy for `backend.model`. A local model is loaded from disk each time, so
/// callers build one per worker and reuse it across instances (its KV cache is per episode).
/// `max_action_tokens` caps a local model's reply. Errors: a bad model spec, a tokenizer given
/// for a model that counts its own tokens, a model or tokenizer that cannot be loaded.
pub fn build_policy(
    backend: &BackendSettings,
    sampling: &SamplingSettings,
    max_action_tokens: usize,
) -> Result<Box<dyn Policy>, PipelineError> {
    let spec = &backend.model;
    let parsed = parse_model_spec(spec)?;
    if backend.tokenizer.is_some() && !matches!(parsed, ModelSpec::OpenAi { .. }) {
        return Err(PipelineError::InvalidSetting {
            setting: "--tokenizer".into(),
            why: format!(
                "it is for openai: models; `{spec}` counts tokens its own way, so drop it"
            ),
        });
    }
    Ok(match parsed {
        ModelSpec::Oracle => Box::new(OraclePolicy::new()),
        ModelSpec::Replay { path } => Box::new(ReplayPolicy::load(&path)?),
        ModelSpec::OpenAi { model, base_url } => openai(backend, sampling, model, base_url)?,
        ModelSpec::Local { path } => {
            let params = SamplingParams {
                temperature: sampling.temperature as f32,
                top_p: sampling.top_p as f32,
                top_k: sampling.top_k,
                seed: sampling.seed,
                max_new_tokens: max_action_tokens,
                ..SamplingParams::default()
            };
            let policy = LocalPolicy::load(&path, params)
                .map_err(|source| PipelineError::LocalModel { path, source })?;
            Box::new(policy)
        }
    })
}

fn openai(
    backend: &BackendSettings,
    sampling: &SamplingSettings,
    model: String,
    base_url: Option<String>,
) -> Result<Box<dyn Policy>, PolicyError> {
    let mut config = OpenAiConfig::new(model, base_url);
    if let Some(serde_json::Value::Object(extra)) = &backend.extra_body {
        config.extra_body.extend(extra.clone());
    }
    config.tool_role = backend.tool_role.clone();
    config.sampling = OpenAiSampling {
        temperature: sampling.temperature,
        top_p: sampling.top_p,
        top_k: sampling.top_k,
        seed: Some(sampling.seed),
    };
    if backend.api_key.is_some() {
        config.api_key = backend.api_key.clone();
    }
    let policy = OpenAiPolicy::new(config)?;
    Ok(match &backend.tokenizer {
        Some(path) => Box::new(policy.with_tokenizer(path)?),
        None => Box::new(policy),
    })
}
