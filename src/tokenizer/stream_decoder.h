// Turns generated ids into text as they arrive without ever emitting half a UTF-8 character:
// bytes of an unfinished character wait for the next token. What it emits is well-formed
// UTF-8; concatenated, it equals Tokenizer::decode for ids that decode to well-formed text.
#pragma once

#include <cstdint>
#include <string>

namespace kvc {

class Tokenizer;

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer);
  // The text that token `id` completes (possibly empty).
  std::string push(int32_t id);
  // Whatever is still held back; each byte of an unfinished character comes out as U+FFFD.
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
  bool first_ = true;
};

}  // namespace kvc
