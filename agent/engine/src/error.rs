//! Errors of the local engine. Each names what was wrong and what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot read {path}: {source} (check that the path exists and is readable)")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a usable GGUF model: {detail}")]
    Gguf { path: PathBuf, detail: String },
    #[error("model config {path} is invalid: {detail}")]
    Config { path: PathBuf, detail: String },
    #[error("the checkpoint has no tensor `{0}`: is it a Llama-family (Llama/CWM) model?")]
    MissingTensor(String),
    #[error(
        "tensor `{name}` has shape {got:?}, expected {want:?}: the weights do not match the config"
    )]
    BadShape {
        name: String,
        got: Vec<usize>,
        want: Vec<usize>,
    },
    #[error("cannot build the tokenizer: {0}")]
    Tokenizer(String),
    #[error("cannot render the chat template: {0}")]
    Template(String),
    #[error("token id {id} is outside the vocabulary of {vocab} tokens")]
    BadToken { id: u32, vocab: usize },
    #[error("a prompt of {len} tokens exceeds the model's context of {max}: shorten the conversation or raise the context limit")]
    ContextOverflow { len: usize, max: usize },
    #[error("the prompt is empty: give the model at least one token")]
    EmptyPrompt,
    #[error("{path} is neither a GGUF file nor a checkpoint directory with config.json")]
    UnknownFormat { path: PathBuf },
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("the generation worker stopped unexpectedly: {0}")]
    Worker(String),
}

impl LocalError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| LocalError::Io { path, source }
    }
}

pub type Result<T> = std::result::Result<T, LocalError>;
