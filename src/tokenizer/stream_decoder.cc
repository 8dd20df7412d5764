#include "tokenizer/stream_decoder.h"

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace kvc {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tokenizer_.decode_piece(id);
  if (first_ && tokenizer_.vocab().add_space_prefix && !piece.empty() && piece[0] == ' ') {
    piece.erase(0, 1);  // as decode(): the dummy prefix space of the first token
  }
  first_ = false;
  pending_ += piece;
  const size_t ready = utf8_complete_prefix(pending_);
  std::string out = utf8_sanitize(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8_sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace kvc
