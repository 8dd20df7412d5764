// What each vocabulary entry is to the span cascade: a separator (its text ends in punctuation
// or holds a newline; control tokens such as chat markers too), a digit run, or plain text.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace kvc {

class Tokenizer;

// TokenKind (cache/kv_cache.h) of a token's text.
uint8_t token_kind(std::string_view text, bool control);

// TokenKind per id of the vocabulary.
std::shared_ptr<const std::vector<uint8_t>> classify_tokens(const Tokenizer& tokenizer);

}  // namespace kvc
