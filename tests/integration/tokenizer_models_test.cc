// The tokenizers of the shipped models against llama.cpp: tests/fixtures/tokenizer_*.json hold
// the ids, pieces and decodes that llama.cpp produced (tools/make-tokenizer-fixtures.py).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "gguf/gguf_file.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace kvc {
namespace {

using nlohmann::json;

std::string unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

bool valid_utf8(const std::string& s) { return utf8_sanitize(s) == s; }

// SHA-256 of the ids as little-endian int32, to compare with the fixture's digest of the long text.
std::string sha256_ids(const std::vector<int32_t>& ids) {
  static const uint32_t k[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
      0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
      0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
      0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
      0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
      0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
      0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
  std::vector<uint8_t> msg;
  for (int32_t id : ids) {
    for (int b = 0; b < 4; ++b) msg.push_back(static_cast<uint8_t>(static_cast<uint32_t>(id) >> (8 * b)));
  }
  const uint64_t bits = msg.size() * 8;
  msg.push_back(0x80);
  while (msg.size() % 64 != 56) msg.push_back(0);
  for (int b = 7; b >= 0; --b) msg.push_back(static_cast<uint8_t>(bits >> (8 * b)));
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  auto rotr = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  for (size_t off = 0; off < msg.size(); off += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = (uint32_t{msg[off + 4 * i]} << 24) | (uint32_t{msg[off + 4 * i + 1]} << 16) |
             (uint32_t{msg[off + 4 * i + 2]} << 8) | msg[off + 4 * i + 3];
    }
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
  }
  return fmt::format("{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}", h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
}

struct Fixture {
  json data;
  std::unique_ptr<Tokenizer> tokenizer;
  ChatFormat chat_format = ChatFormat::ChatML;
};

// One load per model for the whole test binary: the Gemma vocabulary has 262,144 entries.
const Fixture& fixture(const std::string& name) {
  static std::map<std::string, Fixture> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  Fixture f;
  std::ifstream in(std::string(KVC_SOURCE_DIR) + "/tests/fixtures/tokenizer_" + name + ".json");
  EXPECT_TRUE(in.good()) << "missing fixture for " << name;
  if (in.good()) {
    f.data = json::parse(in);
    const std::string model = std::string(KVC_SOURCE_DIR) + "/" + f.data["model"].get<std::string>();
    if (std::filesystem::exists(model)) {
      auto file = GgufFile::open(model);
      f.tokenizer = std::make_unique<Tokenizer>(load_vocab(*file));
      f.chat_format = detect_chat_format(*file);
    }
  }
  return cache.emplace(name, std::move(f)).first->second;
}

class TokenizerModels : public ::testing::TestWithParam<std::string> {
 protected:
  const Fixture& f() {
    const Fixture& fx = fixture(GetParam());
    if (!fx.tokenizer) {
      ADD_FAILURE() << "model for " << GetParam() << " not found; run scripts/fetch-model.sh";
    }
    return fx;
  }
};

TEST_P(TokenizerModels, VocabularyFacts) {
  const Fixture& fx = f();
  if (!fx.tokenizer) return;
  const Tokenizer& tok = *fx.tokenizer;
  EXPECT_EQ(tok.vocab_size(), fx.data["n_vocab"].get<int>());
  EXPECT_EQ(tok.bos(), fx.data["bos"].get<int32_t>());
  EXPECT_EQ(tok.eos(), fx.data["eos"].get<int32_t>());
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    if (tok.is_eog(id)) eog.push_back(id);
  }
  EXPECT_EQ(eog, fx.data["eog"].get<std::vector<int32_t>>());
}

TEST_P(TokenizerModels, EncodeMatchesLlamaCpp) {
  const Fixture& fx = f();
  if (!fx.tokenizer) return;
  int checked = 0;
  for (const json& c : fx.data["cases"]) {
    const std::string text = c["text"];
    const bool add_special = c["add_special"], parse_special = c["parse_special"];
    const auto expected = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(fx.tokenizer->encode(text, add_special, parse_special), expected)
        << "text: \"" << text << "\" add_special=" << add_special << " parse_special=" << parse_special;
    ++checked;
  }
  EXPECT_GE(checked, 90);
}

TEST_P(TokenizerModels, DecodeMatchesLlamaCpp) {
  const Fixture& fx = f();
  if (!fx.tokenizer) return;
  for (const json& c : fx.data["cases"]) {
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(fx.tokenizer->decode(ids), unhex(c["decoded_hex"])) << "text: \"" << c["text"].get<std::string>() << "\"";
  }
}

TEST_P(TokenizerModels, PiecesMatchLlamaCpp) {
  const Fixture& fx = f();
  if (!fx.tokenizer) return;
  for (const json& p : fx.data["pieces"]) {
    const int32_t id = p["id"];
    EXPECT_EQ(fx.tokenizer->token_piece(id), unhex(p["hex"])) << "id " << id;
    EXPECT_EQ(fx.tokenizer->decode_piece(id), unhex(p["plain_hex"])) << "id " << id;
  }
}

// The same long text the fixture script tokenized: 3000 numbered lines cycling the cases.
std::string long_text(const json& data) {
  std::vector<std::string> texts;
  for (const json& c : data["cases"]) {
    if (texts.empty() || texts.back() != c["text"].get<std::string>()) texts.push_back(c["text"]);
  }
  std::string out;
  const int lines = data["long_text"]["lines"];
  for (int i = 0; i < lines; ++i) out += std::to_string(i) + ": " + texts[i % texts.size()] + "\n";
  return out;
}

TEST_P(TokenizerModels, LongTextMatchesLlamaCpp) {
  const Fixture& fx = f();
  if (!fx.tokenizer) return;
  const std::string text = long_text(fx.data);
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = fx.tokenizer->encode(text, false, false);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const json& lt = fx.data["long_text"];
  ASSERT_EQ(ids.size(), lt["n_ids"].get<size_t>());
  EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + 64), lt["first_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(std::vector<int32_t>(ids.end() - 64, ids.end()), lt["last_ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(sha256_ids(ids), lt["sha256"].get<std::string>());
  EXPECT_EQ(fx.tokenizer->decode(ids), text);
  std::printf("[ %s ] long text: %zu bytes -> %zu tokens in %.3f s (%.0f tokens/s)\n", GetParam().c_str(),
              text.size(), ids.size(), s, ids.size() / s);
}

TEST_P(TokenizerModels, StreamingDecodeEqualsFullDecode) {
  const Fixture& fx = f();
  if (!fx.tokenizer) return;
  const std::string text =
      "Emoji \U0001F600\U0001F680 and CJK \u4f60\u597d\u4e16\u754c, accents caf\u00e9 na\u00efve, "
      "Hangul \ud55c\uad6d\uc5b4, rare \U00010348 \U0001D11E \u2764\ufe0f!";
  const auto ids = fx.tokenizer->encode(text, false, false);
  StreamDecoder stream(*fx.tokenizer);
  std::string streamed;
  int held_back = 0;
  for (int32_t id : ids) {
    const std::string part = stream.push(id);
    EXPECT_TRUE(valid_utf8(part)) << "token " << id << " emitted invalid UTF-8";
    if (part.empty()) ++held_back;
    streamed += part;
  }
  streamed += stream.flush();
  EXPECT_EQ(streamed, fx.tokenizer->decode(ids));
  EXPECT_EQ(streamed, text);
  // The rare characters have no token of their own, so some bytes had to wait.
  EXPECT_GT(held_back, 0);
}

TEST_P(TokenizerModels, ChatTemplateMatchesTheFilesOwn) {
  const Fixture& fx = f();
  if (!fx.tokenizer) return;
  if (GetParam() == "gemma3") {
    EXPECT_EQ(fx.chat_format, ChatFormat::Gemma);  // no template in the file: by architecture
  } else {
    EXPECT_EQ(fx.chat_format, ChatFormat::SmolLM2);
  }
  // where the file carries a template, the fixture holds its Jinja2 rendering
  for (const json& c : fx.data["chats"]) {
    std::vector<ChatMessage> messages;
    for (const json& m : c["messages"]) messages.push_back({m["role"], m["content"]});
    EXPECT_EQ(apply_chat_template(fx.chat_format, messages, c["add_generation_prompt"]), c["text"].get<std::string>());
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TokenizerModels, ::testing::Values("smollm2", "gemma3"));

}  // namespace
}  // namespace kvc
