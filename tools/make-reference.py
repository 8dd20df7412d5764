#!/usr/bin/env python3
"""Record llama.cpp's forward pass on the shipped models as golden test fixtures.

Writes tests/fixtures/reference_smollm2.json and tests/fixtures/reference_gemma3.json, which
tests/integration/model_golden_test.cc must reproduce: greedy continuations (with the top-1 /
top-2 logit gap at every step, so a test can tell a near-tie from a real divergence) and the
perplexity of a fixed 2,048-token stretch of the KJV text.

Run with the llama.cpp Python bindings that tools/build-llamacpp.sh builds, after
scripts/prepare-text.sh has written data/kjv.txt:
  LLAMA_CPP_LIB_PATH=.llamacpp/bin .llamacpp/venv/bin/python tools/make-reference.py \
      [--no-repack] [smollm2] [gemma3]

Settings: n_threads=2, n_ctx=4096, n_batch=512, f16 KV cache, otherwise llama.cpp's context
defaults. Logits come straight from llama_get_logits_ith (no sampler, no penalties). Greedy
decoding does not stop at end-of-generation tokens: the fixture tests the forward pass, not chat.
"""
import ctypes
import datetime
import hashlib
import json
import math
import os
import subprocess
import sys

import numpy as np

# ggml's OpenMP threads spin while they wait; on a busy machine that makes llama.cpp many times
# slower. Passive waiting changes no result. Must be set before the library starts its threads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import llama_cpp  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

N_THREADS = 2
N_CTX = 4096
N_BATCH = 512
N_GEN = 64
TOP_FIRST = 10        # top logits recorded for the first step of each prompt (debugging aid)
PPL_TOKENS = 2048
# Weight repacking (ggml's extra buffer types) on by default, as llama.cpp runs; --no-repack turns
# it off, which a machine whose AMX kernels crash needs (see docs/benchmarks.md).
REPACK = "--no-repack" not in sys.argv
KJV_OFFSET = 100_000  # characters; the stretch starts at the first sentence after this
KJV_CHARS = 40_000    # enough characters for 2 x 2,048 tokens (llama-perplexity needs 2 x n_ctx)

MODELS = {
    "smollm2": "models/SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "models/gemma-3-270m-q4_k_m.gguf",
}

CHAT = {
    "smollm2": "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
    "gemma3": "<start_of_turn>user\n{}<end_of_turn>\n<start_of_turn>model\n",
}

LONG_PARAGRAPH = (
    "The history of the lighthouse is, in many ways, the history of coastal trade itself. Long "
    "before electric lamps and automated beacons, the keepers of these towers lived in isolation "
    "on rocky headlands and tidal islands, trimming wicks, polishing brass and winding the "
    "clockwork that turned the great lenses through the night. The Fresnel lens, introduced in "
    "the 1820s, changed everything: by arranging concentric rings of glass prisms around a "
    "single flame, it gathered light that would otherwise have been lost and bent it into a "
    "narrow, powerful beam visible for more than twenty miles. Each lighthouse was given its own "
    "pattern of flashes, so that a navigator who counted the seconds between them could tell "
    "exactly which tower he was looking at, and therefore where his ship was. Fog presented a "
    "different problem, and so the towers were fitted with bells, then with whistles driven by "
    "steam, and finally with diaphones whose low groan could carry across miles of grey water. "
    "Life for the keepers was hard. Supplies arrived by boat when the weather allowed, which in "
    "winter might mean weeks of waiting. Families raised children on the rocks, taught them at "
    "kitchen tables, and kept logbooks recording every ship, every storm and every change in the "
    "light. Some of those logbooks survive today, and they tell of rescues performed in open "
    "rowing boats, of lamps kept burning through hurricanes, and of the quiet routine that "
    "filled the long hours between dusk and dawn. When automation arrived in the second half of "
    "the twentieth century, most of the keepers left, and the towers fell silent except for the "
    "hum of machinery. Yet many of them are still standing, and"
)


def prompts(name):
    chat = CHAT[name]
    return [
        {"name": "story", "text": "Once upon a time, in a small village at the edge of a great "
                                  "forest, there lived an old clockmaker who"},
        {"name": "code", "text": "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci "
                                 "number.\"\"\"\n"},
        {"name": "list", "text": "Here is a list of the ten largest countries by area:\n1."},
        {"name": "chat", "text": chat.format("What is the capital of France, and why is it "
                                             "famous?")},
        {"name": "arithmetic", "text": "2 + 2 = 4\n3 + 5 = 8\n7 + 6 = 13\n12 + 9 = 21\n"
                                       "15 + 27 ="},
        {"name": "french", "text": "Le petit prince regarda les \u00e9toiles et dit \u00e0 "
                                   "son ami que"},
        {"name": "long_paragraph", "text": LONG_PARAGRAPH},
        {"name": "json", "text": '{"name": "Alice", "age": 30, "languages": ["English", '},
        {"name": "definition", "text": "Photosynthesis is the process by which"},
        {"name": "chat_code", "text": chat.format("Write a C function that reverses a string "
                                                  "in place.")},
    ]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tokenize(vocab, text, add_special):
    data = text.encode("utf-8")
    n_max = len(data) + 16
    buf = (llama_cpp.llama_token * n_max)()
    n = llama_cpp.llama_tokenize(vocab, data, len(data), buf, n_max, add_special, True)
    if n < 0:
        raise RuntimeError(f"tokenize needs {-n} tokens")
    return list(buf[:n])


def piece(vocab, token):
    out = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(vocab, token, out, 256, 0, True)
    return out.raw[:n]


class Runner:
    """One llama.cpp context; decode() feeds tokens and returns the logits it asked for."""

    def __init__(self, path):
        mparams = llama_cpp.llama_model_default_params()
        mparams.use_extra_bufts = REPACK
        self.model = llama_cpp.llama_model_load_from_file(path.encode(), mparams)
        if not self.model:
            raise RuntimeError(f"cannot load {path}")
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = N_CTX
        cparams.n_batch = N_BATCH
        cparams.n_ubatch = N_BATCH
        cparams.n_threads = N_THREADS
        cparams.n_threads_batch = N_THREADS
        cparams.type_k = llama_cpp.GGML_TYPE_F16
        cparams.type_v = llama_cpp.GGML_TYPE_F16
        self.flash_attn_type = cparams.flash_attn_type
        self.ctx = llama_cpp.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            raise RuntimeError("cannot create context")
        self.batch = llama_cpp.llama_batch_init(N_BATCH, 0, 1)
        self.n_past = 0

    def reset(self):
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx), True)
        self.n_past = 0

    def decode(self, tokens, all_logits):
        """Feeds tokens in batches of N_BATCH; returns [n][vocab] logits (all) or [1][vocab]."""
        out = []
        for start in range(0, len(tokens), N_BATCH):
            chunk = tokens[start:start + N_BATCH]
            last_chunk = start + N_BATCH >= len(tokens)
            b = self.batch
            b.n_tokens = len(chunk)
            for j, t in enumerate(chunk):
                b.token[j] = t
                b.pos[j] = self.n_past + j
                b.n_seq_id[j] = 1
                b.seq_id[j][0] = 0
                b.logits[j] = 1 if (all_logits or (last_chunk and j == len(chunk) - 1)) else 0
            rc = llama_cpp.llama_decode(self.ctx, b)
            if rc != 0:
                raise RuntimeError(f"llama_decode returned {rc}")
            self.n_past += len(chunk)
            rows = range(len(chunk)) if all_logits else ([len(chunk) - 1] if last_chunk else [])
            for j in rows:
                ptr = llama_cpp.llama_get_logits_ith(self.ctx, j)
                out.append(np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy())
        return np.stack(out)


def top2_gap(logits):
    top = np.argpartition(logits, -2)[-2:]
    a, b = sorted(top, key=lambda i: (-logits[i], i))
    return int(a), float(logits[a] - logits[b])


def greedy(runner, prompt_ids):
    runner.reset()
    logits = runner.decode(prompt_ids, all_logits=False)[0]
    order = np.argsort(-logits, kind="stable")[:TOP_FIRST]
    first_top = [{"id": int(i), "logit": round(float(logits[i]), 4)} for i in order]
    ids, gaps = [], []
    for step in range(N_GEN):
        tok, gap = top2_gap(logits)
        ids.append(tok)
        gaps.append(round(gap, 5))
        if step + 1 < N_GEN:
            logits = runner.decode([tok], all_logits=False)[0]
    return ids, gaps, first_top


def nll_of(logits, targets):
    """Per-row negative log-likelihood of targets, in float64."""
    x = logits.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    lse = (m[:, 0] + np.log(np.exp(x - m).sum(axis=1)))
    return lse - x[np.arange(len(targets)), targets]


def kjv_stretch():
    path = os.path.join(ROOT, "data", "kjv.txt")
    if not os.path.exists(path):
        sys.exit("data/kjv.txt is missing: run scripts/prepare-text.sh")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start = text.index(". ", KJV_OFFSET) + 2  # the first sentence after the offset
    return start, text[start:start + KJV_CHARS]


def llama_perplexity(model_path, text_path):
    """llama-perplexity's first chunk with -c 2048 (None if the tool is absent or fails)."""
    exe = os.path.join(ROOT, ".llamacpp", "bin", "llama-perplexity")
    if not os.path.exists(exe):
        return None
    cmd = [exe, "-m", model_path, "-f", text_path, "-c", str(PPL_TOKENS), "-b", str(PPL_TOKENS),
           "--chunks", "1", "-t", str(N_THREADS)] + ([] if REPACK else ["-nr"])
    res = subprocess.run(cmd, capture_output=True, text=True)
    out = res.stdout + res.stderr
    for line in out.splitlines():
        if "Final estimate: PPL = " in line:
            return {"command": " ".join(["llama-perplexity"] + cmd[1:]).replace(ROOT + "/", ""),
                    "scored": f"tokens {PPL_TOKENS // 2 + 1}..{PPL_TOKENS - 1} of its first chunk "
                              f"(the same tokens as second_half)",
                    "ppl": float(line.split("PPL = ")[1].split("+/-")[0])}
    print(out[-2000:], file=sys.stderr)
    return None


def make(name, rel_path, version, kjv):
    path = os.path.join(ROOT, rel_path)
    runner = Runner(path)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(runner.vocab))

    cases = []
    for p in prompts(name):
        ids = tokenize(runner.vocab, p["text"], True)
        cont, gaps, first_top = greedy(runner, ids)
        text = b"".join(piece(runner.vocab, t) for t in cont).decode("utf-8", "replace")
        cases.append({"name": p["name"], "text": p["text"], "prompt_ids": ids,
                      "continuation": cont, "gaps": gaps, "first_top": first_top,
                      "continuation_text": text})
        print(f"{name} {p['name']}: {len(ids)} prompt tokens, min gap {min(gaps):.4f}: "
              f"{text[:60]!r}")

    kjv_offset, kjv_text = kjv
    ppl_ids = tokenize(runner.vocab, kjv_text, True)[:PPL_TOKENS]
    if len(ppl_ids) < PPL_TOKENS:
        raise RuntimeError("KJV stretch too short")
    runner.reset()
    logits = runner.decode(ppl_ids, all_logits=True)
    nll = nll_of(logits[:-1], np.array(ppl_ids[1:]))
    half = PPL_TOKENS // 2
    mean = float(nll.mean())
    mean_half = float(nll[half:].mean())  # predicting tokens half+1 .. 2047, as llama-perplexity

    text_path = f"/tmp/kjv-ref-{name}.txt"
    with open(text_path, "w", encoding="utf-8") as f:
        f.write(kjv_text)
    tool = llama_perplexity(path, text_path)

    out = {
        "generator": "tools/make-reference.py",
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp": version,
        "model": rel_path,
        "model_sha256": sha256_file(path),
        "date": datetime.date.today().isoformat(),
        "settings": {"n_threads": N_THREADS, "n_ctx": N_CTX, "n_batch": N_BATCH,
                     "n_ubatch": N_BATCH, "kv_type": "f16", "repack": REPACK,
                     "flash_attn_type": runner.flash_attn_type},
        "n_vocab": runner.n_vocab,
        "add_bos": add_bos,
        "n_gen": N_GEN,
        "greedy": cases,
        "perplexity": {
            "source": f"data/kjv.txt from character {kjv_offset} (first sentence after "
                      f"{KJV_OFFSET}), tokenized with BOS={add_bos}, first {PPL_TOKENS} tokens",
            "char_offset": kjv_offset,
            "tokens": ppl_ids,
            "scored": "tokens 1..2047, each predicted from all before it, in one context",
            "mean_nll": mean,
            "ppl": math.exp(mean),
            "nll": [round(float(x), 5) for x in nll],
            "second_half": {"scored": f"tokens {half + 1}..{PPL_TOKENS - 1}, as llama-perplexity "
                                      f"-c {PPL_TOKENS} scores its first chunk",
                            "mean_nll": mean_half, "ppl": math.exp(mean_half)},
            "llama_perplexity": tool,
        },
    }
    fixture = os.path.join(ROOT, "tests", "fixtures", f"reference_{name}.json")
    with open(fixture, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=True, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"{fixture}: ppl {math.exp(mean):.4f} over 2047 tokens; second half "
          f"{math.exp(mean_half):.4f}; llama-perplexity {tool}")
    llama_cpp.llama_batch_free(runner.batch)
    llama_cpp.llama_free(runner.ctx)
    llama_cpp.llama_model_free(runner.model)


def llama_version():
    info = os.path.join(ROOT, ".llamacpp", "build", "common", "build-info.cpp")
    commit = None
    if os.path.exists(info):
        for line in open(info):
            if line.startswith("char const * LLAMA_COMMIT"):
                commit = line.split('"')[1]
    return {"vendored_in": f"llama-cpp-python {llama_cpp.__version__}", "build_info_commit": commit,
            "system_info": llama_cpp.llama_print_system_info().decode().strip()}


# Kept alive for the whole run: llama.cpp calls it from C.
_QUIET = llama_cpp.llama_log_callback(lambda level, text, data: None)


def main():
    llama_cpp.llama_backend_init()
    llama_cpp.llama_log_set(_QUIET, None)
    kjv = kjv_stretch()
    version = llama_version()
    names = [a for a in sys.argv[1:] if not a.startswith("-")] or list(MODELS)
    for name in names:
        make(name, MODELS[name], version, kjv)


if __name__ == "__main__":
    sys.exit(main())
