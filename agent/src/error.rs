//! The error types of the crate: [`AgentError`] (what stops an episode), [`PolicyError`] (a
//! model backend could not answer or be set up), and the causes they carry.
//!
//! Convention (as in the other library crates): each message is one line that already
//! includes the text of its cause, and the cause is also kept as the error's
//! [`std::error::Error::source`], so a caller can match on the kind and walk the chain. A
//! chain printer that leaves out causes whose text is already on the line (the binary's
//! `error_line`) prints each cause once. An episode's footer records the text of the
//! [`PolicyError`] or [`cwm_tools::EnvFailure`] that ended it.

use std::path::PathBuf;

use cwm_protocol::TrajectoryError;

/// Only a failing trajectory sink stops an episode with an error; everything else ends it
/// with an [`cwm_protocol::ExitStatus`].
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Trajectory(#[from] TrajectoryError),
}

/// Why a policy could not answer, or could not be set up. During an episode it ends the
/// episode with `model_error`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The request never got an HTTP answer (connection refused, timeout), after every retry.
    #[error("model server request to {url} failed after {attempts} attempt(s): {}", with_causes(.source))]
    Request {
        /// The chat-completions URL.
        url: String,
        /// Requests sent, retries included.
        attempts: u32,
        source: reqwest::Error,
    },
    /// Before a run starts: nothing listens at the model server's address.
    #[error("model server at {url} cannot be reached ({}); start it, or fix the URL in --model", with_causes(.source))]
    Unreachable {
        /// The URL probed (`<base>/models`).
        url: String,
        source: reqwest::Error,
    },
    /// The server answered with an error status (after every retry of 429 and 5xx).
    #[error("model server at {url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        /// The first 500 characters of the response body.
        body: String,
    },
    /// The server's answer is not a chat completion.
    #[error("model server at {url} sent a response without a message: {problem}")]
    BadResponse {
        url: String,
        #[source]
        problem: ResponseProblem,
    },
    /// A replay or oracle policy was asked for more turns than it holds.
    #[error("the replay has no assistant turn {turn} (it holds {available}); the recorded episode ended earlier")]
    ReplayExhausted {
        /// The turn asked for, from 1.
        turn: usize,
        available: usize,
    },
    /// A `--model` spec that is none of the accepted forms.
    #[error("invalid model spec {spec:?}: {problem}; use local:PATH, openai:MODEL[@URL], replay:FILE or oracle")]
    BadSpec { spec: String, problem: SpecProblem },
    /// reqwest could not build its client (e.g. no TLS backend).
    #[error("cannot build the HTTP client: {}", with_causes(.0))]
    HttpClient(#[source] reqwest::Error),
    /// The `--tokenizer` file could not be loaded.
    #[cfg(feature = "local")]
    #[error("cannot load the tokenizer {path}: {source}; give a tokenizer.json or a GGUF file")]
    Tokenizer {
        path: PathBuf,
        source: cwm_engine::LocalError,
    },
    /// A tokenizer was asked for in a build without the `local` feature.
    #[error(
        "cannot load the tokenizer {path}: this build has no `local` feature; rebuild with it"
    )]
    NoTokenizerSupport { path: PathBuf },
    /// The replay file could not be read.
    #[error("cannot read replay file {path}: {source}")]
    ReplayFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The replay file looks like a trajectory but cannot be read as one.
    #[error(transparent)]
    Trajectory(#[from] TrajectoryError),
    /// The oracle cannot turn the instance's gold patch into tool calls.
    #[error("oracle: gold patch of {instance_id}: {source}")]
    Oracle {
        instance_id: String,
        source: OracleError,
    },
    /// The in-process engine failed (see [`cwm_engine::LocalError`]).
    #[cfg(feature = "local")]
    #[error("local engine: {0}")]
    Local(#[from] cwm_engine::LocalError),
    /// The blocking task that runs the local engine panicked or was cancelled.
    #[error("local engine: the generation thread failed: {0}")]
    GenerationThread(#[source] tokio::task::JoinError),
}

impl PolicyError {
    /// Whether the serving infrastructure failed rather than the model: no answer, a 5xx or
    /// 429 after every retry, an auth or routing refusal (401, 403, 404: a setup error that
    /// would fail every episode), a malformed body, a crashed generation thread. A 400 or 413
    /// (the request refused, typically as too long for the model), a replay that ran out of
    /// turns, the oracle's or the local engine's own errors are not.
    pub fn is_infrastructure(&self) -> bool {
        match self {
            PolicyError::Request { .. }
            | PolicyError::Unreachable { .. }
            | PolicyError::BadResponse { .. }
            | PolicyError::HttpClient(_)
            | PolicyError::GenerationThread(_) => true,
            PolicyError::Status { status, .. } => !matches!(status, 400 | 413),
            _ => false,
        }
    }
}

/// What is wrong with a model server's answer ([`PolicyError::BadResponse`]).
#[derive(Debug, thiserror::Error)]
pub enum ResponseProblem {
    /// The body is not JSON.
    #[error("not JSON ({0})")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not a chat completion.
    #[error(transparent)]
    NotACompletion(serde_json::Error),
    /// A completion with an empty `choices` list.
    #[error("no choices")]
    NoChoices,
}

/// What is wrong with a `--model` spec ([`PolicyError::BadSpec`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecProblem {
    /// Neither `oracle` nor `KIND:...`.
    #[error("missing `KIND:`")]
    MissingKind,
    /// `KIND:` with nothing after it.
    #[error("nothing after the colon")]
    NothingAfterColon,
    /// A kind other than `local`, `openai` and `replay`.
    #[error("unknown kind {0:?}")]
    UnknownKind(String),
    /// `openai:MODEL@ADDRESS` where the address after the last `@` looks like a server's
    /// (`host:port`, a dotted name, `localhost`) but lacks `http://` or `https://`.
    #[error("{0:?} after the last `@` looks like a server address without http:// or https://; write @http://HOST:PORT/v1")]
    UrlWithoutScheme(String),
}

/// Why a gold patch cannot be replayed as tool calls ([`crate::policy::oracle_calls`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OracleError {
    /// The patch holds no file diff.
    #[error("the patch changes no file")]
    NoChanges,
    /// A file diff whose old and new paths differ.
    #[error("renames ({old} -> {new}) are not supported")]
    Rename { old: String, new: String },
    /// A file diff with `/dev/null` on both sides.
    #[error("a file diff without paths")]
    NoPaths,
    /// A hunk that only adds lines: an edit needs old text to search for.
    #[error("hunk {hunk} of {path} has no old lines to anchor an edit")]
    NoAnchor {
        path: String,
        /// The hunk's number in its file, from 1.
        hunk: usize,
    },
    /// An `@@` line that is not `@@ -A[,B] +C[,D] @@`.
    #[error("bad hunk header {header:?}")]
    BadHunkHeader { header: String },
    /// The patch ends before a hunk has all the lines its header counts.
    #[error("the patch ends inside a hunk")]
    EndsInsideHunk,
    /// A hunk line that starts with none of ` `, `-`, `+`, `\`.
    #[error("unexpected line in a hunk: {line:?}")]
    UnexpectedLine { line: String },
}

/// `err`'s text followed by each of its causes', `: `-separated. reqwest's own text hides
/// the cause that matters (e.g. `Connection refused`).
fn with_causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
