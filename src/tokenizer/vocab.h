// The vocabulary a GGUF file carries (tokenizer.ggml.*), as plain data. load_vocab fills in
// llama.cpp's defaults for keys a file leaves out, so a Vocab is complete once loaded; tests
// build one in code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kvc {

class GgufFile;

// ggml token types (tokenizer.ggml.token_type).
enum TokenType : int32_t {
  kTokenUndefined = 0,
  kTokenNormal = 1,
  kTokenUnknown = 2,
  kTokenControl = 3,
  kTokenUserDefined = 4,
  kTokenUnused = 5,
  kTokenByte = 6,
};

struct Vocab {
  std::string model;  // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
  std::string pre;    // tokenizer.ggml.pre, picks the BPE pre-split rules
  std::vector<std::string> tokens;
  std::vector<float> scores;   // SentencePiece merge priority; may be empty for BPE
  std::vector<int32_t> types;  // TokenType per token; empty means all normal
  std::vector<std::string> merges;  // BPE merges "left right", highest priority first
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1, eom = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;
};

Vocab load_vocab(const GgufFile& file);

}  // namespace kvc
