#include "tokenizer/special_split.h"

#include <algorithm>

namespace kvc {

SpecialSplitter::SpecialSplitter(std::vector<Entry> entries) : entries_(std::move(entries)) {
  trie_.emplace_back();
  for (size_t e = 0; e < entries_.size(); ++e) {
    int32_t node = 0;
    for (char c : entries_[e].text) {
      const uint8_t b = static_cast<uint8_t>(c);
      int32_t next = child(node, b);
      if (next < 0) {
        next = static_cast<int32_t>(trie_.size());
        trie_.emplace_back();
        auto& kids = trie_[node].next;
        kids.insert(std::upper_bound(kids.begin(), kids.end(), std::make_pair(b, int32_t{-1})),
                    {b, next});
      }
      node = next;
    }
    if (trie_[node].entry < 0) trie_[node].entry = static_cast<int32_t>(e);  // first = highest priority
  }
}

int32_t SpecialSplitter::child(int32_t node, uint8_t byte) const {
  const auto& kids = trie_[node].next;
  auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(byte, int32_t{-1}));
  return (it != kids.end() && it->first == byte) ? it->second : -1;
}

std::vector<TextFragment> SpecialSplitter::split(std::string_view text) const {
  // Every occurrence of every entry, then accepted in priority order; this gives llama.cpp's
  // result without its one-pass-per-special-token scan of the text.
  struct Match {
    int32_t entry;
    size_t pos;
  };
  std::vector<Match> matches;
  if (!entries_.empty()) {
    for (size_t p = 0; p < text.size(); ++p) {
      int32_t node = child(0, static_cast<uint8_t>(text[p]));
      for (size_t q = p + 1; node >= 0; ++q) {
        if (trie_[node].entry >= 0) matches.push_back({trie_[node].entry, p});
        if (q >= text.size()) break;
        node = child(node, static_cast<uint8_t>(text[q]));
      }
    }
  }
  std::sort(matches.begin(), matches.end(), [](const Match& a, const Match& b) {
    return a.entry != b.entry ? a.entry < b.entry : a.pos < b.pos;
  });

  std::vector<int32_t> owner(text.size(), -1);  // entry covering each byte
  std::vector<size_t> accepted;
  for (const Match& m : matches) {
    const size_t len = entries_[m.entry].text.size();
    bool free = true;
    for (size_t i = m.pos; i < m.pos + len && free; ++i) free = owner[i] < 0;
    if (!free) continue;
    for (size_t i = m.pos; i < m.pos + len; ++i) owner[i] = m.entry;
    accepted.push_back(m.pos);
  }
  std::sort(accepted.begin(), accepted.end());

  std::vector<TextFragment> out;
  size_t last = 0;
  for (size_t pos : accepted) {
    if (pos > last) out.push_back({-1, text.substr(last, pos - last)});
    const Entry& e = entries_[owner[pos]];
    out.push_back({e.id, {}});
    last = pos + e.text.size();
  }
  if (last < text.size()) out.push_back({-1, text.substr(last)});
  return out;
}

}  // namespace kvc
