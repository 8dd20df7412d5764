#include "tokenizer/vocab.h"

#include "base/error.h"
#include "gguf/gguf_file.h"

namespace kvc {

namespace {

// A special-token id key, or `fallback` when absent or out of range (llama.cpp keeps its
// default for a bad id rather than failing).
int32_t special_id(const GgufFile& file, const char* key, int32_t fallback, size_t n_tokens) {
  const auto id = file.find_int(key);
  if (id && *id >= 0 && static_cast<size_t>(*id) < n_tokens) return static_cast<int32_t>(*id);
  if (fallback >= 0 && static_cast<size_t>(fallback) >= n_tokens) return -1;
  return fallback;
}

// llama.cpp's pre-tokenizers that add BOS by default (the llama3 family and tekken/chameleon).
bool pre_adds_bos(const std::string& pre) {
  for (const char* p : {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                        "midm-2.0", "lfm2", "jina-v5-nano", "tekken", "chameleon"}) {
    if (pre == p) return true;
  }
  return false;
}

}  // namespace

Vocab load_vocab(const GgufFile& file) {
  Vocab v;
  v.model = file.get_string("tokenizer.ggml.model");
  v.pre = file.find_string("tokenizer.ggml.pre").value_or("");

  const GgufValue& tokens = file.get_array("tokenizer.ggml.tokens");
  const size_t n = tokens.array_size();
  if (n == 0) fail("tokenizer.ggml.tokens is empty");
  v.tokens.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string_view t = tokens.string_at(i);
    // llama.cpp renames empty tokens so that the text -> id map stays one-to-one
    v.tokens.emplace_back(t.empty() ? "[EMPTY_" + std::to_string(i) + "]" : std::string(t));
  }
  if (const GgufValue* scores = file.find("tokenizer.ggml.scores")) {
    if (scores->array_size() < n) fail("tokenizer.ggml.scores has {} entries for {} tokens", scores->array_size(), n);
    v.scores.resize(n);
    for (size_t i = 0; i < n; ++i) v.scores[i] = static_cast<float>(scores->float_at(i));
  }
  if (const GgufValue* types = file.find("tokenizer.ggml.token_type")) {
    if (types->array_size() < n) fail("tokenizer.ggml.token_type has {} entries for {} tokens", types->array_size(), n);
    v.types.resize(n);
    for (size_t i = 0; i < n; ++i) v.types[i] = static_cast<int32_t>(types->int_at(i));
  }

  int32_t bos = -1, eos = -1, unk = -1;
  if (v.model == "llama") {
    bos = 1, eos = 2, unk = 0;
    v.add_bos = true;
    v.add_space_prefix = true;
  } else if (v.model == "gpt2") {
    const GgufValue* merges = file.find("tokenizer.ggml.merges");
    if (!merges) fail("byte-level BPE vocabulary without tokenizer.ggml.merges");
    v.merges.reserve(merges->array_size());
    for (size_t i = 0; i < merges->array_size(); ++i) v.merges.emplace_back(merges->string_at(i));
    bos = 11, eos = 11;  // llama.cpp's defaults for gpt2 vocabularies
    v.add_bos = pre_adds_bos(v.pre);
  } else {
    fail("unsupported tokenizer.ggml.model '{}' (supported: gpt2, llama)", v.model);
  }

  v.bos = special_id(file, "tokenizer.ggml.bos_token_id", bos, n);
  v.eos = special_id(file, "tokenizer.ggml.eos_token_id", eos, n);
  v.unk = special_id(file, "tokenizer.ggml.unknown_token_id", unk, n);
  v.pad = special_id(file, "tokenizer.ggml.padding_token_id", -1, n);
  v.eot = special_id(file, "tokenizer.ggml.eot_token_id", -1, n);
  v.eom = special_id(file, "tokenizer.ggml.eom_token_id", -1, n);
  v.add_bos = file.find_bool("tokenizer.ggml.add_bos_token").value_or(v.add_bos);
  v.add_eos = file.find_bool("tokenizer.ggml.add_eos_token").value_or(v.add_eos);
  v.add_space_prefix = file.find_bool("tokenizer.ggml.add_space_prefix").value_or(v.add_space_prefix);
  return v;
}

}  // namespace kvc
