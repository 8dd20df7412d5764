#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "base/error.h"
#include "eval/perplexity.h"

namespace kvc {
namespace {

TEST(TokenNll, MatchesHandComputedSoftmax) {
  // softmax of [0, ln 2, ln 5] is [1/8, 2/8, 5/8].
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(5.0f)};
  EXPECT_NEAR(token_nll(logits, 0), std::log(8.0), 1e-6);
  EXPECT_NEAR(token_nll(logits, 1), std::log(4.0), 1e-6);
  EXPECT_NEAR(token_nll(logits, 2), -std::log(5.0 / 8.0), 1e-6);
}

TEST(TokenNll, StableForHugeAndTinyLogits) {
  // A naive exp() overflows at 1000 and underflows at -1000; the shift by the max does neither.
  const std::vector<float> high = {1000.0f, 1000.0f + std::log(3.0f)};
  EXPECT_NEAR(token_nll(high, 0), std::log(4.0), 1e-4);
  EXPECT_NEAR(token_nll(high, 1), std::log(4.0 / 3.0), 1e-4);
  const std::vector<float> low = {-1000.0f, -1000.0f, -1000.0f, -1000.0f};
  EXPECT_NEAR(token_nll(low, 3), std::log(4.0), 1e-9);
  // A token the model rules out costs a large but finite amount.
  const std::vector<float> sure = {0.0f, -200.0f};
  EXPECT_NEAR(token_nll(sure, 1), 200.0, 1e-3);
  EXPECT_TRUE(std::isfinite(token_nll(sure, 1)));
}

TEST(TokenNll, RejectsTargetOutsideVocabulary) {
  const std::vector<float> logits = {0.0f, 0.0f};
  EXPECT_THROW(token_nll(logits, 2), Error);
  EXPECT_THROW(token_nll(logits, -1), Error);
}

TEST(NllSum, UniformModelHasPerplexityOfVocabulary) {
  const std::vector<float> flat(50, 0.25f);
  NllSum s;
  for (int t = 0; t < 7; ++t) s.add(token_nll(flat, t));
  EXPECT_EQ(s.count, 7);
  EXPECT_NEAR(s.ppl(), 50.0, 1e-9);
  EXPECT_TRUE(std::isnan(NllSum{}.ppl()));
}

TEST(BucketedNll, SplitsByPredictedPosition) {
  BucketedNll acc(2);
  // Positions 1..5 (position 0 is never scored): buckets [0,2) [2,4) [4,6).
  const double nll[] = {1.0, 2.0, 3.0, 4.0, 5.0};
  for (int p = 1; p <= 5; ++p) acc.add(p, nll[p - 1]);
  ASSERT_EQ(acc.buckets().size(), 3u);
  EXPECT_EQ(acc.buckets()[0].begin, 0);
  EXPECT_EQ(acc.buckets()[0].end, 2);
  EXPECT_EQ(acc.buckets()[0].sum.count, 1);
  EXPECT_DOUBLE_EQ(acc.buckets()[0].sum.mean(), 1.0);
  EXPECT_EQ(acc.buckets()[1].sum.count, 2);
  EXPECT_DOUBLE_EQ(acc.buckets()[1].sum.mean(), 2.5);
  EXPECT_EQ(acc.buckets()[2].begin, 4);
  EXPECT_DOUBLE_EQ(acc.buckets()[2].sum.mean(), 4.5);
  EXPECT_EQ(acc.total().count, 5);
  EXPECT_NEAR(acc.total().ppl(), std::exp(3.0), 1e-9);
}

TEST(BucketedNll, RejectsEmptyBucket) { EXPECT_THROW(BucketedNll(0), Error); }

}  // namespace
}  // namespace kvc
