// Splits special tokens out of text before the tokenizer proper sees it, with llama.cpp's
// rule: longer tokens first; each token's occurrences left to right inside the text that
// longer tokens left over (an occurrence that would straddle an earlier match is no match).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvc {

struct TextFragment {
  int32_t token = -1;     // a special token, or -1 for plain text
  std::string_view text;  // the plain text (a view into the input)
};

class SpecialSplitter {
 public:
  struct Entry {
    std::string text;
    int32_t id;
  };
  // Entries in priority order (llama.cpp: longest text first).
  explicit SpecialSplitter(std::vector<Entry> entries);

  std::vector<TextFragment> split(std::string_view text) const;
  bool empty() const { return entries_.empty(); }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // sorted by byte
    int32_t entry = -1;
  };
  int32_t child(int32_t node, uint8_t byte) const;

  std::vector<Entry> entries_;
  std::vector<Node> trie_;
};

}  // namespace kvc
