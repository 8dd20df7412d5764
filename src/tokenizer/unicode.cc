#include "tokenizer/unicode.h"

#include <array>

namespace kvc {

namespace {

bool is_cont(std::string_view text, size_t i) {
  return i < text.size() && (static_cast<uint8_t>(text[i]) & 0xC0) == 0x80;
}

struct Gpt2Table {
  std::array<uint32_t, 256> byte_to_cp{};
  Gpt2Table() {
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      byte_to_cp[b] = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
    }
  }
};

const Gpt2Table& gpt2_table() {
  static const Gpt2Table table;
  return table;
}

}  // namespace

uint32_t utf8_decode(std::string_view text, size_t* pos) {
  size_t i = *pos;
  const uint8_t b0 = static_cast<uint8_t>(text[i]);
  auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(text[i + k]) & 0x3F); };
  if (b0 < 0x80) {
    *pos = i + 1;
    return b0;
  }
  if ((b0 & 0xE0) == 0xC0 && is_cont(text, i + 1)) {
    *pos = i + 2;
    return ((b0 & 0x1F) << 6) | b(1);
  }
  if ((b0 & 0xF0) == 0xE0 && is_cont(text, i + 1) && is_cont(text, i + 2)) {
    *pos = i + 3;
    return ((b0 & 0x0F) << 12) | (b(1) << 6) | b(2);
  }
  if ((b0 & 0xF8) == 0xF0 && is_cont(text, i + 1) && is_cont(text, i + 2) && is_cont(text, i + 3)) {
    *pos = i + 4;
    return ((b0 & 0x07) << 18) | (b(1) << 12) | (b(2) << 6) | b(3);
  }
  *pos = i + 1;
  return 0xFFFD;
}

void utf8_append(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0.
static size_t strict_len(std::string_view text, size_t i) {
  const uint8_t b0 = static_cast<uint8_t>(text[i]);
  if (b0 < 0x80) return 1;
  auto byte = [&](size_t k) { return i + k < text.size() ? static_cast<uint8_t>(text[i + k]) : 0; };
  auto cont = [](uint8_t b) { return (b & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(byte(1)) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    const uint8_t b1 = byte(1);
    const bool ok1 = b0 == 0xE0 ? (b1 >= 0xA0 && b1 <= 0xBF) : b0 == 0xED ? (b1 >= 0x80 && b1 <= 0x9F) : cont(b1);
    return ok1 && cont(byte(2)) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    const uint8_t b1 = byte(1);
    const bool ok1 = b0 == 0xF0 ? (b1 >= 0x90 && b1 <= 0xBF) : b0 == 0xF4 ? (b1 >= 0x80 && b1 <= 0x8F) : cont(b1);
    return ok1 && cont(byte(2)) && cont(byte(3)) ? 4 : 0;
  }
  return 0;
}

std::string utf8_sanitize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = strict_len(text, pos);
    if (len == 0) {
      out.append("\xEF\xBF\xBD");  // U+FFFD for each bad byte
      ++pos;
    } else {
      out.append(text.substr(pos, len));
      pos += len;
    }
  }
  return out;
}

size_t utf8_complete_prefix(std::string_view text) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  const size_t n = text.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const uint8_t c = static_cast<uint8_t>(text[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for its lead
    size_t need = 0;
    if ((c & 0xE0) == 0xC0) need = 2;
    else if ((c & 0xF0) == 0xE0) need = 3;
    else if ((c & 0xF8) == 0xF0) need = 4;
    return (need > back) ? n - back : n;
  }
  return n;
}

uint32_t gpt2_byte_to_cp(uint8_t byte) { return gpt2_table().byte_to_cp[byte]; }

int gpt2_cp_to_byte(uint32_t cp) {
  if (cp >= 0x21 && cp <= 0x7E) return static_cast<int>(cp);
  if (cp >= 0xA1 && cp <= 0xAC) return static_cast<int>(cp);
  if (cp >= 0xAE && cp <= 0xFF) return static_cast<int>(cp);
  if (cp >= 256 && cp < 256 + 68) {
    // The 68 unprintable bytes, in increasing order, map to 256, 257, ...
    static const std::array<int, 68> inverse = [] {
      std::array<int, 68> inv{};
      for (int b = 0; b < 256; ++b) {
        const uint32_t c = gpt2_table().byte_to_cp[b];
        if (c >= 256) inv[c - 256] = b;
      }
      return inv;
    }();
    return inverse[cp - 256];
  }
  return -1;
}

std::string gpt2_encode_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 2);
  for (char c : text) utf8_append(gpt2_byte_to_cp(static_cast<uint8_t>(c)), &out);
  return out;
}

}  // namespace kvc
