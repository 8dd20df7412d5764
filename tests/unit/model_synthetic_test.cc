// Tiny synthetic models of each Llama-family variant the loader supports (Llama 2 style,
// Llama 3 RoPE frequency divisors, Qwen 2 biases and NeoX RoPE, Mistral with linear RoPE
// scaling, quantized weights), written by the test, loaded by Model::load and run through the
// engine's forward pass; the logits are checked against a plain-loop reference written here
// from the model definition. Broken files must fail with a message naming the problem.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/error.h"
#include "cache/kv_cache.h"
#include "model/model.h"
#include "ops/thread_pool.h"
#include "quant/quant.h"
#include "quant/reference.h"
#include "support/tiny_model.h"

namespace kvc {
namespace {

using test::TinyLayer;
using test::TinyModelSpec;
using test::TinyWeights;

// ---------------------------------------------------------------------------------------------
// Reference: the model definition in double precision, all tokens at once with a causal mask.

struct RefModel {
  int n_layers = 0, n_embd = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, n_ff = 0, vocab = 0;
  double eps = 0;
  bool neox = false;               // RoPE pairs (i, i + d/2) instead of (2i, 2i + 1)
  double base = 0;
  double linear_factor = 1.0;
  std::vector<float> freq_factors;  // Llama 3 divisors per pair, or empty
  bool use_bias = false;
  bool gqa_interleaved = false;    // wrong grouping (query head h -> KV head h % n_kv), for tests
  // The engine's matmuls read their input in this type (Q8_0 for Q8_0 weights): the reference
  // rounds each matmul input the same way, so quantized models are checked tightly too.
  GgmlType act_type = GgmlType::F32;
};

RefModel ref_from_spec(const TinyModelSpec& s) {
  RefModel r;
  r.n_layers = s.n_layers;
  r.n_embd = s.n_embd;
  r.n_heads = s.n_heads;
  r.n_kv_heads = s.n_kv_heads;
  r.head_dim = s.head_dim;
  r.n_ff = s.n_ff;
  r.vocab = s.vocab;
  r.eps = s.rms_eps;
  r.neox = s.arch == "qwen2";
  r.base = s.rope_base;
  if (s.rope_scaling_type == "linear") r.linear_factor = s.rope_scaling_factor;
  r.freq_factors = s.rope_freqs;
  r.use_bias = s.qkv_bias;
  r.act_type = quant::activation_type(s.weight_type);
  return r;
}

using Vec = std::vector<double>;

// y[rows] = W[rows][cols] x, with x rounded to the activation type first
Vec matvec(const RefModel& m, const std::vector<float>& w, Vec x, int rows) {
  const int cols = static_cast<int>(x.size());
  if (m.act_type != GgmlType::F32) {
    std::vector<float> xf(x.begin(), x.end());
    std::vector<uint8_t> q(quant::row_bytes(m.act_type, cols));
    quant::ref::quantize_row(m.act_type, xf.data(), q.data(), cols);
    quant::ref::dequantize_row(m.act_type, q.data(), xf.data(), cols);
    x.assign(xf.begin(), xf.end());
  }
  Vec y(rows, 0.0);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c)
      y[r] += static_cast<double>(w[static_cast<size_t>(r) * cols + c]) * x[c];
  return y;
}

Vec rmsnorm(const Vec& x, const std::vector<float>& w, double eps) {
  double ms = 0;
  for (double v : x) ms += v * v;
  ms /= static_cast<double>(x.size());
  const double inv = 1.0 / std::sqrt(ms + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
  return y;
}

// Rotates each head of v (n_heads * head_dim) to position pos.
void rope(const RefModel& m, double* v, int n_heads, int pos) {
  const int d = m.head_dim;
  for (int h = 0; h < n_heads; ++h) {
    double* x = v + static_cast<size_t>(h) * d;
    for (int i = 0; i < d / 2; ++i) {
      double freq = std::pow(m.base, -2.0 * i / d) / m.linear_factor;
      if (!m.freq_factors.empty()) freq /= m.freq_factors[i];
      const double a = pos * freq;
      const int i0 = m.neox ? i : 2 * i;
      const int i1 = m.neox ? i + d / 2 : 2 * i + 1;
      const double x0 = x[i0], x1 = x[i1];
      x[i0] = x0 * std::cos(a) - x1 * std::sin(a);
      x[i1] = x0 * std::sin(a) + x1 * std::cos(a);
    }
  }
}

// Logits after every token: [n][vocab].
std::vector<Vec> reference_logits(const RefModel& m, const TinyWeights& w,
                                  const std::vector<int32_t>& tokens) {
  const int n = static_cast<int>(tokens.size());
  const int d = m.head_dim;
  const int q_dim = m.n_heads * d, kv_dim = m.n_kv_heads * d;
  std::vector<Vec> x(n);
  for (int t = 0; t < n; ++t) {
    const float* row = &w.token_embd[static_cast<size_t>(tokens[t]) * m.n_embd];
    x[t].assign(row, row + m.n_embd);
  }
  for (int l = 0; l < m.n_layers; ++l) {
    const TinyLayer& L = w.layers[l];
    std::vector<Vec> q(n), k(n), v(n);
    for (int t = 0; t < n; ++t) {
      const Vec h = rmsnorm(x[t], L.attn_norm, m.eps);
      q[t] = matvec(m, L.wq, h, q_dim);
      k[t] = matvec(m, L.wk, h, kv_dim);
      v[t] = matvec(m, L.wv, h, kv_dim);
      if (m.use_bias) {
        for (int i = 0; i < q_dim; ++i) q[t][i] += L.bq[i];
        for (int i = 0; i < kv_dim; ++i) k[t][i] += L.bk[i], v[t][i] += L.bv[i];
      }
      rope(m, q[t].data(), m.n_heads, t);
      rope(m, k[t].data(), m.n_kv_heads, t);
    }
    const int group = m.n_heads / m.n_kv_heads;
    for (int t = 0; t < n; ++t) {
      Vec att(q_dim, 0.0);
      for (int h = 0; h < m.n_heads; ++h) {
        const int kh = m.gqa_interleaved ? h % m.n_kv_heads : h / group;
        Vec s(t + 1);
        double mx = -1e300;
        for (int j = 0; j <= t; ++j) {
          double dot = 0;
          for (int i = 0; i < d; ++i) dot += q[t][h * d + i] * k[j][kh * d + i];
          s[j] = dot / std::sqrt(static_cast<double>(d));
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int j = 0; j <= t; ++j)
          for (int i = 0; i < d; ++i) att[h * d + i] += s[j] / sum * v[j][kh * d + i];
      }
      const Vec o = matvec(m, L.wo, att, m.n_embd);
      for (int i = 0; i < m.n_embd; ++i) x[t][i] += o[i];
    }
    for (int t = 0; t < n; ++t) {
      const Vec h = rmsnorm(x[t], L.ffn_norm, m.eps);
      Vec g = matvec(m, L.gate, h, m.n_ff);
      const Vec u = matvec(m, L.up, h, m.n_ff);
      for (int i = 0; i < m.n_ff; ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      const Vec o = matvec(m, L.down, g, m.n_embd);
      for (int i = 0; i < m.n_embd; ++i) x[t][i] += o[i];
    }
  }
  std::vector<Vec> logits(n);
  const std::vector<float>& out = w.output.empty() ? w.token_embd : w.output;
  for (int t = 0; t < n; ++t)
    logits[t] = matvec(m, out, rmsnorm(x[t], w.output_norm, m.eps), m.vocab);
  return logits;
}

// ---------------------------------------------------------------------------------------------
// Engine: the tokens in chunks, as a session feeds them, over "full" caches. By default the
// first kPrefill tokens in one chunk, then the rest one at a time. Returns the logits after each
// token: [n][vocab].

constexpr int kPrefill = 10;
constexpr int kDecode = 3;

std::vector<int32_t> test_tokens(int vocab, int n = kPrefill + kDecode) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back((i * 97 + 13) % vocab);
  return t;
}

// Keys and values stored as `kv_type`: f32 by default, so the engine can be held to the f32
// reference at 1e-4.
std::vector<Vec> engine_logits(const Model& model, const std::vector<int32_t>& tokens,
                               int threads, std::vector<int> chunks = {},
                               const std::string& kv_type = "f32") {
  if (chunks.empty()) {
    chunks.push_back(kPrefill);
    chunks.resize(chunks.size() + tokens.size() - kPrefill, 1);
  }
  const Transformer& tf = model.transformer();
  const int vocab = model.config().vocab_size;
  CacheConfig policy;
  policy.policy = "full";
  policy.context = 64;
  policy.type_k = policy.type_v = kv_type;
  ThreadPool pool(threads);
  auto caches = tf.make_caches(policy);
  std::vector<LayerKvCache*> ptrs;
  for (auto& c : caches) ptrs.push_back(c.get());
  ForwardScratch s;
  ActivationScratch act;
  std::vector<Vec> result;
  std::vector<float> out;
  auto run = [&](std::span<const int32_t> chunk) {
    tf.forward(chunk, ptrs, policy, pool, s);
    const int n = static_cast<int>(chunk.size());
    out.assign(static_cast<size_t>(n) * vocab, 0.0f);
    tf.logits(s, 0, n, out.data(), pool, act);
    for (int t = 0; t < n; ++t)
      result.emplace_back(out.begin() + static_cast<size_t>(t) * vocab,
                          out.begin() + static_cast<size_t>(t + 1) * vocab);
  };
  const std::span<const int32_t> all(tokens);
  size_t done = 0;
  for (int n : chunks) {
    run(all.subspan(done, n));
    done += n;
  }
  return result;
}

// max |a - b| over all tokens, relative to the largest reference logit.
double relative_error(const std::vector<Vec>& got, const std::vector<Vec>& want) {
  double err = 0, scale = 1e-30;
  for (size_t t = 0; t < want.size(); ++t)
    for (size_t i = 0; i < want[t].size(); ++i) {
      err = std::max(err, std::abs(got[t][i] - want[t][i]));
      scale = std::max(scale, std::abs(want[t][i]));
    }
  return err / scale;
}

std::string temp_path(const std::string& name) {
  return test::unique_temp_path("tiny_" + name);
}

struct Loaded {
  TinyWeights weights;
  std::unique_ptr<Model> model;
};

Loaded load(const std::string& name, const TinyModelSpec& spec) {
  Loaded l;
  const std::string path = temp_path(name);
  l.weights = test::write_tiny_model(path, spec);
  l.model = Model::load(path);
  return l;
}

// The engine matches the reference with 1, 2, 3 and 7 threads, and gives the same bits with each
// (every output is computed whole by one chunk of the pool); returns the 1-thread logits.
std::vector<Vec> expect_matches_reference(const TinyModelSpec& spec, const Loaded& l, double tol) {
  const std::vector<int32_t> tokens = test_tokens(spec.vocab);
  const std::vector<Vec> want = reference_logits(ref_from_spec(spec), l.weights, tokens);
  std::vector<Vec> first;
  for (int threads : {1, 2, 3, 7}) {
    const std::vector<Vec> got = engine_logits(*l.model, tokens, threads);
    EXPECT_EQ(got.size(), tokens.size());
    if (got.size() != tokens.size()) return got;
    // Last-token logits after the prefill and after every decoded token, then every token.
    for (int t = kPrefill - 1; t < static_cast<int>(tokens.size()); ++t)
      EXPECT_LT(relative_error({got[t]}, {want[t]}), tol)
          << "token " << t << ", " << threads << " threads";
    const double err = relative_error(got, want);
    EXPECT_LT(err, tol) << threads << " threads";
    ::testing::Test::RecordProperty("max_relative_error_threads_" + std::to_string(threads),
                                    fmt::format("{:.3g}", err));
    if (first.empty()) first = got;
    EXPECT_TRUE(got == first) << threads << " threads: not bit-identical to 1 thread";
  }
  return first;
}

// A reference with one feature changed lands far from the engine: the feature is exercised.
void expect_feature_matters(const RefModel& wrong, const Loaded& l, const std::vector<Vec>& engine,
                            double tol, const char* what) {
  const std::vector<Vec> ref = reference_logits(wrong, l.weights, test_tokens(wrong.vocab));
  const double err = relative_error(engine, ref);
  EXPECT_GT(err, 20 * tol) << what << " makes no visible difference";
  ::testing::Test::RecordProperty(std::string("without ") + what, fmt::format("{:.3g}", err));
}

constexpr double kF32Tol = 1e-4;

TinyModelSpec llama_spec() { return TinyModelSpec{}; }

TinyModelSpec llama3_spec() {
  TinyModelSpec s;
  s.seed = 2;
  s.rope_base = 500000.0;
  s.rope_freqs = {1.0f, 2.0f, 3.0f, 4.0f};  // head_dim 8: four pairs
  s.tied = true;
  return s;
}

TinyModelSpec qwen2_spec() {
  TinyModelSpec s;
  s.arch = "qwen2";
  s.seed = 3;
  s.rms_eps = 1e-6f;
  s.rope_base = 1000000.0;
  s.qkv_bias = true;
  s.tied = true;
  return s;
}

TinyModelSpec mistral_spec() {
  TinyModelSpec s;
  s.arch = "mistral";
  s.seed = 4;
  s.rope_scaling_type = "linear";
  s.rope_scaling_factor = 4.0f;
  return s;
}

// The default storage (f16 keys and values) rounds each cached element to 11 bits: the logits
// move off the f32 reference, but by far less than any feature of the model does (20 * 1e-4).
TEST(ModelSynthetic, F16CacheStaysCloseToTheReference) {
  const TinyModelSpec spec = llama_spec();
  const Loaded l = load("llama_f16_cache", spec);
  const std::vector<int32_t> tokens = test_tokens(spec.vocab);
  const std::vector<Vec> want = reference_logits(ref_from_spec(spec), l.weights, tokens);
  const double f32 = relative_error(engine_logits(*l.model, tokens, 2), want);
  const double f16 = relative_error(engine_logits(*l.model, tokens, 2, {}, "f16"), want);
  EXPECT_LT(f16, 2e-3);
  EXPECT_GT(f16, f32) << "the f16 cache is really rounded";
  ::testing::Test::RecordProperty("f16_relative_error", fmt::format("{:.3g}", f16));
}

TEST(ModelSynthetic, LlamaGqaMatchesReference) {
  const TinyModelSpec spec = llama_spec();
  const Loaded l = load("llama", spec);
  const ModelConfig& c = l.model->config();
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_EQ(c.n_heads, 4);
  EXPECT_EQ(c.n_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 300);
  EXPECT_EQ(c.rope_style, RopeStyle::Norm);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-5f);
  EXPECT_DOUBLE_EQ(c.rope_base, 10000.0);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(l.model->tokenizer().vocab_size(), 300);

  const auto engine = expect_matches_reference(spec, l, kF32Tol);
  RefModel wrong = ref_from_spec(spec);
  wrong.neox = true;
  expect_feature_matters(wrong, l, engine, kF32Tol, "NeoX pairing");
  wrong = ref_from_spec(spec);
  wrong.gqa_interleaved = true;
  expect_feature_matters(wrong, l, engine, kF32Tol, "GQA grouping");
  wrong = ref_from_spec(spec);
  wrong.eps = 1e-6;
  expect_feature_matters(wrong, l, engine, kF32Tol, "norm epsilon");
}

TEST(ModelSynthetic, Llama3FrequencyDivisorsAndTiedEmbeddingsMatchReference) {
  const TinyModelSpec spec = llama3_spec();
  const Loaded l = load("llama3", spec);
  const ModelConfig& c = l.model->config();
  EXPECT_DOUBLE_EQ(c.rope_base, 500000.0);
  EXPECT_EQ(c.rope_scaling.freq_factors, spec.rope_freqs);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(l.model->weights().output.data, l.model->weights().token_embd.data);

  const auto engine = expect_matches_reference(spec, l, kF32Tol);
  RefModel wrong = ref_from_spec(spec);
  wrong.freq_factors.clear();
  expect_feature_matters(wrong, l, engine, kF32Tol, "rope_freqs divisors");
  wrong = ref_from_spec(spec);
  wrong.base = 10000.0;
  expect_feature_matters(wrong, l, engine, kF32Tol, "RoPE base");
}

TEST(ModelSynthetic, Qwen2BiasesAndNeoxRopeMatchReference) {
  const TinyModelSpec spec = qwen2_spec();
  const Loaded l = load("qwen2", spec);
  const ModelConfig& c = l.model->config();
  EXPECT_EQ(c.arch, Arch::Qwen2);
  EXPECT_EQ(c.rope_style, RopeStyle::Neox);
  EXPECT_FLOAT_EQ(c.rms_eps, 1e-6f);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_NE(l.model->weights().layers[0].bq, nullptr);

  const auto engine = expect_matches_reference(spec, l, kF32Tol);
  RefModel wrong = ref_from_spec(spec);
  wrong.use_bias = false;
  expect_feature_matters(wrong, l, engine, kF32Tol, "q/k/v biases");
  wrong = ref_from_spec(spec);
  wrong.neox = false;
  expect_feature_matters(wrong, l, engine, kF32Tol, "Norm pairing");
  wrong = ref_from_spec(spec);
  wrong.eps = 1e-5;
  expect_feature_matters(wrong, l, engine, kF32Tol, "norm epsilon");
}

TEST(ModelSynthetic, MistralLinearRopeScalingMatchesReference) {
  const TinyModelSpec spec = mistral_spec();
  const Loaded l = load("mistral", spec);
  const ModelConfig& c = l.model->config();
  EXPECT_EQ(c.arch_name, "mistral");
  EXPECT_EQ(c.arch, Arch::Llama);
  EXPECT_FLOAT_EQ(c.rope_scaling.linear_factor, 4.0f);

  const auto engine = expect_matches_reference(spec, l, kF32Tol);
  RefModel wrong = ref_from_spec(spec);
  wrong.linear_factor = 1.0;
  expect_feature_matters(wrong, l, engine, kF32Tol, "linear RoPE factor");
}

TEST(ModelSynthetic, Q8_0WeightsMatchReference) {
  TinyModelSpec spec = llama_spec();
  spec.weight_type = GgmlType::Q8_0;
  const Loaded l = load("llama_q8_0", spec);
  EXPECT_EQ(l.model->weights().layers[0].wq.type, GgmlType::Q8_0);
  EXPECT_EQ(l.model->weights().token_embd.type, GgmlType::Q8_0);
  // The reference uses the dequantized weights and rounds matmul inputs to Q8_0 as the engine
  // does; the tolerance leaves room for an element rounding the other way (summation order).
  constexpr double kQ8Tol = 1e-3;
  const auto engine = expect_matches_reference(spec, l, kQ8Tol);
  RefModel wrong = ref_from_spec(spec);
  wrong.neox = true;
  expect_feature_matters(wrong, l, engine, kQ8Tol, "NeoX pairing");
  wrong = ref_from_spec(spec);
  wrong.act_type = GgmlType::F32;
  expect_feature_matters(wrong, l, engine, kQ8Tol, "rounding activations to Q8_0");
}

// Chunk sizes that walk the matmul's column tiles (16, 8, 4, 2, 1 and remainders) and a prefill
// far longer than a decode step: the logits do not depend on how the stream is cut.
TEST(ModelSynthetic, ChunkingDoesNotChangeLogits) {
  for (GgmlType type : {GgmlType::F32, GgmlType::Q8_0}) {
    TinyModelSpec spec = qwen2_spec();
    spec.weight_type = type;
    const char* name = quant::type_name(static_cast<uint32_t>(type));
    const Loaded l = load(std::string("chunks_") + name, spec);
    const double tol = type == GgmlType::F32 ? kF32Tol : 1e-3;
    const std::vector<int32_t> tokens = test_tokens(spec.vocab, 48);
    const std::vector<Vec> want = reference_logits(ref_from_spec(spec), l.weights, tokens);
    for (const std::vector<int>& chunks :
         {std::vector<int>{48}, {17, 16, 15}, {7, 1, 3, 5, 9, 2, 21}, {33, 1, 1, 13}}) {
      for (int threads : {1, 2}) {
        const std::vector<Vec> got = engine_logits(*l.model, tokens, threads, chunks);
        ASSERT_EQ(got.size(), tokens.size());
        EXPECT_LT(relative_error(got, want), tol)
            << name << ", first chunk " << chunks[0]
            << ", " << threads << " threads";
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Broken files.

std::string load_error(const std::string& name, const TinyModelSpec& spec) {
  const std::string path = temp_path(name);
  test::write_tiny_model(path, spec);
  try {
    Model::load(path);
  } catch (const Error& e) {
    ::testing::Test::RecordProperty("message", e.what());
    return e.what();
  }
  return "(loaded without error)";
}

TEST(ModelSynthetic, UnsupportedArchitectureIsNamed) {
  TinyModelSpec spec;
  spec.arch = "gpt-neox";
  const std::string msg = load_error("neox", spec);
  EXPECT_NE(msg.find("'gpt-neox'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not supported"), std::string::npos) << msg;
}

TEST(ModelSynthetic, MissingTensorIsNamed) {
  TinyModelSpec spec;
  spec.omit_tensor = "blk.1.ffn_up.weight";
  const std::string msg = load_error("missing", spec);
  EXPECT_NE(msg.find("missing tensor 'blk.1.ffn_up.weight'"), std::string::npos) << msg;
}

TEST(ModelSynthetic, MissingQwen2BiasIsNamed) {
  TinyModelSpec spec = qwen2_spec();
  spec.omit_tensor = "blk.0.attn_k.bias";
  const std::string msg = load_error("missing_bias", spec);
  EXPECT_NE(msg.find("missing tensor 'blk.0.attn_k.bias'"), std::string::npos) << msg;
}

TEST(ModelSynthetic, WrongTensorShapeIsNamed) {
  TinyModelSpec spec;
  spec.misshape_tensor = "blk.0.attn_k.weight";  // 17 rows for 2 KV heads of 8
  const std::string msg = load_error("shape", spec);
  EXPECT_NE(msg.find("blk.0.attn_k.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[32, 17]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[32, 16]"), std::string::npos) << msg;
}

TEST(ModelSynthetic, WrongRopeFreqsLengthIsNamed) {
  TinyModelSpec spec = llama3_spec();
  spec.rope_freqs = {1.0f, 2.0f, 3.0f};
  const std::string msg = load_error("rope_freqs", spec);
  EXPECT_NE(msg.find("rope_freqs.weight"), std::string::npos) << msg;
}

TEST(ModelSynthetic, UnsupportedRopeScalingIsNamed) {
  TinyModelSpec spec = mistral_spec();
  spec.rope_scaling_type = "yarn";
  const std::string msg = load_error("yarn", spec);
  EXPECT_NE(msg.find("'yarn'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not supported"), std::string::npos) << msg;
}

// Metadata that can only produce garbage is a load error naming the key.
TEST(ModelSynthetic, UnusableNormEpsilonIsNamed) {
  for (float eps : {0.0f, -1.0f, NAN, INFINITY}) {
    TinyModelSpec spec;
    spec.rms_eps = eps;
    const std::string msg = load_error("eps", spec);
    EXPECT_NE(msg.find("llama.attention.layer_norm_rms_epsilon"), std::string::npos) << eps << ": " << msg;
  }
}

TEST(ModelSynthetic, UnusableRopeBaseIsNamed) {
  for (double base : {0.0, -10000.0, 1.0, double(NAN), double(INFINITY)}) {
    TinyModelSpec spec;
    spec.rope_base = base;
    const std::string msg = load_error("rope_base", spec);
    EXPECT_NE(msg.find("llama.rope.freq_base"), std::string::npos) << base << ": " << msg;
  }
}

TEST(ModelSynthetic, NonFiniteNormWeightIsNamed) {
  for (const char* tensor : {"blk.1.attn_norm.weight", "output_norm.weight", "blk.0.ffn_norm.weight"}) {
    TinyModelSpec spec;
    spec.nan_tensor = tensor;
    const std::string msg = load_error("nan_norm", spec);
    EXPECT_NE(msg.find(fmt::format("tensor '{}' holds nan at element 0", tensor)), std::string::npos)
        << msg;
  }
}

TEST(ModelSynthetic, NonPositiveRopeFreqFactorIsNamed) {
  TinyModelSpec spec = llama3_spec();
  spec.rope_freqs[1] = 0.0f;
  const std::string msg = load_error("rope_freqs_zero", spec);
  EXPECT_NE(msg.find("rope_freqs.weight holds 0 at element 1"), std::string::npos) << msg;
}

}  // namespace
}  // namespace kvc
