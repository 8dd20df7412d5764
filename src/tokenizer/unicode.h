// UTF-8 and the GPT-2 byte<->unicode mapping, with llama.cpp's leniency: a byte that does not
// start a valid sequence decodes to U+FFFD and the decoder moves on by one byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvc {

// Length of the UTF-8 sequence a lead byte announces (1 for continuation bytes, as llama.cpp).
inline size_t utf8_len(char lead) {
  static constexpr uint8_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[static_cast<uint8_t>(lead) >> 4];
}

// Decodes one code point at text[*pos] and advances *pos; invalid input gives U+FFFD and
// advances by one byte. Overlong forms and surrogates are accepted, as llama.cpp does.
uint32_t utf8_decode(std::string_view text, size_t* pos);
void utf8_append(uint32_t cp, std::string* out);

// Well-formed UTF-8: every byte that does not start a valid sequence becomes U+FFFD, as in
// llama.cpp (which also lets overlong forms and surrogates through; those become U+FFFD here).
std::string utf8_sanitize(std::string_view text);

// Bytes of text up to which the text is complete UTF-8: a trailing partial sequence (that
// more bytes could still complete) is left out.
size_t utf8_complete_prefix(std::string_view text);

// GPT-2's reversible byte -> printable code point mapping ('Ġ' for space, 'Ċ' for '\n').
uint32_t gpt2_byte_to_cp(uint8_t byte);
// The inverse; returns -1 for a code point outside the mapping.
int gpt2_cp_to_byte(uint32_t cp);
// Each byte of text replaced by its mapped code point, as UTF-8.
std::string gpt2_encode_bytes(std::string_view text);

}  // namespace kvc
