#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cstdlib>
#include <queue>

#include "base/error.h"
#include "tokenizer/unicode.h"

namespace kvc {

namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// Token texts llama.cpp treats as end of generation (llama-vocab.cpp, special_eog_ids).
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "[e~["};
// Texts llama.cpp takes as the end-of-turn token when the file names none.
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
    "<end_of_utterance>"};
// Fill-in-the-middle pad / repo / file-separator tokens, which llama.cpp also counts as EOG.
constexpr std::string_view kFimTexts[] = {
    "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", "<|fim_repo|>", "<|repo_name|>",
    "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>"};

bool contains(std::span<const std::string_view> list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

bool pre_ignores_merges(const std::string& pre) {
  for (const char* p : {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                        "midm-2.0", "lfm2", "jina-v5-nano", "tekken"}) {
    if (pre == p) return true;
  }
  return false;
}

void replace_all(std::string* s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s->size());
  size_t pos = 0;
  for (size_t hit; (hit = s->find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(*s, pos, hit - pos);
    out.append(to);
  }
  out.append(*s, pos);
  *s = std::move(out);
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  const size_t n = vocab_.tokens.size();
  if (n == 0) fail("tokenizer: empty vocabulary");
  if (!vocab_.scores.empty() && vocab_.scores.size() != n) fail("tokenizer: {} scores for {} tokens", vocab_.scores.size(), n);
  if (!vocab_.types.empty() && vocab_.types.size() != n) fail("tokenizer: {} token types for {} tokens", vocab_.types.size(), n);
  if (vocab_.model == "gpt2") {
    bpe_ = true;
    const auto patterns = bpe_pre_regexes(vocab_.pre);
    if (patterns.empty()) fail("unsupported tokenizer.ggml.pre '{}' for byte-level BPE", vocab_.pre);
    pre_ = std::make_unique<PreTokenizer>(patterns);
    ignore_merges_ = pre_ignores_merges(vocab_.pre);
  } else if (vocab_.model != "llama") {
    fail("unsupported tokenizer.ggml.model '{}' (supported: gpt2, llama)", vocab_.model);
  }

  attrs_.assign(n, kNormal);
  for (size_t i = 0; i < vocab_.types.size(); ++i) {
    switch (vocab_.types[i]) {
      case kTokenNormal: attrs_[i] = kNormal; break;
      case kTokenUnknown: attrs_[i] = kUnknown; break;
      case kTokenControl: attrs_[i] = kControl; break;
      case kTokenUserDefined: attrs_[i] = kUserDefined; break;
      case kTokenUnused: attrs_[i] = kUnused; break;
      case kTokenByte: attrs_[i] = kByte; break;
      default: attrs_[i] = 0; break;  // undefined: renders as nothing
    }
  }
  token_to_id_.reserve(n);
  for (size_t i = 0; i < n; ++i) token_to_id_[vocab_.tokens[i]] = static_cast<int32_t>(i);  // last wins, as llama.cpp

  for (size_t i = 0; i < vocab_.merges.size(); ++i) {
    const std::string& m = vocab_.merges[i];
    const size_t space = m.find(' ', 1);
    const std::string key = space == std::string::npos ? std::string(" ") : m;
    merge_rank_.emplace(key, static_cast<int32_t>(i));  // first wins
  }

  // End of generation, by id and by text, as llama.cpp; such tokens are control tokens.
  auto mark = [&](int32_t id) {
    if (id < 0 || static_cast<size_t>(id) >= n) return;
    eog_.push_back(id);
    attrs_[id] |= kControl;
  };
  for (std::string_view t : kEotTexts) {
    if (vocab_.eot >= 0) break;
    vocab_.eot = find_token(t);
  }
  for (std::string_view t : kFimTexts) mark(find_token(t));
  for (size_t i = 0; i < n; ++i) {
    if (contains(kEogTexts, vocab_.tokens[i])) mark(static_cast<int32_t>(i));
  }
  if (vocab_.eom < 0) vocab_.eom = find_token("<|eom_id|>");
  for (int32_t id : {vocab_.eos, vocab_.eot, vocab_.eom}) mark(id);
  // gpt-oss style vocabularies end a turn with <|return|> or <|call|>, not <|end|>
  const int32_t end = find_token("<|end|>");
  if (end >= 0 && find_token("<|return|>") >= 0 && find_token("<|call|>") >= 0) {
    eog_.erase(std::remove(eog_.begin(), eog_.end(), end), eog_.end());
    attrs_[end] = kUserDefined;
  }
  std::sort(eog_.begin(), eog_.end());
  eog_.erase(std::unique(eog_.begin(), eog_.end()), eog_.end());

  // Special tokens split out of text before tokenizing: longest first, ties by id.
  std::vector<int32_t> special;
  for (size_t i = 0; i < n; ++i) {
    if (attrs_[i] & (kControl | kUserDefined | kUnknown)) special.push_back(static_cast<int32_t>(i));
  }
  std::stable_sort(special.begin(), special.end(), [&](int32_t a, int32_t b) {
    return vocab_.tokens[a].size() > vocab_.tokens[b].size();
  });
  std::vector<SpecialSplitter::Entry> all, user;
  for (int32_t id : special) {
    all.push_back({vocab_.tokens[id], id});
    if (!(attrs_[id] & (kControl | kUnknown))) user.push_back({vocab_.tokens[id], id});
  }
  special_all_ = std::make_unique<SpecialSplitter>(std::move(all));
  special_user_ = std::make_unique<SpecialSplitter>(std::move(user));

  if (!bpe_) {
    byte_tokens_.assign(256, -1);
    static const char* hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const char name[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
      int32_t id = find_token(std::string_view(name, 6));
      if (id < 0) id = find_token(std::string(1, static_cast<char>(b)));
      byte_tokens_[b] = id;
    }
  }
}

int32_t Tokenizer::find_token(std::string_view text) const {
  auto it = token_to_id_.find(text);
  return it == token_to_id_.end() ? -1 : it->second;
}

bool Tokenizer::is_eog(int32_t id) const { return std::binary_search(eog_.begin(), eog_.end(), id); }

bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < vocab_size() && (attrs_[id] & kControl);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  std::vector<TextFragment> fragments;
  if (!text.empty()) fragments = (parse_special ? special_all_ : special_user_)->split(text);

  if (add_special && vocab_.add_bos && vocab_.bos >= 0) out.push_back(vocab_.bos);
  if (bpe_) {
    for (const TextFragment& f : fragments) {
      if (f.token >= 0) out.push_back(f.token);
      else encode_bpe(f.text, &out);
    }
  } else {
    bool prev_special = true;  // a dummy space prefix goes at the start and after specials
    for (const TextFragment& f : fragments) {
      if (f.token >= 0) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      std::string s = (vocab_.add_space_prefix && prev_special) ? " " : "";
      s.append(f.text);
      replace_all(&s, " ", kSpmSpace);
      encode_spm(s, &out);
      prev_special = false;
    }
  }
  if (add_special && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
  return out;
}

void Tokenizer::encode_bpe(std::string_view text, std::vector<int32_t>* out) const {
  struct Symbol {
    int prev, next;
    uint32_t start, n;
  };
  struct Bigram {
    int32_t rank;
    int left, right;
    uint32_t left_n, right_n;
  };
  auto later = [](const Bigram& a, const Bigram& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  };

  const std::string clean = utf8_sanitize(text);
  std::vector<Symbol> symbols;
  std::vector<Bigram> heap;
  std::string key;
  for (std::string_view piece : pre_->split(clean)) {
    const std::string word = gpt2_encode_bytes(piece);
    if (ignore_merges_) {
      const int32_t id = find_token(word);
      if (id >= 0) {
        out->push_back(id);
        continue;
      }
    }
    symbols.clear();
    for (uint32_t pos = 0; pos < word.size();) {
      const uint32_t len = static_cast<uint32_t>(std::min(utf8_len(word[pos]), word.size() - pos));
      const int idx = static_cast<int>(symbols.size());
      symbols.push_back({idx - 1, pos + len == word.size() ? -1 : idx + 1, pos, len});
      pos += len;
    }
    auto add = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const Symbol& l = symbols[left];
      const Symbol& r = symbols[right];
      key.assign(word, l.start, l.n);
      key.push_back(' ');
      key.append(word, r.start, r.n);
      auto it = merge_rank_.find(key);
      if (it == merge_rank_.end()) return;
      heap.push_back({it->second, left, right, l.n, r.n});
      std::push_heap(heap.begin(), heap.end(), later);
    };
    heap.clear();
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) add(i - 1, i);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), later);
      const Bigram b = heap.back();
      heap.pop_back();
      Symbol& l = symbols[b.left];
      Symbol& r = symbols[b.right];
      // stale: one side has since merged with something else
      if (l.n != b.left_n || r.n != b.right_n || l.n == 0 || r.n == 0) continue;
      l.n += r.n;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) symbols[r.next].prev = b.left;
      add(l.prev, b.left);
      add(b.left, l.next);
    }
    for (const Symbol& s : symbols) {
      if (s.n == 0) continue;
      const std::string_view str(word.data() + s.start, s.n);
      const int32_t id = find_token(str);
      if (id >= 0) {
        out->push_back(id);
        continue;
      }
      for (char c : str) {  // llama.cpp's fallback: single-byte tokens where they exist
        const int32_t byte_id = find_token(std::string_view(&c, 1));
        if (byte_id >= 0) out->push_back(byte_id);
      }
    }
  }
}

void Tokenizer::encode_spm(std::string_view text, std::vector<int32_t>* out) const {
  struct Symbol {
    int prev, next;
    uint32_t start, n;
  };
  struct Bigram {
    float score;
    int left, right;
    uint32_t size;
  };
  // max-heap on score; among equal scores the leftmost pair first
  auto lower = [](const Bigram& a, const Bigram& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  if (text.empty()) return;

  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (uint32_t pos = 0; pos < text.size();) {
    const uint32_t len = static_cast<uint32_t>(std::min(utf8_len(text[pos]), text.size() - pos));
    const int idx = static_cast<int>(symbols.size());
    symbols.push_back({idx - 1, pos + len == text.size() ? -1 : idx + 1, pos, len});
    pos += len;
  }
  std::vector<Bigram> heap;
  heap.reserve(symbols.size());
  auto add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const uint32_t size = symbols[left].n + symbols[right].n;
    const int32_t id = find_token(text.substr(symbols[left].start, size));
    if (id < 0) return;
    heap.push_back({vocab_.scores.empty() ? 0.0f : vocab_.scores[id], left, right, size});
    std::push_heap(heap.begin(), heap.end(), lower);
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) add(i - 1, i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), lower);
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = symbols[b.left];
    Symbol& r = symbols[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;  // stale
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    add(l.prev, b.left);
    add(b.left, l.next);
  }
  for (int i = 0; i != -1; i = symbols[i].next) {
    const std::string_view str = text.substr(symbols[i].start, symbols[i].n);
    const int32_t id = find_token(str);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    // Only single characters can be missing (every merge forms a token): byte fallback.
    for (char c : str) {
      const int32_t byte_id = byte_tokens_[static_cast<uint8_t>(c)];
      if (byte_id >= 0) out->push_back(byte_id);
      else if (vocab_.unk >= 0) out->push_back(vocab_.unk);
    }
  }
}

std::string Tokenizer::piece(int32_t id, bool special) const {
  if (id < 0 || id >= vocab_size()) fail("token id {} outside the vocabulary of {}", id, vocab_size());
  const uint16_t attr = attrs_[id];
  const std::string& text = vocab_.tokens[id];
  if (attr & (kUnknown | kControl)) return special ? text : std::string();
  if (attr & kUserDefined) return text;
  if (attr & kNormal) {
    std::string out;
    if (!bpe_) {
      out = text;
      replace_all(&out, kSpmSpace, " ");
      return out;
    }
    for (size_t pos = 0; pos < text.size();) {
      const size_t start = pos;
      const int byte = gpt2_cp_to_byte(utf8_decode(text, &pos));
      if (byte >= 0) {
        out.push_back(static_cast<char>(byte));
      } else {  // not a mapped byte: llama.cpp writes this marker
        out += "[UNK_BYTE_0x";
        for (size_t k = start; k < pos; ++k) out += fmt::format("{:02x}", static_cast<uint8_t>(text[k]));
        out += text + "]";
      }
    }
    return out;
  }
  if (attr & kByte) {
    if (text.size() < 5) return {};
    return std::string(1, static_cast<char>(std::strtol(text.substr(3, 2).c_str(), nullptr, 16)));
  }
  return {};  // unused or undefined tokens render as nothing
}

std::string Tokenizer::token_piece(int32_t id) const { return piece(id, true); }

std::string Tokenizer::decode_piece(int32_t id) const { return piece(id, false); }

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::string p = piece(ids[i], false);
    // llama.cpp drops the dummy prefix space from the first token
    if (i == 0 && vocab_.add_space_prefix && !p.empty() && p[0] == ' ') p.erase(0, 1);
    out += p;
  }
  return out;
}

std::string Tokenizer::describe() const {
  if (bpe_) return fmt::format("byte-level BPE (pre: {}), {} tokens", vocab_.pre.empty() ? "default" : vocab_.pre, vocab_size());
  return fmt::format("SentencePiece-style, {} tokens", vocab_size());
}

}  // namespace kvc
