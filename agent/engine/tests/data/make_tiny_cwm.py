#!/usr/bin/env python3
"""Make the tiny random CWM used as the logits reference for the local engine.

Usage: python make_tiny_cwm.py [OUT_DIR]   (default: tiny_cwm/ beside this script)
Needs transformers 5.x (ships CwmForCausalLM), torch and safetensors.

Writes OUT_DIR/config.json and OUT_DIR/model.safetensors (f32) as saved by transformers,
plus OUT_DIR.expected.safetensors (beside the directory, so it is not a shard) with:
  tokens  (i64, [N])      the input token ids
  logits  (f32, [N, V])   CwmForCausalLM logits for one forward over all N tokens
No tokenizer: the tests feed raw token ids.
"""
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import CwmConfig, CwmForCausalLM

SEQ_LEN = 64  # four 16-token windows


def tiny_config():
    return CwmConfig(
        vocab_size=256,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=6,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        # Larger than the default 0.02 so that mistakes show up well above 1e-4.
        initializer_range=0.1,
        sliding_window=16,
        layer_types=[
            "full_attention",
            "sliding_attention",
            "sliding_attention",
            "full_attention",
            "sliding_attention",
            "sliding_attention",
        ],
        # A small original context so llama3 scaling touches low, medium and high frequencies.
        rope_parameters={
            "rope_type": "llama3",
            "rope_theta": 1_000_000.0,
            "factor": 4.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        },
        bos_token_id=1,
        eos_token_id=[2, 3],
        tie_word_embeddings=False,
    )


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "tiny_cwm")
    torch.manual_seed(0)
    config = tiny_config()
    model = CwmForCausalLM(config).to(torch.float32).eval()
    model.save_pretrained(out, safe_serialization=True)
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, config.vocab_size, (SEQ_LEN,), generator=gen)
    with torch.no_grad():
        logits = model(input_ids=tokens[None, :], use_cache=False).logits[0]
    save_file(
        {"tokens": tokens.to(torch.int64).contiguous(), "logits": logits.to(torch.float32).contiguous()},
        out.rstrip("/") + ".expected.safetensors",
    )
    for name in os.listdir(out):
        if name.endswith(".json") and name != "config.json":
            os.remove(os.path.join(out, name))  # generation_config.json etc. are not needed
    print(f"wrote tiny CWM to {out}: logits {tuple(logits.shape)}, |max| {logits.abs().max():.3f}")


if __name__ == "__main__":
    main()
