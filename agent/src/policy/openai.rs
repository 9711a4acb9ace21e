//! Chat completions over an OpenAI-compatible HTTP API (vLLM, llama.cpp's server, OpenAI).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{ModelReply, Policy, PolicyError};
use crate::error::ResponseProblem;
use cwm_protocol::chat::assistant_content;
use cwm_protocol::message::{Message, Role};

/// How to reach and call the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenAiConfig {
    /// E.g. `http://localhost:8000/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    /// Extra fields merged into every request body, e.g.
    /// `{"chat_template_kwargs": {"enable_thinking": true, "preserve_previous_think": true}}`.
    pub extra_body: Map<String, Value>,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Retries after 429, 5xx, timeouts and connection errors.
    pub max_retries: u32,
    /// First backoff; doubled after each retry.
    pub initial_backoff: Duration,
    /// Sends `tool: NAME` messages with this role instead (e.g. `user`), for servers that
    /// only accept the standard roles. `None` sends CWM's role unchanged, as vLLM needs.
    pub tool_role: Option<String>,
    /// Sampling fields sent with every request.
    pub sampling: OpenAiSampling,
}

/// The sampling fields of a chat-completions request. Defaults are CWM's SWE-bench
/// evaluation settings (temperature 1.0, top-p 0.95).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OpenAiSampling {
    /// 0 is greedy.
    pub temperature: f64,
    pub top_p: f64,
    /// 0 leaves it out; otherwise sent as `top_k`, the extra field vLLM and llama.cpp's
    /// server accept.
    pub top_k: usize,
    /// Sent as `seed`.
    pub seed: Option<u64>,
}

impl Default for OpenAiSampling {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 0.95,
            top_k: 0,
            seed: None,
        }
    }
}

impl OpenAiSampling {
    /// The request fields, exactly as sent.
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("temperature".into(), json!(self.temperature));
        fields.insert("top_p".into(), json!(self.top_p));
        if self.top_k > 0 {
            fields.insert("top_k".into(), json!(self.top_k));
        }
        if let Some(seed) = self.seed {
            fields.insert("seed".into(), json!(seed));
        }
        fields
    }
}

impl OpenAiConfig {
    /// Base URL from the argument, else `OPENAI_BASE_URL`, else OpenAI's; the key from
    /// `OPENAI_API_KEY`.
    pub fn new(model: impl Into<String>, base_url: Option<String>) -> Self {
        let base_url = base_url
            .or_else(|| std::env::var("OPENAI_BASE_URL").ok())
            .unwrap_or_else(|| "https://api.openai.com/v1".into());
        Self {
            base_url,
            api_key: std::env::var("OPENAI_API_KEY")
                .ok()
                .filter(|k| !k.is_empty()),
            model: model.into(),
            extra_body: Map::new(),
            request_timeout: Duration::from_secs(600),
            max_retries: 5,
            initial_backoff: Duration::from_secs(1),
            tool_role: None,
            sampling: OpenAiSampling::default(),
        }
    }

    /// The settings vLLM serving `facebook/cwm` needs for thinking mode.
    pub fn with_cwm_thinking(mut self) -> Self {
        self.extra_body.insert(
            "chat_template_kwargs".into(),
            json!({"enable_thinking": true, "preserve_previous_think": true}),
        );
        self
    }

    fn url(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

/// The `openai` policy.
pub struct OpenAiPolicy {
    config: OpenAiConfig,
    client: reqwest::Client,
    /// The served model's tokenizer, for exact token counts; without one they are estimated.
    tokenizer: Option<(TokenCounter, std::path::PathBuf)>,
}

/// Counts a text's tokens; `None` when the tokenizer fails on it.
type TokenCounter = Box<dyn Fn(&str) -> Option<usize> + Send + Sync>;

impl OpenAiPolicy {
    pub fn new(config: OpenAiConfig) -> Result<Self, PolicyError> {
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(PolicyError::HttpClient)?;
        Ok(Self {
            config,
            client,
            tokenizer: None,
        })
    }

    /// Counts tokens with the tokenizer at `path` (a `tokenizer.json`, or a GGUF file's
    /// metadata) instead of the estimate: budgets, cuts and the budget block then match what
    /// the server's model sees.
    ///
    /// Errors: the file cannot be loaded, or the crate was built without the `local` feature.
    #[cfg(feature = "local")]
    pub fn with_tokenizer(mut self, path: &std::path::Path) -> Result<Self, PolicyError> {
        use cwm_engine::Tokenizer;
        let is_gguf = path.extension().is_some_and(|e| e == "gguf");
        let loaded = if is_gguf {
            Tokenizer::from_gguf_file(path)
        } else {
            Tokenizer::from_json_file(path)
        };
        let tokenizer = loaded.map_err(|source| PolicyError::Tokenizer {
            path: path.to_path_buf(),
            source,
        })?;
        let count: TokenCounter =
            Box::new(move |text| tokenizer.encode(text).ok().map(|ids| ids.len()));
        self.tokenizer = Some((count, path.to_path_buf()));
        Ok(self)
    }

    /// Without the `local` feature there is no tokenizer to load.
    #[cfg(not(feature = "local"))]
    pub fn with_tokenizer(self, path: &std::path::Path) -> Result<Self, PolicyError> {
        Err(PolicyError::NoTokenizerSupport {
            path: path.to_path_buf(),
        })
    }

    fn body(&self, messages: &[Message], max_tokens: usize) -> Value {
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| json!({"role": self.role(&m.role), "content": m.content}))
            .collect();
        let mut body = Map::new();
        body.insert("model".into(), json!(self.config.model));
        body.insert("messages".into(), json!(messages));
        body.insert("max_tokens".into(), json!(max_tokens));
        body.extend(self.config.sampling.fields());
        // `--extra-body` wins over everything, as the user's explicit override.
        for (k, v) in &self.config.extra_body {
            body.insert(k.clone(), v.clone());
        }
        Value::Object(body)
    }

    /// The sampling fields as every request sends them: `--extra-body` wins over the flags.
    fn sampling_sent(&self) -> Map<String, Value> {
        let mut sent = self.config.sampling.fields();
        for key in ["temperature", "top_p", "top_k", "seed"] {
            if let Some(value) = self.config.extra_body.get(key) {
                sent.insert(key.into(), value.clone());
            }
        }
        sent
    }

    fn role(&self, role: &Role) -> String {
        match (role, &self.config.tool_role) {
            (Role::Tool(_), Some(mapped)) => mapped.clone(),
            _ => role.as_string(),
        }
    }

    /// One POST, and whether (and when) a failure is worth retrying.
    async fn attempt(&self, body: &Value) -> Result<Value, (Retry, PolicyError)> {
        let url = self.config.url();
        let mut request = self.client.post(&url).json(body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| {
            let retry = e.is_timeout() || e.is_connect() || e.is_request();
            (Retry::backoff_if(retry), request_error(&url, e))
        })?;
        let status = response.status();
        let retry_after = retry_after(&response);
        let text = response
            .text()
            .await
            .map_err(|e| (Retry::Backoff, request_error(&url, e)))?;
        if !status.is_success() {
            let retry = match retry_after {
                Some(after) if status.as_u16() == 429 => Retry::After(after),
                _ => Retry::backoff_if(status.as_u16() == 429 || status.is_server_error()),
            };
            let body = text.chars().take(500).collect();
            let error = PolicyError::Status {
                url,
                status: status.as_u16(),
                body,
            };
            return Err((retry, error));
        }
        serde_json::from_str(&text).map_err(|e| {
            let problem = ResponseProblem::NotJson(e);
            (Retry::No, PolicyError::BadResponse { url, problem })
        })
    }
}

/// A failed request, counted as one attempt (the retry loop sets the final count).
fn request_error(url: &str, source: reqwest::Error) -> PolicyError {
    PolicyError::Request {
        url: url.to_string(),
        attempts: 1,
        source,
    }
}

#[async_trait]
impl Policy for OpenAiPolicy {
    async fn respond(
        &mut self,
        messages: &[Message],
        max_tokens: usize,
    ) -> Result<ModelReply, PolicyError> {
        let body = self.body(messages, max_tokens);
        let start = Instant::now();
        let mut backoff = self.config.initial_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(&body).await {
                Ok(json) => return parse_reply(&self.config.url(), &json, start.elapsed()),
                Err((Retry::Backoff, _)) if attempt <= self.config.max_retries => {
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
                // The server said when: wait that long (at most one request timeout).
                Err((Retry::After(after), _)) if attempt <= self.config.max_retries => {
                    tokio::time::sleep(after.min(self.config.request_timeout)).await;
                }
                Err((_, PolicyError::Request { url, source, .. })) => {
                    return Err(PolicyError::Request {
                        url,
                        attempts: attempt,
                        source,
                    })
                }
                Err((_, e)) => return Err(e),
            }
        }
    }

    /// `GET <base>/models`: any HTTP answer (servers without that route say 404) means a
    /// server listens; only a refused or failed connection is an error.
    async fn check_ready(&mut self) -> Result<(), PolicyError> {
        let url = format!("{}/models", self.config.base_url.trim_end_matches('/'));
        match self.client.get(&url).send().await {
            Err(source) if source.is_connect() => Err(PolicyError::Unreachable { url, source }),
            _ => Ok(()),
        }
    }

    fn name(&self) -> String {
        self.config.model.clone()
    }

    fn count_tokens(&self, text: &str) -> usize {
        match &self.tokenizer {
            Some((count, _)) => count(text).unwrap_or_else(|| cwm_tools::approx_tokens(text)),
            None => cwm_tools::approx_tokens(text),
        }
    }

    fn config(&self) -> Value {
        json!({
            "kind": "openai",
            "base_url": self.config.base_url,
            "model": self.config.model,
            "extra_body": self.config.extra_body,
            "tool_role": self.config.tool_role,
            "sampling_sent": self.sampling_sent(),
            "token_counts": match &self.tokenizer {
                Some((_, path)) => format!("tokenizer {}", path.display()),
                None => "estimate (one token per 4 bytes; give --tokenizer for exact counts)".into(),
            },
        })
    }
}

/// Whether a failed request is worth another try.
enum Retry {
    No,
    /// After the exponential backoff.
    Backoff,
    /// After what the server's `Retry-After` said.
    After(Duration),
}

impl Retry {
    fn backoff_if(retry: bool) -> Self {
        if retry {
            Self::Backoff
        } else {
            Self::No
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is left to the backoff).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let seconds: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
    /// vLLM's reasoning parser (and others) return the thinking separately.
    #[serde(default, alias = "reasoning")]
    reasoning_content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<usize>,
    completion_tokens: Option<usize>,
}

fn parse_reply(url: &str, json: &Value, latency: Duration) -> Result<ModelReply, PolicyError> {
    let completion: Completion =
        serde_json::from_value(json.clone()).map_err(|e| PolicyError::BadResponse {
            url: url.to_string(),
            problem: ResponseProblem::NotACompletion(e),
        })?;
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(PolicyError::BadResponse {
            url: url.to_string(),
            problem: ResponseProblem::NoChoices,
        });
    };
    let content = choice.message.content.unwrap_or_default();
    let text = match choice.message.reasoning_content.filter(|r| !r.is_empty()) {
        // Exactly as generated: a reasoning parser splits the text at `</think>` and keeps
        // both sides as they are; the prompt supplied the opening `<think>\n`.
        Some(reasoning) if reasoning.starts_with("<think>") => {
            format!("{reasoning}</think>{content}")
        }
        Some(reasoning) => format!(
            "{}{reasoning}</think>{content}",
            cwm_protocol::chat::THINK_PREFIX
        ),
        // A thinking model's template opened `<think>` in the prompt; the reply closes it.
        None if content.contains("</think>") => assistant_content(&content),
        None => content,
    };
    let usage = completion.usage;
    Ok(ModelReply {
        text,
        prompt_tokens: usage.as_ref().and_then(|u| u.prompt_tokens),
        completion_tokens: usage.as_ref().and_then(|u| u.completion_tokens),
        latency,
        finish_reason: choice.finish_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_reassembles_thinking() {
        let json = json!({"choices": [{"message": {"content": "ok</think>\n<tool: bash>\nls\n</tool>"}, "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 10, "completion_tokens": 5}});
        let r = parse_reply("u", &json, Duration::ZERO).unwrap();
        assert_eq!(r.text, "<think>\nok</think>\n<tool: bash>\nls\n</tool>");
        assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(10), Some(5)));
        let json =
            json!({"choices": [{"message": {"content": "\nA", "reasoning_content": "R\n"}}]});
        assert_eq!(
            parse_reply("u", &json, Duration::ZERO).unwrap().text,
            "<think>\nR\n</think>\nA"
        );
        // Nothing is added or trimmed.
        let json = json!({"choices": [{"message": {"content": "A", "reasoning_content": "R"}}]});
        assert_eq!(
            parse_reply("u", &json, Duration::ZERO).unwrap().text,
            "<think>\nR</think>A"
        );
        assert!(parse_reply("u", &json!({"choices": []}), Duration::ZERO).is_err());
    }

    #[test]
    fn body_passes_extra_fields_and_maps_tool_roles() {
        let mut config = OpenAiConfig::new("m", Some("http://x/v1/".into())).with_cwm_thinking();
        assert_eq!(config.url(), "http://x/v1/chat/completions");
        config.tool_role = Some("user".into());
        let policy = OpenAiPolicy::new(config).unwrap();
        let body = policy.body(&[Message::tool("bash", "o")], 7);
        assert_eq!(body["messages"][0]["role"], "user");
        assert_eq!(body["max_tokens"], 7);
        assert_eq!(body["chat_template_kwargs"]["enable_thinking"], true);
    }
}
