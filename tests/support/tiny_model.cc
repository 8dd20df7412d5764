#include "support/tiny_model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <random>
#include <stdexcept>

#include "quant/quant.h"
#include "quant/reference.h"

namespace kvc::test {

namespace {

// GPT-2's byte-level alphabet: printable bytes stand for themselves, the rest are moved to
// code points from 256 on, so every byte has a visible one-character token.
std::string byte_token(int b) {
  const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  int cp = b;
  if (!printable) {
    int n = 0;
    for (int x = 0; x < b; ++x)
      if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) ++n;
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  // n values uniform in [-a, a] (plus `center`)
  std::vector<float> uniform(size_t n, float a, float center = 0.0f) {
    std::uniform_real_distribution<float> d(-a, a);
    std::vector<float> v(n);
    for (float& x : v) x = center + d(gen_);
    return v;
  }

 private:
  std::mt19937_64 gen_;
};

// A matrix with `cols` inputs: entries scaled so outputs keep roughly unit size.
std::vector<float> matrix(Rng& rng, int rows, int cols, float gain = 1.0f) {
  return rng.uniform(static_cast<size_t>(rows) * cols, gain * std::sqrt(3.0f / cols));
}

// Replaces m by what quantizing it to `type` row by row leaves.
void round_trip(std::vector<float>& m, int cols, GgmlType type) {
  if (type == GgmlType::F32) return;
  std::vector<uint8_t> row(quant::row_bytes(type, cols));
  for (size_t r = 0; r < m.size() / cols; ++r) {
    quant::ref::quantize_row(type, m.data() + r * cols, row.data(), cols);
    quant::ref::dequantize_row(type, row.data(), m.data() + r * cols, cols);
  }
}

}  // namespace

TinyWeights make_tiny_weights(const TinyModelSpec& s) {
  Rng rng(s.seed);
  TinyWeights w;
  const int q_dim = s.n_heads * s.head_dim;
  const int kv_dim = s.n_kv_heads * s.head_dim;
  // Small embeddings (rms 0.01) so the first norm's epsilon visibly matters.
  w.token_embd = rng.uniform(static_cast<size_t>(s.vocab) * s.n_embd, 0.01f * std::sqrt(3.0f));
  w.output_norm = rng.uniform(s.n_embd, 0.2f, 1.0f);
  if (!s.tied) w.output = matrix(rng, s.vocab, s.n_embd);
  w.layers.resize(s.n_layers);
  for (TinyLayer& L : w.layers) {
    L.attn_norm = rng.uniform(s.n_embd, 0.2f, 1.0f);
    // Larger q and k so attention is far from uniform and positions matter.
    L.wq = matrix(rng, q_dim, s.n_embd, 2.0f);
    L.wk = matrix(rng, kv_dim, s.n_embd, 2.0f);
    L.wv = matrix(rng, kv_dim, s.n_embd);
    if (s.qkv_bias) {
      L.bq = rng.uniform(q_dim, 0.5f);
      L.bk = rng.uniform(kv_dim, 0.5f);
      L.bv = rng.uniform(kv_dim, 0.5f);
    }
    L.wo = matrix(rng, s.n_embd, q_dim);
    L.ffn_norm = rng.uniform(s.n_embd, 0.2f, 1.0f);
    L.gate = matrix(rng, s.n_ff, s.n_embd, 2.0f);
    L.up = matrix(rng, s.n_ff, s.n_embd);
    L.down = matrix(rng, s.n_embd, s.n_ff);
  }
  return w;
}

GgufWriter tiny_model_writer(const TinyModelSpec& s, TinyWeights& w) {
  if (s.vocab < 256) throw std::invalid_argument("tiny model: vocab must hold the 256 bytes");
  const std::string& a = s.arch;
  GgufWriter g;
  g.add_string("general.architecture", a);
  g.add_string("general.name", "tiny-" + a);
  g.add_u32(a + ".block_count", s.n_layers);
  g.add_u32(a + ".context_length", 256);
  g.add_u32(a + ".embedding_length", s.n_embd);
  g.add_u32(a + ".feed_forward_length", s.n_ff);
  g.add_u32(a + ".attention.head_count", s.n_heads);
  g.add_u32(a + ".attention.head_count_kv", s.n_kv_heads);
  g.add_u32(a + ".attention.key_length", s.head_dim);
  g.add_u32(a + ".attention.value_length", s.head_dim);
  g.add_f32(a + ".attention.layer_norm_rms_epsilon", s.rms_eps);
  g.add_u32(a + ".rope.dimension_count", s.head_dim);
  g.add_f32(a + ".rope.freq_base", static_cast<float>(s.rope_base));
  if (!s.rope_scaling_type.empty()) {
    g.add_string(a + ".rope.scaling.type", s.rope_scaling_type);
    g.add_f32(a + ".rope.scaling.factor", s.rope_scaling_factor);
  }

  // Byte-level BPE: the 256 bytes, then one merged token per merge ("a"+"a", "b"+"a", ...).
  std::vector<std::string> tokens, merges;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_token(b));
  for (int i = 0; i < s.vocab - 256; ++i) {
    const std::string l(1, static_cast<char>('a' + i % 26));
    const std::string r(1, static_cast<char>('a' + i / 26));
    merges.push_back(l + " " + r);
    tokens.push_back(l + r);
  }
  g.add_string("tokenizer.ggml.model", "gpt2");
  g.add_string("tokenizer.ggml.pre", "default");
  g.add_string_array("tokenizer.ggml.tokens", tokens);
  g.add_i32_array("tokenizer.ggml.token_type", std::vector<int32_t>(tokens.size(), 1));
  g.add_string_array("tokenizer.ggml.merges", merges);

  auto add = [&](const std::string& name, std::vector<float>& x, int cols, int rows,
                 bool quantize) {
    if (name == s.omit_tensor) return;
    const GgmlType type = quantize ? s.weight_type : GgmlType::F32;
    round_trip(x, cols, type);
    std::vector<int64_t> dims{cols};
    if (rows > 0) dims.push_back(name == s.misshape_tensor ? rows + 1 : rows);
    std::vector<float> values = x;
    if (name == s.misshape_tensor) values.resize(values.size() + cols, 0.0f);
    if (name == s.nan_tensor) values[0] = std::nanf("");
    g.add_tensor_f32(name, dims, values, type);
  };
  const int q_dim = s.n_heads * s.head_dim;
  const int kv_dim = s.n_kv_heads * s.head_dim;
  add("token_embd.weight", w.token_embd, s.n_embd, s.vocab, true);
  add("output_norm.weight", w.output_norm, s.n_embd, 0, false);
  if (!s.tied) add("output.weight", w.output, s.n_embd, s.vocab, true);
  if (!s.rope_freqs.empty()) {
    std::vector<float> f = s.rope_freqs;
    add("rope_freqs.weight", f, static_cast<int>(f.size()), 0, false);
  }
  for (int l = 0; l < s.n_layers; ++l) {
    TinyLayer& L = w.layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", L.attn_norm, s.n_embd, 0, false);
    add(p + "attn_q.weight", L.wq, s.n_embd, q_dim, true);
    add(p + "attn_k.weight", L.wk, s.n_embd, kv_dim, true);
    add(p + "attn_v.weight", L.wv, s.n_embd, kv_dim, true);
    if (s.qkv_bias) {
      add(p + "attn_q.bias", L.bq, q_dim, 0, false);
      add(p + "attn_k.bias", L.bk, kv_dim, 0, false);
      add(p + "attn_v.bias", L.bv, kv_dim, 0, false);
    }
    add(p + "attn_output.weight", L.wo, q_dim, s.n_embd, true);
    add(p + "ffn_norm.weight", L.ffn_norm, s.n_embd, 0, false);
    add(p + "ffn_gate.weight", L.gate, s.n_embd, s.n_ff, true);
    add(p + "ffn_up.weight", L.up, s.n_embd, s.n_ff, true);
    add(p + "ffn_down.weight", L.down, s.n_ff, s.n_embd, true);
  }
  return g;
}

TinyWeights write_tiny_model(const std::string& path, const TinyModelSpec& spec) {
  TinyWeights w = make_tiny_weights(spec);
  tiny_model_writer(spec, w).write(path);
  return w;
}

std::string unique_temp_path(const std::string& stem) {
  std::string test = "notest";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info())
    test = std::string(info->test_suite_name()) + "." + info->name();
  for (char& c : test)
    if (c == '/') c = '_';  // parameterized names hold slashes
  return ::testing::TempDir() + "kvc_" + stem + "_" + test + "_" + std::to_string(getpid()) + ".gguf";
}

}  // namespace kvc::test
