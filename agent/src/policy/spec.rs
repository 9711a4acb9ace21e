//! `--model` specs: `local:PATH`, `openai:MODEL[@URL]`, `replay:FILE`, `oracle`.

use std::path::PathBuf;

use super::PolicyError;
use crate::error::SpecProblem;

/// A parsed model spec. Construct the policy from it with the matching type:
/// [`super::OpenAiPolicy`], [`super::ReplayPolicy`], [`super::OraclePolicy`].
///
/// INTEGRATION POINT (local engine): `Local` is built by
/// `crate::LocalPolicy::load(path, sampling)`, which implements [`super::Policy`]
/// (owned by the local-engine module; see `src/commands/policies.rs` for the wiring).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// A GGUF file or Hugging Face checkpoint directory for the in-process engine.
    Local { path: PathBuf },
    /// A model behind an OpenAI-compatible server; `base_url` overrides `OPENAI_BASE_URL`.
    OpenAi {
        model: String,
        base_url: Option<String>,
    },
    /// A recorded trajectory (`.jsonl`) or a script file of assistant turns.
    Replay { path: PathBuf },
    /// Solves the task from its gold patch.
    Oracle,
}

/// Parses a model spec; the error says which forms are accepted.
pub fn parse_model_spec(spec: &str) -> Result<ModelSpec, PolicyError> {
    let spec = spec.trim();
    let bad = |problem: SpecProblem| PolicyError::BadSpec {
        spec: spec.to_string(),
        problem,
    };
    if spec == "oracle" {
        return Ok(ModelSpec::Oracle);
    }
    let (kind, rest) = spec
        .split_once(':')
        .ok_or_else(|| bad(SpecProblem::MissingKind))?;
    if rest.is_empty() {
        return Err(bad(SpecProblem::NothingAfterColon));
    }
    match kind {
        "local" => Ok(ModelSpec::Local { path: rest.into() }),
        "replay" => Ok(ModelSpec::Replay { path: rest.into() }),
        "openai" => openai_spec(rest).map_err(bad),
        other => Err(bad(SpecProblem::UnknownKind(other.to_string()))),
    }
}

/// `MODEL@URL`, split at the last `@` that starts a URL (model names may contain `@`). A
/// last part that looks like a server address without its scheme (`host:8000`,
/// `10.0.0.1`, `localhost`) is an error rather than part of the model name, which would
/// silently send the requests to the default URL.
fn openai_spec(rest: &str) -> Result<ModelSpec, SpecProblem> {
    match rest.rsplit_once('@') {
        Some((model, url)) if url.starts_with("http://") || url.starts_with("https://") => {
            Ok(ModelSpec::OpenAi {
                model: model.to_string(),
                base_url: Some(url.to_string()),
            })
        }
        Some((_, host)) if host.contains([':', '.']) || host == "localhost" => {
            Err(SpecProblem::UrlWithoutScheme(host.to_string()))
        }
        _ => Ok(ModelSpec::OpenAi {
            model: rest.to_string(),
            base_url: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(parse_model_spec("oracle").unwrap(), ModelSpec::Oracle);
        assert_eq!(
            parse_model_spec("local:/m/x.gguf").unwrap(),
            ModelSpec::Local {
                path: "/m/x.gguf".into()
            }
        );
        assert_eq!(
            parse_model_spec("openai:facebook/cwm@http://h:8000/v1").unwrap(),
            ModelSpec::OpenAi {
                model: "facebook/cwm".into(),
                base_url: Some("http://h:8000/v1".into())
            }
        );
        assert_eq!(
            parse_model_spec("openai:gpt@x").unwrap(),
            ModelSpec::OpenAi {
                model: "gpt@x".into(),
                base_url: None
            }
        );
        assert_eq!(
            parse_model_spec("replay:t.jsonl").unwrap(),
            ModelSpec::Replay {
                path: "t.jsonl".into()
            }
        );
        assert!(parse_model_spec("gpt4")
            .unwrap_err()
            .to_string()
            .contains("openai:MODEL"));
        assert!(parse_model_spec("foo:bar").is_err());
        // A model name with `@` still works when a URL follows.
        assert_eq!(
            parse_model_spec("openai:m@v1.5@https://h.example/v1").unwrap(),
            ModelSpec::OpenAi {
                model: "m@v1.5".into(),
                base_url: Some("https://h.example/v1".into())
            }
        );
    }

    #[test]
    fn a_server_address_without_scheme_is_an_error() {
        for (spec, host) in [
            ("openai:cwm@host:8000", "host:8000"),
            ("openai:cwm@10.0.0.2:8000/v1", "10.0.0.2:8000/v1"),
            ("openai:cwm@gpu.example.com", "gpu.example.com"),
            ("openai:cwm@localhost", "localhost"),
        ] {
            let err = parse_model_spec(spec).unwrap_err();
            assert!(
                matches!(
                    &err,
                    PolicyError::BadSpec {
                        problem: SpecProblem::UrlWithoutScheme(h),
                        ..
                    } if h == host
                ),
                "{spec}: {err}"
            );
            assert!(err.to_string().contains("@http://HOST:PORT/v1"), "{err}");
        }
    }
}
