//! `LocalPolicy` behind the agent loop's `Policy` trait, on the SmolLM2 GGUF.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

mod common;

use cwm_agent::LocalPolicy;
use cwm_agent::{Message, Policy};
use cwm_engine::SamplingParams;

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn smollm2_policy_replies_and_reuses_the_cache() {
    let path = common::smollm2_path();
    let mut policy = LocalPolicy::load(&path, SamplingParams::default()).expect("load");
    assert!(policy.name().starts_with("local:"));
    assert_eq!(policy.count_tokens("Hello world"), 2);
    let mut messages = vec![Message::user("What is 2+2?")];
    let reply = policy.respond(&messages, 64).await.expect("first reply");
    assert_eq!(reply.finish_reason.as_deref(), Some("stop"), "{reply:?}");
    assert!(reply.text.contains('4'), "{reply:?}");
    let first_prompt = reply.prompt_tokens.expect("prompt tokens");
    messages.push(Message::assistant(reply.text.clone()));
    messages.push(Message::user("And 3+3?"));
    let reply = policy.respond(&messages, 8).await.expect("second reply");
    assert!(reply.completion_tokens.expect("completion tokens") <= 8);
    let stats = policy.stats();
    // The second prompt starts with the first prompt and reply, which stay cached.
    assert!(stats.tokens_reused >= first_prompt, "{stats:?}");
}
