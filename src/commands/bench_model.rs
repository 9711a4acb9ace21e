//! `cwm-bench bench model PATH`: prefill and decode speed of the local engine, and the
//! tokens it prefills over a multi-turn chat (or a recorded episode) against the final
//! context length.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use cwm_agent::render_prompt;
use cwm_agent::Message;
use cwm_engine::{default_device, ChatMessage, Engine, ModelFormat, SamplingParams};

#[derive(clap::Args, Debug, Clone)]
pub struct ModelBenchArgs {
    /// GGUF file or Hugging Face checkpoint directory.
    pub path: PathBuf,
    /// Worker threads for the kernels and gemm.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Prompt length for the prefill figure.
    #[arg(long, default_value_t = 512)]
    pub prompt_tokens: usize,
    /// Tokens to generate for the decode figure.
    #[arg(long, default_value_t = 128)]
    pub gen_tokens: usize,
    /// Chat turns for the prefix-reuse figure (0 skips it; needs a chat template).
    #[arg(long, default_value_t = 4)]
    pub chat_turns: usize,
    /// A recorded trajectory (`runs/ID/trajectories/*.jsonl`) to play through the engine for
    /// the prefix-reuse figure: each turn's prompt, then its recorded reply.
    #[arg(long)]
    pub episode: Option<PathBuf>,
}

/// The benchmark prompt: the same ids `benches/llamacpp.py` uses.
pub fn bench_tokens(n: usize, vocab: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7919 + 13) % vocab) as u32).collect()
}

pub fn run(args: ModelBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.threads > 0, "--threads must be at least 1");
    anyhow::ensure!(args.prompt_tokens > 0, "--prompt-tokens must be at least 1");
    // rayon (our kernels) and candle's gemm both read this before their first use.
    std::env::set_var("RAYON_NUM_THREADS", args.threads.to_string());
    let t = Instant::now();
    let mut engine = Engine::load(&args.path, &default_device())
        .with_context(|| format!("loading {}", args.path.display()))?;
    println!("model: {}", args.path.display());
    println!(
        "load: {:.2} s, threads: {}",
        t.elapsed().as_secs_f64(),
        args.threads
    );
    let vocab = engine.model().config.vocab_size;
    // Warm-up: page in the weights and start the thread pool.
    engine.prefill(&bench_tokens(16, vocab))?;
    engine.reset();
    speed(&mut engine, &args, vocab)?;
    if let Some(trajectory) = &args.episode {
        episode_reuse(&mut engine, trajectory)?;
    }
    if args.chat_turns > 0 {
        match chat_reuse(&mut engine, args.chat_turns) {
            Ok(()) => {}
            Err(e) => println!("multi-turn: skipped ({e})"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn speed(engine: &mut Engine, args: &ModelBenchArgs, vocab: usize) -> anyhow::Result<()> {
    let prompt = bench_tokens(args.prompt_tokens, vocab);
    let t = Instant::now();
    engine.prefill(&prompt)?;
    let prefill = t.elapsed().as_secs_f64();
    let params = SamplingParams {
        max_new_tokens: args.gen_tokens,
        // Never stop early: the figure is for exactly gen_tokens tokens.
        stop_tokens: vec![u32::MAX],
        ..Default::default()
    };
    let g = engine.generate(&prompt, &params, &mut |_| true)?;
    let decode = g.decode_time.as_secs_f64();
    // The first generated token comes from the prefill logits; each later one costs a step.
    let steps = g.tokens.len().saturating_sub(1).max(1);
    println!(
        "prefill: {} tokens in {:.3} s = {:.1} tok/s",
        prompt.len(),
        prefill,
        prompt.len() as f64 / prefill
    );
    println!(
        "decode: {} tokens in {:.3} s = {:.1} tok/s",
        steps,
        decode,
        steps as f64 / decode
    );
    Ok(())
}

/// The model's prompt for `messages`, as the local policy renders it.
fn render(engine: &Engine, messages: &[Message]) -> anyhow::Result<Vec<u32>> {
    Ok(engine.encode(&render_prompt(engine, messages)?)?)
}

/// Plays a recorded episode through the engine: every turn prefills its prompt, then runs
/// the recorded reply through as if generated. Prints tokens run against the final context.
fn episode_reuse(engine: &mut Engine, path: &std::path::Path) -> anyhow::Result<()> {
    let trajectory = cwm_agent::read_trajectory(path)
        .with_context(|| format!("reading the trajectory {}", path.display()))?;
    engine.reset();
    let start = engine.stats().tokens_processed;
    let mut messages = trajectory.header.messages.clone();
    for turn in &trajectory.turns {
        let mut ids = render(engine, &messages)?;
        engine.prefill(&ids)?;
        // The reply's tokens, fed back as generation feeds them (CWM's prompt already ends
        // with the opening `<think>`).
        let completion = match engine.format() {
            ModelFormat::HfCheckpoint => turn.raw.strip_prefix("<think>\n").unwrap_or(&turn.raw),
            ModelFormat::Gguf => &turn.raw,
        };
        ids.extend(engine.encode(completion)?);
        engine.prefill(&ids)?;
        messages.push(Message::assistant(turn.raw.clone()));
        messages.extend(turn.observation.clone());
    }
    let final_ids = render(engine, &messages)?;
    engine.prefill(&final_ids)?;
    let processed = engine.stats().tokens_processed - start;
    println!(
        "episode: {} turns, {} tokens run through the model, final context {} tokens ({:.3}x)",
        trajectory.turns.len(),
        processed,
        final_ids.len(),
        processed as f64 / final_ids.len() as f64
    );
    Ok(())
}

/// A fixed chat: prints tokens run through the model against the final context length.
fn chat_reuse(engine: &mut Engine, turns: usize) -> anyhow::Result<()> {
    engine.reset();
    let start = engine.stats().tokens_processed;
    let params = SamplingParams {
        max_new_tokens: 48,
        ..Default::default()
    };
    let questions = [
        "List the files in a Python project that you would read first.",
        "Write a bash command that counts lines in all .py files.",
        "Now explain what the command does.",
        "How would you run only the failing tests with pytest?",
    ];
    let mut messages = Vec::new();
    for i in 0..turns {
        messages.push(ChatMessage::new("user", questions[i % questions.len()]));
        let ids = engine.encode(&engine.render_chat(&messages)?)?;
        let g = engine.generate(&ids, &params, &mut |_| true)?;
        messages.push(ChatMessage::new("assistant", engine.decode(&g.tokens)?));
    }
    messages.push(ChatMessage::new("user", "Thanks."));
    let final_ids = engine.encode(&engine.render_chat(&messages)?)?;
    engine.prefill(&final_ids)?;
    let processed = engine.stats().tokens_processed - start;
    println!(
        "multi-turn: {} turns, {} tokens run through the model, final context {} tokens ({:.3}x)",
        turns,
        processed,
        final_ids.len(),
        processed as f64 / final_ids.len() as f64
    );
    Ok(())
}
