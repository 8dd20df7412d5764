// The forward pass of the shipped models against llama.cpp: tests/fixtures/reference_*.json hold
// llama.cpp's greedy continuations (with the top-1/top-2 logit gap at every step) and the
// perplexity of a fixed 2,048-token text (tools/make-reference.py). The prompts are fed as the
// fixture's token ids, not through our tokenizer, so only the forward pass is under test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cache/kv_cache.h"
#include "engine/session.h"
#include "model/model.h"

namespace kvc {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// How far two correct engines' logits drift apart, measured with llama.cpp itself (see
// docs/benchmarks.md "Reference fixtures"): llama.cpp against itself with an f32 KV cache and no
// flash attention instead of f16 + flash moves the top-10 logits relative to the top-1 by up to
// 0.45 (SmolLM2) and 0.77 (Gemma 3), and its greedy continuations part at the same near-ties ours
// do (Gemma 3 "code" parts at step 42 in both, ours with an implied error of 0.64). Our engine
// keeps f32 keys and values, so it sits at that noise floor, not at zero.
// A divergence is a near-tie when the error it implies in the logit difference of the two tokens
// (llama.cpp's gap + ours the other way) stays under this. A difference of two logits carries
// both their drifts, up to 2 x 0.77 on Gemma 3 by the measurement above; 1.0 stays well inside
// it (Gemma 3 "code" step 42 implies 0.96 since the SIMD GeGLU and VNNI matmul kernels moved
// our rounding, where llama.cpp's own gap is 0.04).
constexpr float kTiePairError = 1.0f;
// Perplexity must agree with llama.cpp's within this relative error.
constexpr double kPplRelTol = 0.01;
constexpr int kThreads = 2;

const std::map<std::string, std::string> kModelFiles = {
    {"smollm2", "models/SmolLM2-135M-Instruct.Q4_1.gguf"},
    {"gemma3", "models/gemma-3-270m-q4_k_m.gguf"},
};

std::string source_path(const std::string& rel) { return std::string(KVC_SOURCE_DIR) + "/" + rel; }

const json& fixture(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, json> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded.find(name);
  if (it == loaded.end()) {
    std::ifstream in(source_path("tests/fixtures/reference_" + name + ".json"));
    if (!in) throw std::runtime_error("missing fixture reference_" + name + ".json (tools/make-reference.py)");
    it = loaded.emplace(name, json::parse(in)).first;
  }
  return it->second;
}

// Models are loaded once per test binary: loading maps the file and binds every tensor.
const Model* model(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Model>> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded.find(name);
  if (it == loaded.end()) it = loaded.emplace(name, Model::load(source_path(kModelFiles.at(name)))).first;
  return it->second.get();
}

CacheConfig full_cache() {
  CacheConfig c;
  c.policy = "full";
  c.context = 4096;
  return c;
}

SessionOptions options(const CacheConfig& cache, int stride = 512) {
  SessionOptions o;
  o.threads = kThreads;
  o.cache = cache;
  o.stride = stride;
  return o;
}

struct Top2 {
  int32_t id = -1;
  float gap = 0.0f;  // top-1 logit minus top-2 logit
};

Top2 top2(const float* logits, int n) {
  int a = 0, b = -1;
  for (int i = 1; i < n; ++i) {
    if (logits[i] > logits[a]) {
      b = a;
      a = i;
    } else if (b < 0 || logits[i] > logits[b]) {
      b = i;
    }
  }
  return {a, logits[a] - logits[b]};
}

std::vector<int32_t> ids_of(const json& j) { return j.get<std::vector<int32_t>>(); }

class ModelGolden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string path = source_path(kModelFiles.at(GetParam()));
    if (!fs::exists(path)) GTEST_SKIP() << path << " missing (scripts/fetch-model.sh)";
    ref_ = &fixture(GetParam());
    model_ = model(GetParam());
    ASSERT_EQ(model_->config().vocab_size, ref_->at("n_vocab").get<int>())
        << "the fixture was made from another model file";
  }
  const json* ref_ = nullptr;
  const Model* model_ = nullptr;
};

// Greedy decoding from the fixture's prompt ids reproduces llama.cpp's continuation. At the first
// differing step the test fails unless both engines saw a near-tie there; after an accepted
// near-tie the continuations may legitimately part, so the rest is not compared.
TEST_P(ModelGolden, GreedyContinuationsMatchLlamaCpp) {
  Session session(*model_, options(full_cache()));
  const int vocab = session.vocab_size();
  int compared = 0, total = 0;
  for (const json& c : ref_->at("greedy")) {
    const std::string name = c.at("name");
    const auto prompt = ids_of(c.at("prompt_ids"));
    const auto want = ids_of(c.at("continuation"));
    const auto gaps = c.at("gaps").get<std::vector<float>>();
    total += static_cast<int>(want.size());
    session.reset();
    session.feed(prompt);
    for (size_t step = 0; step < want.size(); ++step) {
      const float* logits = session.logits();
      const Top2 ours = top2(logits, vocab);
      if (ours.id != want[step]) {
        // How far llama.cpp's choice is below ours in our own logits.
        const float our_margin = logits[ours.id] - logits[want[step]];
        const std::string where = fmt::format(
            "{}: prompt '{}' ({} ids), step {}: llama.cpp chose {} (its top-1/top-2 gap {:.4f}), we chose "
            "{} (our gap to llama.cpp's token {:.4f}, our top-1/top-2 gap {:.4f}); tokens so far agree",
            GetParam(), name, prompt.size(), step, want[step], gaps[step], ours.id, our_margin, ours.gap);
        const bool tie = gaps[step] + our_margin < kTiePairError;
        EXPECT_TRUE(tie) << "divergence, not a near-tie: " << where;
        if (tie) std::cout << "[ near-tie ] " << where << "\n";
        break;
      }
      ++compared;
      if (step + 1 < want.size()) session.feed(std::span<const int32_t>(&want[step], 1));
    }
  }
  std::cout << "[ greedy   ] " << GetParam() << ": " << compared << " of " << total
            << " tokens compared before near-ties\n";
}

// The logits right after each prompt: the ten candidates llama.cpp ranked highest keep their
// distances to llama.cpp's top-1 (a constant shift of all logits changes no probability) within
// the noise floor measured above (0.77 for llama.cpp against itself). Catches a wrong scale (a
// missing norm weight, softcap or embedding scale) that leaves the argmax alone.
TEST_P(ModelGolden, FirstStepTopLogitsMatchLlamaCpp) {
  constexpr float kLogitTol = 0.8f;
  Session session(*model_, options(full_cache()));
  float worst = 0.0f;
  for (const json& c : ref_->at("greedy")) {
    session.reset();
    session.feed(ids_of(c.at("prompt_ids")));
    const json& top = c.at("first_top");
    const float* logits = session.logits();
    const int top1 = top[0].at("id");
    const float want_top1 = top[0].at("logit");
    float prompt_worst = 0.0f;
    for (const json& t : top) {
      const int id = t.at("id");
      const float want = t.at("logit").get<float>() - want_top1;
      const float got = logits[id] - logits[top1];
      prompt_worst = std::max(prompt_worst, std::fabs(got - want));
      EXPECT_NEAR(got, want, kLogitTol) << GetParam() << " prompt '" << c.at("name").get<std::string>()
                                        << "': logit of token " << id << " minus that of token " << top1;
    }
    std::cout << "[ logits   ] " << GetParam() << " '" << c.at("name").get<std::string>()
              << "': top-1 logit ours " << logits[top1] << ", llama.cpp " << want_top1
              << "; worst error of the top-10 relative to top-1 " << prompt_worst << "\n";
    worst = std::max(worst, prompt_worst);
  }
  std::cout << "[ logits   ] " << GetParam() << ": worst " << worst << "\n";
}

// With nothing evicted (prompt + generation < sinks + size), the cascade cache must hold exactly
// what the full cache holds, so the logits agree closely and the greedy choice is the same.
// Teacher-forced on the fixture's continuation, so both runs see the same tokens.
TEST_P(ModelGolden, CascadeWithoutEvictionMatchesFullCache) {
  CacheConfig cascade;
  cascade.policy = "cascade";
  cascade.sinks = 64;
  cascade.size = 2048;
  constexpr float kLogitTol = 1e-3f;
  Session full(*model_, options(full_cache()));
  Session casc(*model_, options(cascade));
  const int vocab = full.vocab_size();
  for (const json& c : ref_->at("greedy")) {
    const std::string name = c.at("name");
    const auto prompt = ids_of(c.at("prompt_ids"));
    const auto cont = ids_of(c.at("continuation"));
    ASSERT_LE(prompt.size() + cont.size(), size_t{64 + 2048}) << name;
    full.reset();
    casc.reset();
    full.feed(prompt);
    casc.feed(prompt);
    float worst = 0.0f;
    for (size_t step = 0; step < cont.size(); ++step) {
      const Top2 a = top2(full.logits(), vocab);
      const Top2 b = top2(casc.logits(), vocab);
      for (int i = 0; i < vocab; ++i) worst = std::max(worst, std::fabs(full.logits()[i] - casc.logits()[i]));
      ASSERT_TRUE(a.id == b.id || a.gap < 2 * kLogitTol)
          << GetParam() << " prompt '" << name << "' step " << step << ": full chose " << a.id << " (gap "
          << a.gap << "), cascade chose " << b.id << " (gap " << b.gap << ")";
      ASSERT_LT(worst, kLogitTol) << GetParam() << " prompt '" << name << "' step " << step
                                  << ": cascade logits differ from the full cache's";
      if (step + 1 < cont.size()) {
        full.feed(std::span<const int32_t>(&cont[step], 1));
        casc.feed(std::span<const int32_t>(&cont[step], 1));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ModelGolden, ::testing::Values("smollm2", "gemma3"),
                         [](const auto& info) { return info.param; });

// Perplexity of the fixture's 2,048 tokens in one stream, fed in chunks of `stride`.
class ModelPerplexity : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(ModelPerplexity, MatchesLlamaCpp) {
  const auto& [name, stride] = GetParam();
  const std::string path = source_path(kModelFiles.at(name));
  if (!fs::exists(path)) GTEST_SKIP() << path << " missing (scripts/fetch-model.sh)";
  const json& ppl = fixture(name).at("perplexity");
  const auto tokens = ids_of(ppl.at("tokens"));
  const auto ref_nll = ppl.at("nll").get<std::vector<double>>();
  ASSERT_EQ(ref_nll.size() + 1, tokens.size());

  Session session(*model(name), options(full_cache(), stride));
  const int vocab = session.vocab_size();
  std::vector<double> nll(tokens.size() - 1, std::nan(""));
  session.feed_scored(tokens, [&](int64_t i, const float* logits) {
    if (i + 1 >= static_cast<int64_t>(tokens.size())) return;
    const float mx = *std::max_element(logits, logits + vocab);
    double sum = 0.0;
    for (int v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(logits[v] - mx));
    nll[i] = mx + std::log(sum) - logits[tokens[i + 1]];
  });

  double total = 0.0, worst = 0.0;
  int64_t worst_at = -1, first_bad = -1;
  for (size_t i = 0; i < nll.size(); ++i) {
    ASSERT_FALSE(std::isnan(nll[i])) << "feed_scored gave no logits for token " << i;
    total += nll[i];
    const double d = std::fabs(nll[i] - ref_nll[i]);
    if (d > worst) {
      worst = d;
      worst_at = static_cast<int64_t>(i);
    }
    if (first_bad < 0 && d > 0.5) first_bad = static_cast<int64_t>(i);
  }
  const double ours = std::exp(total / static_cast<double>(nll.size()));
  const double want = ppl.at("ppl");
  const std::string detail = fmt::format(
      "{} stride {}: ppl {:.4f}, llama.cpp {:.4f} ({:+.2f}%); worst per-token NLL error {:.3f} predicting "
      "token {}; first error > 0.5 predicting token {}",
      name, stride, ours, want, 100.0 * (ours / want - 1.0), worst, worst_at + 1,
      first_bad < 0 ? std::string("(none)") : std::to_string(first_bad + 1));
  std::cout << "[ ppl      ] " << detail << "\n";
  EXPECT_NEAR(ours / want, 1.0, kPplRelTol) << detail;
}

INSTANTIATE_TEST_SUITE_P(Models, ModelPerplexity,
                         ::testing::Combine(::testing::Values("smollm2", "gemma3"), ::testing::Values(2048, 512)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_stride" + std::to_string(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace kvc
