//! Tokenizers: from GGUF metadata (byte-level BPE) or a Hugging Face `tokenizer.json`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use super::error::{LocalError, Result};

/// GGML token types that are matched verbatim in text (CONTROL and USER_DEFINED).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Llama-3's pre-tokenizer split (llama.cpp `llama3` / HF tokenizer.json).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

fn tok_err(e: impl std::fmt::Display) -> LocalError {
    LocalError::Tokenizer(e.to_string())
}

impl Tokenizer {
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| LocalError::Tokenizer(format!("{}: {e}", path.display())))?;
        Ok(Self { inner })
    }

    /// Reads only the metadata of the GGUF file at `path` (no weights).
    pub fn from_gguf_file(path: &Path) -> Result<Self> {
        let mut file = std::fs::File::open(path).map_err(LocalError::io(path))?;
        let content = Content::read(&mut file).map_err(|e| LocalError::Gguf {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        Self::from_gguf(&content)
    }

    /// Builds the tokenizer a GGUF file describes (`tokenizer.ggml.model` = gpt2).
    pub fn from_gguf(content: &Content) -> Result<Self> {
        let md = &content.metadata;
        let model = meta_str(md, "tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(LocalError::Tokenizer(format!(
                "tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`)"
            )));
        }
        let tokens = meta_strings(md, "tokenizer.ggml.tokens")?;
        let merges = meta_strings(md, "tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| tok_err(format!("merge `{m}` has no space")))
            })
            .collect::<Result<Vec<_>>>()?;
        let vocab: tokenizers::models::bpe::Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(tok_err)?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        let pre = md
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .map(String::as_str)
            .unwrap_or("default");
        inner.with_pre_tokenizer(Some(pre_tokenizer(pre)?));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        inner.add_special_tokens(&special_tokens(md, &tokens)?);
        Ok(Self { inner })
    }

    /// Token ids of `text`; special tokens written in the text are recognised.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode_fast(text, false).map_err(tok_err)?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(tok_err)
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}

/// The pre-tokenizer llama.cpp uses for each `tokenizer.ggml.pre` name.
fn pre_tokenizer(pre: &str) -> Result<PreTokenizerWrapper> {
    let byte_level = |regex| ByteLevel::new(false, true, regex);
    match pre {
        // GPT-2 regex, with every digit split off first.
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            Ok(PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                PreTokenizerWrapper::ByteLevel(byte_level(true)),
            ])))
        }
        "gpt2" | "default" | "gpt-2" => Ok(PreTokenizerWrapper::ByteLevel(byte_level(true))),
        "llama3" | "llama-v3" | "llama-bpe" | "smaug-bpe" => {
            let split = Split::new(
                SplitPattern::Regex(LLAMA3_SPLIT.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(tok_err)?;
            Ok(PreTokenizerWrapper::Sequence(Sequence::new(vec![
                PreTokenizerWrapper::Split(split),
                PreTokenizerWrapper::ByteLevel(byte_level(false)),
            ])))
        }
        other => Err(LocalError::Tokenizer(format!(
            "pre-tokenizer `{other}` is not supported (supported: smollm, starcoder, gpt2, llama3)"
        ))),
    }
}

fn special_tokens(md: &HashMap<String, Value>, tokens: &[String]) -> Result<Vec<AddedToken>> {
    let types = match md.get("tokenizer.ggml.token_type") {
        Some(v) => v.to_vec().map_err(tok_err)?.clone(),
        None => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    for (tok, ty) in tokens.iter().zip(types) {
        let ty = ty.to_i32().map_err(tok_err)?;
        if ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED {
            out.push(AddedToken::from(tok.clone(), true).normalized(false));
        }
    }
    Ok(out)
}

pub(crate) fn meta_str<'a>(md: &'a HashMap<String, Value>, key: &str) -> Result<&'a str> {
    md.get(key)
        .ok_or_else(|| tok_err(format!("GGUF metadata lacks `{key}`")))?
        .to_string()
        .map(String::as_str)
        .map_err(tok_err)
}

fn meta_strings(md: &HashMap<String, Value>, key: &str) -> Result<Vec<String>> {
    let values = md
        .get(key)
        .ok_or_else(|| tok_err(format!("GGUF metadata lacks `{key}`")))?
        .to_vec()
        .map_err(tok_err)?;
    values
        .iter()
        .map(|v| v.to_string().cloned().map_err(tok_err))
        .collect()
}
