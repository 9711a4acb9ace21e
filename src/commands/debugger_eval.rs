//! `cwm-bench debugger-eval`: how well a model predicts the next frame of execution traces
//! ([`cwm_bench::pipeline::debugger`], docs/traces.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use cwm_agent::ModelSpec;
use cwm_bench::pipeline::debugger::{positions, prompt_and_truth, score, Report, TraceTokens};
use cwm_bench::pipeline::trace::{tokens, TraceExample};

use super::shared::{at_least, temp_beside};

#[derive(clap::Args, Debug)]
pub struct DebuggerEvalArgs {
    /// Examples written by `cwm-bench trace`.
    #[arg(long)]
    pub traces: PathBuf,
    /// `local:PATH` (the in-process engine) or `openai:MODEL[@URL]` (a server's
    /// `/completions` endpoint at URL, e.g. `openai:facebook/cwm@http://HOST:8000/v1`;
    /// without `@URL`, the `OPENAI_BASE_URL` environment variable, else
    /// `http://localhost:8000/v1`; `OPENAI_API_KEY`, if set, is sent as a bearer token).
    #[arg(long)]
    pub model: String,
    /// Positions to predict (at least 1), sampled over all examples (the call frame is always
    /// given).
    #[arg(long, default_value_t = 200, value_parser = at_least(1usize))]
    pub limit: usize,
    /// Seed of the sampling of positions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Tokens a prediction may take (at least 1).
    #[arg(long, default_value_t = 256, value_parser = at_least(1usize))]
    pub max_tokens: usize,
    /// Where to write the report as JSON (every prediction and its scores included); checked
    /// to be writable before the model is loaded.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: DebuggerEvalArgs) -> anyhow::Result<ExitCode> {
    let spec = model_spec(&args.model)?;
    if let Some(out) = &args.out {
        drop(temp_beside(out)?); // --out can be written: check before the work
    }
    let text = std::fs::read_to_string(&args.traces).with_context(|| {
        format!(
            "reading {} (written by `cwm-bench trace`)",
            args.traces.display()
        )
    })?;
    let examples: Vec<TraceExample> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            serde_json::from_str(l).with_context(|| {
                format!(
                    "{} line {}: not a trace example",
                    args.traces.display(),
                    n + 1
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let picked = positions(&examples, args.limit, args.seed);
    anyhow::ensure!(
        !picked.is_empty(),
        "{} has no frame to predict",
        args.traces.display()
    );
    let (mut predict, trace_tokens) = predictor(spec, args.max_tokens)?;
    println!("trace tokens: {trace_tokens}");
    let mut scores = Vec::new();
    for (i, p) in picked.iter().enumerate() {
        let example = &examples[p.example];
        let (prompt, truth) = prompt_and_truth(example, p.frame);
        let predicted = predict(&prompt)?;
        scores.push(score(example, p.frame, &truth, &predicted));
        if (i + 1) % 20 == 0 {
            eprintln!("{} of {} positions", i + 1, picked.len());
        }
    }
    let report = Report::of(scores, trace_tokens);
    print!("{}", report.table());
    if let Some(out) = &args.out {
        cwm_results::write_atomic(out, &serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing the report to --out {}", out.display()))?;
        println!("report: {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// What `--model` accepts here (the other commands' `replay:` and `oracle` act in episodes
/// and complete no text).
const ACCEPTED: &str = "debugger-eval takes local:PATH or openai:MODEL[@URL]";

/// The `--model` spec, if it is one debugger-eval can use; the error says what is wrong
/// with it and what is accepted.
fn model_spec(spec: &str) -> anyhow::Result<ModelSpec> {
    match cwm_agent::parse_model_spec(spec) {
        Ok(parsed @ (ModelSpec::Local { .. } | ModelSpec::OpenAi { .. })) => Ok(parsed),
        Ok(_) => {
            anyhow::bail!("--model {spec:?}: replay and oracle models complete no text; {ACCEPTED}")
        }
        Err(cwm_agent::PolicyError::BadSpec { spec, problem }) => {
            anyhow::bail!("invalid --model {spec:?}: {problem}; {ACCEPTED}")
        }
        Err(other) => Err(other.into()),
    }
}

type Predict = Box<dyn FnMut(&str) -> anyhow::Result<String>>;

/// A function from a prompt to the model's continuation, cut at the first frame separator,
/// and how the model reads the trace tokens (see [`TraceTokens`]).
fn predictor(spec: ModelSpec, max_tokens: usize) -> anyhow::Result<(Predict, TraceTokens)> {
    match spec {
        ModelSpec::Local { path } => local(&path, max_tokens),
        ModelSpec::OpenAi { model, base_url } => Ok((
            openai(model, base_url, max_tokens)?,
            TraceTokens::ServerText,
        )),
        other => anyhow::bail!("--model {other:?}: {ACCEPTED}"),
    }
}

/// The in-process engine, greedy. A vocabulary that has every trace token as one token
/// (CWM's) reads them natively and stops on `<|frame_sep|>`; any other reads them as text
/// and stops once the decoded text holds the separator.
fn local(path: &Path, max_tokens: usize) -> anyhow::Result<(Predict, TraceTokens)> {
    let device = cwm_engine::default_device();
    let mut engine = cwm_engine::Engine::load(path, &device)
        .with_context(|| format!("loading local model {}", path.display()))?;
    let frame = engine.encode(tokens::FRAME)?;
    let mut native = true;
    for token in tokens::ALL {
        native &= engine.encode(token)?.len() == 1;
    }
    let mode = if native {
        TraceTokens::Native
    } else {
        TraceTokens::Text
    };
    let predict: Predict = Box::new(move |prompt: &str| {
        let ids = engine.encode(prompt)?;
        let params = cwm_engine::SamplingParams {
            temperature: 0.0,
            max_new_tokens: max_tokens,
            stop_tokens: if native { frame.clone() } else { Vec::new() },
            ..cwm_engine::SamplingParams::default()
        };
        // Without the token, the separator's own tokens end the prediction.
        let mut seen: Vec<u32> = Vec::new();
        engine.generate(&ids, &params, &mut |tok| {
            seen.push(tok);
            native || !seen.ends_with(&frame)
        })?;
        let text = engine.decode(&seen)?;
        Ok(text
            .split(tokens::FRAME)
            .next()
            .unwrap_or_default()
            .to_string())
    });
    Ok((predict, mode))
}

/// A server's `/completions` endpoint, greedy, stopping at `<|frame_sep|>`.
fn openai(model: String, base_url: Option<String>, max_tokens: usize) -> anyhow::Result<Predict> {
    let base = base_url
        .or_else(|| std::env::var("OPENAI_BASE_URL").ok())
        .unwrap_or_else(|| "http://localhost:8000/v1".into());
    let url = format!("{}/completions", base.trim_end_matches('/'));
    let key = std::env::var("OPENAI_API_KEY").ok();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .build()
        .context("building the HTTP client")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    Ok(Box::new(move |prompt: &str| {
        let body = serde_json::json!({
            "model": model, "prompt": prompt, "max_tokens": max_tokens,
            "temperature": 0, "stop": [tokens::FRAME],
        });
        let mut request = client.post(&url).json(&body);
        if let Some(key) = &key {
            request = request.bearer_auth(key);
        }
        let (status, json) = runtime.block_on(async {
            let response = request
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            let status = response.status();
            let json: serde_json::Value = response
                .json()
                .await
                .with_context(|| format!("{url} answered no JSON"))?;
            anyhow::Ok((status, json))
        })?;
        anyhow::ensure!(status.is_success(), "{url} answered HTTP {status}: {json}");
        Ok(json["choices"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }))
}
