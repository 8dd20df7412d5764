// Hyper-parameters as read_config() takes them from GGUF metadata: a value out of range is a
// load error naming the key, before anything is allocated from it. The metadata is Gemma 3
// 270M's (the architecture with the most keys: sliding window, second RoPE base, soft-cap),
// with one value changed per case.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "gguf/gguf_file.h"
#include "model/config.h"
#include "support/gguf_writer.h"

namespace kvc {
namespace {

using test::GgufWriter;

// Gemma 3 270M's hyper-parameters with a tiny vocabulary; `change` edits or adds keys after the
// defaults (a key written twice is an error, so a case replaces a default by skipping it).
std::vector<uint8_t> gemma3_metadata(const std::function<void(GgufWriter&)>& change,
                                     const std::vector<std::string>& skip = {}) {
  GgufWriter w;
  auto skipped = [&](const std::string& k) {
    return std::find(skip.begin(), skip.end(), k) != skip.end();
  };
  auto u32 = [&](const std::string& k, uint32_t v) {
    if (!skipped(k)) w.add_u32(k, v);
  };
  auto f32 = [&](const std::string& k, float v) {
    if (!skipped(k)) w.add_f32(k, v);
  };
  w.add_string("general.architecture", "gemma3");
  u32("gemma3.block_count", 18);
  u32("gemma3.context_length", 32768);
  u32("gemma3.embedding_length", 640);
  u32("gemma3.feed_forward_length", 2048);
  u32("gemma3.attention.head_count", 4);
  u32("gemma3.attention.head_count_kv", 1);
  u32("gemma3.attention.key_length", 256);
  u32("gemma3.attention.value_length", 256);
  f32("gemma3.attention.layer_norm_rms_epsilon", 1e-6f);
  u32("gemma3.attention.sliding_window", 512);
  f32("gemma3.rope.freq_base", 1e6f);
  change(w);
  w.add_tensor_f32("token_embd.weight", {640, 4}, std::vector<float>(640 * 4, 0.0f));
  return w.bytes();
}

ModelConfig config_of(const std::vector<uint8_t>& bytes) {
  const auto file = GgufFile::parse(bytes.data(), bytes.size());
  return read_config(*file);
}

// The error read_config() throws, or "(no error)".
std::string config_error(const std::vector<uint8_t>& bytes) {
  try {
    config_of(bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

template <typename T>
std::string error_with(const std::string& key, T value) {
  return config_error(gemma3_metadata(
      [&](GgufWriter& w) {
        if constexpr (std::is_same_v<T, float>)
          w.add_f32(key, value);
        else if constexpr (std::is_same_v<T, uint64_t>)
          w.add_u64(key, value);
        else
          w.add_u32(key, value);
      },
      {key}));
}

TEST(ModelConfig, TheDefaultsLoad) {
  const ModelConfig c = config_of(gemma3_metadata([](GgufWriter&) {}));
  EXPECT_EQ(c.sliding_window, 512);
  EXPECT_EQ(c.n_local_layers(), 15);
  EXPECT_EQ(c.context_length, 32768);
}

TEST(ModelConfig, SlidingWindowLongerThanTheContextIsNamed) {
  for (uint32_t window : {2097152u, 32769u, 0u}) {
    const std::string msg = error_with("gemma3.attention.sliding_window", window);
    EXPECT_NE(msg.find("gemma3.attention.sliding_window = " + std::to_string(window)),
              std::string::npos)
        << msg;
  }
}

TEST(ModelConfig, SlidingWindowAbove2To31DoesNotTurnNegative) {
  // Read as int, 2^31 used to become negative and silently turn every layer global.
  for (uint32_t window : {2147483648u, 4294967295u}) {
    const std::string msg = error_with("gemma3.attention.sliding_window", window);
    EXPECT_NE(msg.find("= " + std::to_string(window) + " is out of range"), std::string::npos) << msg;
  }
}

TEST(ModelConfig, ContextLengthOutOfRangeIsNamed) {
  EXPECT_NE(error_with("gemma3.context_length", 0u).find("gemma3.context_length = 0"),
            std::string::npos);
  const std::string msg = error_with("gemma3.context_length", uint64_t{1} << 40);
  EXPECT_NE(msg.find("gemma3.context_length = 1099511627776 is out of range"), std::string::npos)
      << msg;
}

TEST(ModelConfig, HeadCountsOutOfRangeAreNamed) {
  EXPECT_NE(error_with("gemma3.attention.head_count", 0u).find("gemma3.attention.head_count = 0"),
            std::string::npos);
  EXPECT_NE(error_with("gemma3.attention.head_count", 2147483648u)
                .find("gemma3.attention.head_count = 2147483648 is out of range"),
            std::string::npos);
  EXPECT_NE(error_with("gemma3.attention.head_count_kv", 3u).find("cannot be grouped"),
            std::string::npos);
  EXPECT_NE(error_with("gemma3.block_count", 4294967295u).find("gemma3.block_count = 4294967295"),
            std::string::npos);
  // Without key_length the head size is derived, and must divide the embedding.
  const std::string msg = config_error(gemma3_metadata(
      [](GgufWriter& w) { w.add_u32("gemma3.attention.head_count", 3); },
      {"gemma3.attention.head_count", "gemma3.attention.key_length",
       "gemma3.attention.value_length"}));
  EXPECT_NE(msg.find("embedding length 640 does not split into 3 heads"), std::string::npos) << msg;
}

TEST(ModelConfig, NormEpsilonMustBeFiniteAndPositive) {
  for (float eps : {0.0f, -1.0f, NAN, INFINITY, -INFINITY, 2.0f}) {
    const std::string msg = error_with("gemma3.attention.layer_norm_rms_epsilon", eps);
    EXPECT_NE(msg.find("gemma3.attention.layer_norm_rms_epsilon = "), std::string::npos)
        << eps << ": " << msg;
    EXPECT_NE(msg.find("RMS norm epsilon"), std::string::npos) << msg;
  }
}

TEST(ModelConfig, RopeBasesMustBeFiniteAndAboveOne) {
  for (const char* key : {"gemma3.rope.freq_base", "gemma3.rope.freq_base_swa"}) {
    for (float base : {0.0f, -1e4f, 1.0f, NAN, INFINITY}) {
      const std::string msg = error_with(key, base);
      EXPECT_NE(msg.find(std::string(key) + " = "), std::string::npos) << base << ": " << msg;
      EXPECT_NE(msg.find("RoPE base"), std::string::npos) << msg;
    }
  }
}

TEST(ModelConfig, SoftCapMustBeFinite) {
  for (float cap : {NAN, INFINITY, -30.0f}) {
    const std::string msg = error_with("gemma3.final_logit_softcapping", cap);
    EXPECT_NE(msg.find("gemma3.final_logit_softcapping"), std::string::npos) << cap << ": " << msg;
  }
  EXPECT_EQ(error_with("gemma3.final_logit_softcapping", 30.0f), "(no error)");
}

}  // namespace
}  // namespace kvc
