#!/usr/bin/env python3
"""Record llama.cpp's tokenization of the shipped models as test fixtures.

Writes tests/fixtures/tokenizer_smollm2.json and tests/fixtures/tokenizer_gemma3.json, which
tests/integration/tokenizer_models_test.cc must reproduce exactly.

Run with the llama.cpp Python bindings that tools/build-llamacpp.sh builds:
  LLAMA_CPP_LIB_PATH=.llamacpp/bin .llamacpp/venv/bin/python tools/make-tokenizer-fixtures.py

Bytes that need not be valid UTF-8 (pieces, decoded text) are stored as hex strings.
"""
import ctypes
import hashlib
import json
import os
import sys

import llama_cpp
from llama_cpp import Llama

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODELS = {
    "smollm2": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "models/gemma-3-270m-q4_k_m.gguf",
}

PARAGRAPH = (
    "The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst "
    "of times, it was the age of wisdom, it was the age of foolishness, it was the epoch of "
    "belief, it was the epoch of incredulity, it was the season of Light, it was the season of "
    "Darkness, it was the spring of hope, it was the winter of despair. In 1859, Charles "
    "Dickens wrote 45,000+ words; the price was $3.50 (about \u20ac2.90) per issue, or 12% "
    "less than expected!  Multiple   spaces,\ttabs,\n\nand newlines\r\nare all here... "
    "Don't, can't, won't, I'm, you're, they've, we'll, she'd. E-mail: someone@example.com; "
    "URL: https://example.org/path?q=1&r=two#frag."
)

TEXTS = [
    "Hello world",
    "Hello, world! How are you today?",
    " leading space",
    "   three leading spaces",
    "trailing spaces   ",
    "multiple    internal     spaces",
    "line one\nline two\n\nline four\n",
    "\n\n\n",
    "tabs\tand\t\ttabs",
    "mixed \t \n whitespace \r\n end",
    "numbers 12345 3.14 -42 1,000,000 0x1F",
    "1234567890",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
    '{"key": "value", "list": [1, 2, 3], "nested": {"a": null}}',
    "emoji: \U0001F600\U0001F680\U0001F44D\U0001F3FD \u2764\ufe0f",
    "CJK: \u4f60\u597d\uff0c\u4e16\u754c\u3002\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3002\ud55c\uad6d\uc5b4",
    "Accents: caf\u00e9, na\u00efve, r\u00e9sum\u00e9, \u00fcber, Stra\u00dfe, \u00e5ngstr\u00f6m, Ma\u00f1ana",
    "Cyrillic: \u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! Greek: \u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5",
    "Arabic: \u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
    "<bos>text with <eos> inside",
    "<|endoftext|>after end",
    "unicode spaces:\u00a0nbsp\u2003em\u3000ideographic",
    "don't you're I'll we've she'd it's DON'T",
    "UPPERCASE lowercase MiXeD CamelCaseWord snake_case_word",
    "a",
    "",
    "!!!???...,,,;;;",
    "https://github.com/ggml-org/llama.cpp/blob/master/src/llama-vocab.cpp#L100",
    "<0x41> <unk> <pad> [multimodal] <mask>",
    PARAGRAPH,
]

CONVERSATIONS = [
    [{"role": "user", "content": "Hi there!"}],
    [{"role": "system", "content": "You answer in French."}, {"role": "user", "content": "Hello"},
     {"role": "assistant", "content": "Bonjour !"}, {"role": "user", "content": "Thanks\n"}],
]

# (add_special, parse_special) combinations recorded for every text.
FLAGS = [(False, False), (True, True), (False, True)]


def long_text(texts):
    """A deterministic long input; the C++ test builds the same string."""
    return "".join(f"{i}: {texts[i % len(texts)]}\n" for i in range(3000))


def tokenize(vocab, data: bytes, add_special: bool, parse_special: bool):
    n_max = len(data) + 16
    buf = (llama_cpp.llama_token * n_max)()
    n = llama_cpp.llama_tokenize(vocab, data, len(data), buf, n_max, add_special, parse_special)
    if n < 0:
        raise RuntimeError(f"tokenize needs {-n} tokens")
    return list(buf[:n])


def detokenize(vocab, ids, remove_special=False, unparse_special=False) -> bytes:
    arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
    size = 64 + 64 * len(ids)
    out = ctypes.create_string_buffer(size)
    n = llama_cpp.llama_detokenize(vocab, arr, len(ids), out, size, remove_special, unparse_special)
    if n < 0:
        raise RuntimeError("detokenize buffer too small")
    return out.raw[:n]


def piece(vocab, token: int, special: bool) -> bytes:
    out = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(vocab, token, out, 256, 0, special)
    return out.raw[:n]


def ids_digest(ids):
    # sha256 over the ids as little-endian int32; the C++ test recomputes it
    return hashlib.sha256(b"".join(i.to_bytes(4, "little", signed=True) for i in ids)).hexdigest()


def make(name, rel_path):
    llm = Llama(model_path=os.path.join(ROOT, rel_path), vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)

    cases = []
    seen = set()
    for text in TEXTS:
        data = text.encode("utf-8")
        for add_special, parse_special in FLAGS:
            ids = tokenize(vocab, data, add_special, parse_special)
            seen.update(ids)
            cases.append({
                "text": text,
                "add_special": add_special,
                "parse_special": parse_special,
                "ids": ids,
                # llama_detokenize(remove_special=false, unparse_special=false)
                "decoded_hex": detokenize(vocab, ids).hex(),
            })

    # pieces of the first ids (specials, byte tokens) and of every id used above
    piece_ids = sorted(set(range(min(400, n_vocab))) | seen | {n_vocab - 1})
    pieces = [{"id": t, "hex": piece(vocab, t, True).hex(),
               "plain_hex": piece(vocab, t, False).hex()} for t in piece_ids]
    eog = [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)]

    long_ids = tokenize(vocab, long_text(TEXTS).encode("utf-8"), False, False)

    # The file's own chat template rendered with Jinja2, where the file carries one.
    chats = []
    template = llm.metadata.get("tokenizer.chat_template")
    if template:
        import jinja2
        env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
        for messages in CONVERSATIONS:
            for gen in (True, False):
                text = env.from_string(template).render(messages=messages, add_generation_prompt=gen,
                                                        bos_token="", eos_token="")
                chats.append({"messages": messages, "add_generation_prompt": gen, "text": text})

    out = {
        "generator": "tools/make-tokenizer-fixtures.py",
        "llama_cpp_python": llama_cpp.__version__,
        "model": rel_path,
        "n_vocab": n_vocab,
        "bos": llama_cpp.llama_vocab_bos(vocab),
        "eos": llama_cpp.llama_vocab_eos(vocab),
        "eog": eog,
        "cases": cases,
        "chats": chats,
        "pieces": pieces,
        "long_text": {"lines": 3000, "n_ids": len(long_ids), "sha256": ids_digest(long_ids),
                      "first_ids": long_ids[:64], "last_ids": long_ids[-64:]},
    }
    path = os.path.join(ROOT, "tests", "fixtures", f"tokenizer_{name}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=True, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"{path}: {len(cases)} cases, {len(pieces)} pieces, long text {len(long_ids)} ids")


def main():
    for name, rel in MODELS.items():
        make(name, rel)


if __name__ == "__main__":
    sys.exit(main())
