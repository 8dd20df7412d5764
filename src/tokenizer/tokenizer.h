// Text <-> token ids, exactly as llama.cpp tokenizes with the same vocabulary: byte-level BPE
// (tokenizer.ggml.model "gpt2") or SentencePiece-style merging by score ("llama").
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/special_split.h"
#include "tokenizer/vocab.h"

namespace kvc {

class Tokenizer {
 public:
  // Throws kvc::Error on an unsupported tokenizer.ggml.model or pre value.
  explicit Tokenizer(Vocab vocab);

  // add_special: BOS (and EOS) as the vocabulary asks; parse_special: control tokens written
  // in the text ("<|im_start|>") become those tokens. User-defined tokens always match.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The bytes a token stands for: byte tokens decoded, SentencePiece's U+2581 as a space,
  // byte-level BPE unmapped; control tokens give their text (llama.cpp's special=true).
  std::string token_piece(int32_t id) const;
  // Concatenated pieces with control and unknown tokens left out (llama_detokenize with
  // remove_special=false, unparse_special=false); may end in part of a UTF-8 character.
  std::string decode(std::span<const int32_t> ids) const;
  // One token's share of decode(): its piece, or "" for control and unknown tokens.
  std::string decode_piece(int32_t id) const;

  int vocab_size() const { return static_cast<int>(vocab_.tokens.size()); }
  int32_t bos() const { return vocab_.bos; }
  int32_t eos() const { return vocab_.eos; }
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const { return eog_; }  // sorted
  bool is_control(int32_t id) const;
  const Vocab& vocab() const { return vocab_; }
  // The id of a token's exact text, or -1.
  int32_t find_token(std::string_view text) const;
  // "byte-level BPE (pre: smollm), 49152 tokens"
  std::string describe() const;

 private:
  enum Attr : uint16_t {
    kNormal = 1 << 0,
    kUnknown = 1 << 1,
    kControl = 1 << 2,
    kUserDefined = 1 << 3,
    kUnused = 1 << 4,
    kByte = 1 << 5,
  };
  bool is_bpe() const { return bpe_; }
  void encode_bpe(std::string_view text, std::vector<int32_t>* out) const;
  void encode_spm(std::string_view text, std::vector<int32_t>* out) const;
  int32_t byte_token(uint8_t byte) const;
  std::string piece(int32_t id, bool special) const;

  Vocab vocab_;
  bool bpe_ = false;
  bool ignore_merges_ = false;
  std::vector<uint16_t> attrs_;
  std::unordered_map<std::string_view, int32_t> token_to_id_;  // views into vocab_.tokens
  std::unordered_map<std::string, int32_t> merge_rank_;        // "left right" -> rank
  std::vector<int32_t> eog_;                                   // sorted
  std::vector<int32_t> byte_tokens_;                           // SentencePiece <0xXX>, per byte
  std::unique_ptr<PreTokenizer> pre_;
  std::unique_ptr<SpecialSplitter> special_all_;   // control, unknown and user-defined tokens
  std::unique_ptr<SpecialSplitter> special_user_;  // user-defined tokens only
};

}  // namespace kvc
