#include "sampling/sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "base/error.h"

namespace kvc {
namespace {

// A small hand-made distribution: token i has probability kProbs[i] at temperature 1.
const std::vector<double> kProbs = {0.40, 0.25, 0.15, 0.10, 0.06, 0.04};

std::vector<float> log_probs(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

// Only the filter under test is on; temperature 1, fixed seed.
SamplingParams plain(uint64_t seed = 1234) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.seed = seed;
  return p;
}

std::map<int32_t, int> histogram(Sampler& sampler, const std::vector<float>& logits, int draws,
                                 std::span<const int32_t> history = {}) {
  std::map<int32_t, int> counts;
  for (int i = 0; i < draws; ++i) ++counts[sampler.sample(logits.data(), history)];
  return counts;
}

std::set<int32_t> drawn(const std::map<int32_t, int>& counts) {
  std::set<int32_t> ids;
  for (const auto& [id, n] : counts) ids.insert(id);
  return ids;
}

// Pearson's chi-square of observed counts against expected probabilities (summing to 1).
double chi_square(const std::map<int32_t, int>& counts, const std::vector<double>& expected,
                  int draws) {
  double chi = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto it = counts.find(static_cast<int32_t>(i));
    const double observed = it == counts.end() ? 0.0 : it->second;
    const double e = expected[i] * draws;
    chi += (observed - e) * (observed - e) / e;
  }
  return chi;
}

std::vector<double> normalized(std::vector<double> v) {
  const double total = std::accumulate(v.begin(), v.end(), 0.0);
  for (double& x : v) x /= total;
  return v;
}

TEST(Sampler, GreedyPicksTheArgmax) {
  SamplingParams p = plain();
  p.temperature = 0.0f;
  Sampler sampler(p, 6);
  const std::vector<float> logits = {0.1f, 2.0f, -3.0f, 1.9f, 0.0f, 1.0f};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(sampler.sample(logits.data(), {}), 1);
}

TEST(Sampler, GreedyTieGoesToTheLowestId) {
  SamplingParams p = plain();
  p.temperature = -1.0f;  // any temperature <= 0 is greedy
  Sampler sampler(p, 5);
  const std::vector<float> logits = {0.0f, 5.0f, 1.0f, 5.0f, 5.0f};
  EXPECT_EQ(sampler.sample(logits.data(), {}), 1);
}

TEST(Sampler, NoFilterDrawsFollowTheSoftmax) {
  Sampler sampler(plain(), 6);
  const int draws = 20000;
  const auto counts = histogram(sampler, log_probs(kProbs), draws);
  // 5 degrees of freedom: P(chi2 > 20.5) = 0.001. The seed is fixed, so this is deterministic.
  EXPECT_LT(chi_square(counts, kProbs, draws), 20.5);
  EXPECT_EQ(drawn(counts).size(), kProbs.size());
}

TEST(Sampler, ChiSquareBoundRejectsAWrongDistribution) {
  // Guards the guard: the same bound must reject draws from a different distribution.
  Sampler sampler(plain(), 6);
  const int draws = 20000;
  const auto counts = histogram(sampler, log_probs(kProbs), draws);
  EXPECT_GT(chi_square(counts, normalized({0.35, 0.25, 0.15, 0.12, 0.08, 0.05}), draws), 20.5);
}

TEST(Sampler, TemperatureSharpensTheDistribution) {
  SamplingParams p = plain();
  p.temperature = 0.5f;  // p_i^(1/T) = p_i^2, renormalized
  Sampler sampler(p, 6);
  const int draws = 20000;
  const auto counts = histogram(sampler, log_probs(kProbs), draws);
  std::vector<double> squared;
  for (double x : kProbs) squared.push_back(x * x);
  EXPECT_LT(chi_square(counts, normalized(squared), draws), 20.5);
}

TEST(Sampler, TopKKeepsTheKBestAndRenormalizes) {
  SamplingParams p = plain();
  p.top_k = 2;
  Sampler sampler(p, 6);
  const int draws = 10000;
  const auto counts = histogram(sampler, log_probs(kProbs), draws);
  EXPECT_EQ(drawn(counts), (std::set<int32_t>{0, 1}));
  // 1 degree of freedom: P(chi2 > 10.8) = 0.001.
  EXPECT_LT(chi_square(counts, normalized({0.40, 0.25}), draws), 10.8);
}

TEST(Sampler, TopKTiesGoToTheLowestIds) {
  // Both selection paths (the heap for small k, nth_element for large k) break ties by id.
  SamplingParams p = plain();
  p.top_k = 2;
  Sampler small(p, 5);
  const std::vector<float> flat5(5, 1.0f);
  EXPECT_EQ(drawn(histogram(small, flat5, 2000)), (std::set<int32_t>{0, 1}));

  p.top_k = 2000;
  Sampler large(p, 5000);
  const std::vector<float> flat(5000, 1.0f);
  const auto counts = histogram(large, flat, 5000);
  EXPECT_LT(counts.rbegin()->first, 2000);
  EXPECT_GT(counts.size(), 1700u);  // ~1836 distinct expected
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  SamplingParams p = plain();
  p.top_p = 0.5f;  // 0.40 < 0.5 <= 0.65: tokens 0 and 1
  Sampler a(p, 6);
  EXPECT_EQ(drawn(histogram(a, log_probs(kProbs), 4000)), (std::set<int32_t>{0, 1}));
  p.top_p = 0.7f;  // 0.65 < 0.7 <= 0.80: tokens 0, 1, 2
  Sampler b(p, 6);
  EXPECT_EQ(drawn(histogram(b, log_probs(kProbs), 4000)), (std::set<int32_t>{0, 1, 2}));
}

TEST(Sampler, TopPNormalizesOverWhatTopKLeft) {
  // Over the full distribution, p = 0.85 needs 4 tokens (0.80 < 0.85 <= 0.90). After top-k = 4
  // the four renormalize to 0.444, 0.722, 0.889, 1: three suffice. llama.cpp's order: k then p.
  SamplingParams p = plain();
  p.top_p = 0.85f;
  Sampler full(p, 6);
  EXPECT_EQ(drawn(histogram(full, log_probs(kProbs), 4000)), (std::set<int32_t>{0, 1, 2, 3}));
  p.top_k = 4;
  Sampler after_k(p, 6);
  EXPECT_EQ(drawn(histogram(after_k, log_probs(kProbs), 4000)), (std::set<int32_t>{0, 1, 2}));
}

TEST(Sampler, MinPIsRelativeToTheBestToken) {
  SamplingParams p = plain();
  p.min_p = 0.3f;  // keeps p >= 0.12
  Sampler a(p, 6);
  EXPECT_EQ(drawn(histogram(a, log_probs(kProbs), 4000)), (std::set<int32_t>{0, 1, 2}));
  p.min_p = 0.2f;  // keeps p >= 0.08
  Sampler b(p, 6);
  const int draws = 10000;
  const auto counts = histogram(b, log_probs(kProbs), draws);
  EXPECT_EQ(drawn(counts), (std::set<int32_t>{0, 1, 2, 3}));
  // 3 degrees of freedom: P(chi2 > 16.3) = 0.001.
  EXPECT_LT(chi_square(counts, normalized({0.40, 0.25, 0.15, 0.10}), draws), 16.3);
}

TEST(Sampler, MinPAndTopPTogetherKeepTheShorterPrefix) {
  SamplingParams p = plain();
  p.top_p = 0.7f;   // alone: {0, 1, 2}
  p.min_p = 0.5f;   // alone: p >= 0.2 -> {0, 1}
  Sampler a(p, 6);
  EXPECT_EQ(drawn(histogram(a, log_probs(kProbs), 4000)), (std::set<int32_t>{0, 1}));
  p.top_p = 0.5f;   // alone: {0, 1}
  p.min_p = 0.2f;   // alone: {0, 1, 2, 3}
  Sampler b(p, 6);
  EXPECT_EQ(drawn(histogram(b, log_probs(kProbs), 4000)), (std::set<int32_t>{0, 1}));
}

TEST(Sampler, SameSeedSameDraws) {
  const auto logits = log_probs(kProbs);
  Sampler a(plain(42), 6);
  Sampler b(plain(42), 6);
  Sampler c(plain(43), 6);
  std::vector<int32_t> xa, xb, xc;
  for (int i = 0; i < 200; ++i) {
    xa.push_back(a.sample(logits.data(), {}));
    xb.push_back(b.sample(logits.data(), {}));
    xc.push_back(c.sample(logits.data(), {}));
  }
  EXPECT_EQ(xa, xb);
  EXPECT_NE(xa, xc);
  // reseed restarts the stream.
  a.reseed(42);
  std::vector<int32_t> again;
  for (int i = 0; i < 200; ++i) again.push_back(a.sample(logits.data(), {}));
  EXPECT_EQ(again, xb);
}

TEST(Sampler, RandomSeedIsResolvedAndReported) {
  Sampler a(plain(SamplingParams::kRandomSeed), 6);
  Sampler b(plain(SamplingParams::kRandomSeed), 6);
  EXPECT_NE(a.seed(), SamplingParams::kRandomSeed);
  EXPECT_NE(a.seed(), b.seed());  // 2^-64 chance of a false failure
  // Replaying the reported seed reproduces the stream.
  const auto logits = log_probs(kProbs);
  Sampler replay(plain(a.seed()), 6);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(a.sample(logits.data(), {}), replay.sample(logits.data(), {}));
}

TEST(Sampler, PenaltyDividesPositiveLogits) {
  SamplingParams p = plain();
  p.temperature = 0.0f;
  p.repeat_penalty = 1.5f;
  Sampler sampler(p, 4);
  const std::vector<float> logits = {2.0f, 1.9f, -1.0f, -1.2f};
  const std::vector<int32_t> none = {3};
  const std::vector<int32_t> seen = {0};
  EXPECT_EQ(sampler.sample(logits.data(), none), 0);
  EXPECT_EQ(sampler.sample(logits.data(), seen), 1);  // 2.0 / 1.5 = 1.33 < 1.9
}

TEST(Sampler, PenaltyMultipliesNegativeLogits) {
  SamplingParams p = plain();
  p.temperature = 0.0f;
  p.repeat_penalty = 1.5f;
  Sampler sampler(p, 3);
  const std::vector<float> logits = {-1.0f, -1.2f, -5.0f};
  const std::vector<int32_t> seen = {0};
  // Dividing would have made -1.0 into -0.67 and kept token 0; multiplying gives -1.5.
  EXPECT_EQ(sampler.sample(logits.data(), seen), 1);
}

TEST(Sampler, PenaltyAppliesOncePerDistinctToken) {
  SamplingParams p = plain();
  p.temperature = 0.0f;
  p.repeat_penalty = 1.1f;
  Sampler sampler(p, 2);
  const std::vector<float> logits = {3.0f, 2.5f};
  // Once: 3 / 1.1 = 2.73 > 2.5. Three times would be 3 / 1.331 = 2.25 < 2.5.
  const std::vector<int32_t> history = {0, 0, 0};
  EXPECT_EQ(sampler.sample(logits.data(), history), 0);
}

TEST(Sampler, PenaltyLooksOnlyAtTheLastN) {
  SamplingParams p = plain();
  p.temperature = 0.0f;
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  const std::vector<float> logits = {2.0f, 1.5f, 0.0f};
  const std::vector<int32_t> history = {0, 2, 2};
  Sampler windowed(p, 3);
  EXPECT_EQ(windowed.sample(logits.data(), history), 0);  // token 0 is 3 back: not penalized
  p.repeat_last_n = -1;  // whole history
  Sampler whole(p, 3);
  EXPECT_EQ(whole.sample(logits.data(), history), 1);
  p.repeat_last_n = 0;  // off
  Sampler off(p, 3);
  EXPECT_EQ(off.sample(logits.data(), history), 0);
}

TEST(Sampler, FrequencyPenaltyCountsRepeats) {
  SamplingParams p = plain();
  p.temperature = 0.0f;
  p.frequency_penalty = 0.2f;
  Sampler sampler(p, 2);
  const std::vector<float> logits = {3.0f, 2.5f};
  // Twice: 3 - 2 * 0.2 = 2.6 > 2.5; three times: 3 - 0.6 = 2.4 < 2.5.
  EXPECT_EQ(sampler.sample(logits.data(), std::vector<int32_t>{0, 0}), 0);
  EXPECT_EQ(sampler.sample(logits.data(), std::vector<int32_t>{0, 0, 0}), 1);
}

TEST(Sampler, PresencePenaltyCountsOnce) {
  SamplingParams p = plain();
  p.temperature = 0.0f;
  p.presence_penalty = 0.4f;
  Sampler sampler(p, 2);
  const std::vector<float> logits = {3.0f, 2.5f};
  // 3 - 0.4 = 2.6 > 2.5 however often token 0 was seen; 3 - 0.6 = 2.4 falls behind.
  EXPECT_EQ(sampler.sample(logits.data(), std::vector<int32_t>{0, 0, 0, 0}), 0);
  p.presence_penalty = 0.6f;
  Sampler harder(p, 2);
  EXPECT_EQ(harder.sample(logits.data(), std::vector<int32_t>{0}), 1);
}

TEST(Sampler, NaNLogitIsNeverPicked) {
  SamplingParams p = plain();
  p.temperature = 0.0f;
  Sampler greedy(p, 3);
  const std::vector<float> logits = {NAN, 1.0f, 0.5f};
  EXPECT_EQ(greedy.sample(logits.data(), {}), 1);
  Sampler sampler(plain(), 3);
  const auto counts = histogram(sampler, logits, 2000);
  EXPECT_EQ(counts.count(0), 0u);
}

// --ignore-eos: a banned id is never drawn, even as the best logit; the others keep their odds.
TEST(Sampler, BannedIdIsNeverPicked) {
  SamplingParams p = plain();
  p.banned = {2};
  p.temperature = 0.0f;
  const std::vector<float> logits = {1.0f, 0.5f, 5.0f};
  Sampler greedy(p, 3);
  EXPECT_EQ(greedy.sample(logits.data(), {}), 0);
  p.temperature = plain().temperature;
  Sampler sampler(p, 3);
  const auto counts = histogram(sampler, logits, 4000);
  EXPECT_EQ(counts.count(2), 0u);
  EXPECT_LT(chi_square(counts, normalized({std::exp(1.0), std::exp(0.5)}), 4000), 10.83);
}

TEST(Sampler, RejectsBadParameters) {
  SamplingParams p = plain();
  p.top_p = 0.0f;
  EXPECT_THROW(Sampler(p, 4), Error);
  p = plain();
  p.min_p = 1.5f;
  EXPECT_THROW(Sampler(p, 4), Error);
  p = plain();
  p.repeat_penalty = 0.0f;
  EXPECT_THROW(Sampler(p, 4), Error);
  EXPECT_THROW(Sampler(plain(), 0), Error);
  p = plain();
  p.banned = {4};
  EXPECT_THROW(Sampler(p, 4), Error);
}

// A Gemma-sized vocabulary: the draws must stay inside the top-p set a full sort computes,
// whatever the partial sorting does.
TEST(Sampler, LargeVocabularyTopPMatchesAFullSort) {
  const int vocab = 262144;
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(vocab);
  for (float& l : logits) l = normal(gen);

  // The reference: sort everything, take the smallest prefix with mass >= 0.5.
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  const double max_logit = logits[order[0]];
  double total = 0.0;
  for (float l : logits) total += std::exp(double(l) - max_logit);
  std::set<int32_t> allowed;
  double cum = 0.0;
  for (int32_t id : order) {
    allowed.insert(id);
    cum += std::exp(double(logits[id]) - max_logit);
    if (cum >= 0.5 * total) break;
  }
  ASSERT_GT(allowed.size(), 64u);  // the cut must lie past the first partial-sort chunk

  SamplingParams p = plain();
  p.top_p = 0.5f;
  Sampler sampler(p, vocab);
  std::set<int32_t> seen;
  const auto start = std::chrono::steady_clock::now();
  const int draws = 200;
  for (int i = 0; i < draws; ++i) {
    const int32_t id = sampler.sample(logits.data(), {});
    ASSERT_TRUE(allowed.count(id)) << "token " << id << " lies outside the top-p set";
    seen.insert(id);
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("top_p_only_ms_per_sample", std::to_string(ms / draws));
  EXPECT_GT(seen.size(), 10u);  // it really samples
}

TEST(Sampler, LargeVocabularyDefaultChain) {
  const int vocab = 262144;
  std::mt19937 gen(9);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(vocab);
  for (float& l : logits) l = normal(gen);
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 40, order.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  const std::set<int32_t> top40(order.begin(), order.begin() + 40);

  SamplingParams p;  // llama.cpp's defaults: top-k 40, top-p 0.95, min-p 0.05, T 0.8
  p.seed = 5;
  Sampler sampler(p, vocab);
  std::vector<int32_t> history(64);
  std::iota(history.begin(), history.end(), 0);
  const auto start = std::chrono::steady_clock::now();
  const int draws = 200;
  for (int i = 0; i < draws; ++i) {
    const int32_t id = sampler.sample(logits.data(), history);
    ASSERT_TRUE(top40.count(id)) << "token " << id << " is outside the top 40";
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("default_chain_ms_per_sample", std::to_string(ms / draws));
  std::printf("default chain on 262144 logits: %.3f ms per sample\n", ms / draws);
}

}  // namespace
}  // namespace kvc
