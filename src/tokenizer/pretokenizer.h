// Byte-level BPE pre-split: the regexes llama.cpp applies for each tokenizer.ggml.pre value,
// run with PCRE2 (UTF-8, Unicode properties). Each regex in turn splits every piece the
// previous one left: its matches and the text between them both become pieces.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kvc {

// The regex list for a pre value, or empty when the value is unknown.
std::vector<std::string> bpe_pre_regexes(const std::string& pre);

class PreTokenizer {
 public:
  // Throws kvc::Error when a pattern does not compile.
  explicit PreTokenizer(const std::vector<std::string>& patterns);
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;

  // Splits valid UTF-8 `text` into pieces (views into text), in order, covering it.
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvc
