#include "engine/token_kinds.h"

#include "cache/kv_cache.h"
#include "tokenizer/tokenizer.h"

namespace kvc {

uint8_t token_kind(std::string_view text, bool control) {
  if (control) return kSeparatorToken;
  if (text.find('\n') != std::string_view::npos) return kSeparatorToken;
  const size_t last = text.find_last_not_of(" \t");
  if (last == std::string_view::npos) return kPlainToken;
  // SepLLM's separators, less the space that starts nearly every word token.
  if (std::string_view(".,?!;:").find(text[last]) != std::string_view::npos) return kSeparatorToken;
  const size_t first = text.find_first_not_of(" \t");
  bool digits = true;
  for (size_t i = first; i <= last; ++i) digits &= text[i] >= '0' && text[i] <= '9';
  return digits ? kDigitToken : kPlainToken;
}

std::shared_ptr<const std::vector<uint8_t>> classify_tokens(const Tokenizer& tokenizer) {
  auto kinds = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(tokenizer.vocab_size()));
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id)
    (*kinds)[static_cast<size_t>(id)] = token_kind(tokenizer.token_piece(id), tokenizer.is_control(id));
  return kinds;
}

}  // namespace kvc
