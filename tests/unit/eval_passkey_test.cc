#include <cmath>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "eval/passkey.h"
#include "eval/passkey_stats.h"

namespace kvc {
namespace {

TEST(PasskeyScore, CountsDigitsPositionByPosition) {
  EXPECT_DOUBLE_EQ(passkey_score(" 12345.", "12345"), 1.0);
  EXPECT_DOUBLE_EQ(passkey_score("12945", "12345"), 0.8);
  EXPECT_DOUBLE_EQ(passkey_score(" 54321", "12345"), 0.2);  // only the middle 3 matches
  EXPECT_DOUBLE_EQ(passkey_score(" 123", "12345"), 0.6);    // missing digits count as wrong
  EXPECT_DOUBLE_EQ(passkey_score(" the grass", "12345"), 0.0);
  EXPECT_DOUBLE_EQ(passkey_score("", "12345"), 0.0);
  // Only the first five digits are read, wherever they are.
  EXPECT_DOUBLE_EQ(passkey_score(" 1 2 3 4 5 6", "12345"), 1.0);
  EXPECT_DOUBLE_EQ(passkey_score(" 012345", "12345"), 0.0);
}

TEST(PasskeyDraw, KeysHaveFiveDigitsAndDepthsStayInTheirBin) {
  std::set<std::string> keys;
  for (int bin = 0; bin < 5; ++bin) {
    for (int i = 0; i < 50; ++i) {
      const PasskeyDraw d = draw_passkey(7, 4096, bin, 5, i);
      ASSERT_EQ(d.key.size(), 5u);
      EXPECT_NE(d.key[0], '0');
      EXPECT_GE(d.depth, bin * 0.2);
      EXPECT_LT(d.depth, (bin + 1) * 0.2);
      keys.insert(d.key);
    }
  }
  EXPECT_GT(keys.size(), 240u);  // 250 draws from 90000 keys: nearly all distinct
}

TEST(PasskeyDraw, DependsOnlyOnSeedLengthBinAndIndex) {
  const PasskeyDraw a = draw_passkey(1, 2048, 3, 5, 2);
  const PasskeyDraw b = draw_passkey(1, 2048, 3, 5, 2);
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.depth, b.depth);
  EXPECT_NE(draw_passkey(2, 2048, 3, 5, 2).key, a.key);
  EXPECT_NE(draw_passkey(1, 4096, 3, 5, 2).key, a.key);
  EXPECT_NE(draw_passkey(1, 2048, 3, 5, 3).key, a.key);
}

TEST(PasskeyResult, AccuracyAveragesPerLengthAndBin) {
  PasskeyResult r;
  const auto sample = [](int64_t length, int bin, double score) {
    PasskeySample s;
    s.length = length, s.bin = bin, s.key = "11111", s.score = score;
    return s;
  };
  r.samples.push_back(sample(2048, 0, 1.0));
  r.samples.push_back(sample(2048, 0, 0.4));
  r.samples.push_back(sample(2048, 1, 0.0));
  r.samples.push_back(sample(4096, 0, 0.2));
  EXPECT_DOUBLE_EQ(r.accuracy(2048, 0), 0.7);
  EXPECT_DOUBLE_EQ(r.accuracy(2048, 1), 0.0);
  EXPECT_TRUE(std::isnan(r.accuracy(2048, 2)));
  EXPECT_NEAR(r.accuracy(2048), 1.4 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(r.accuracy(4096), 0.2);
}

TEST(PasskeyExact, WholeKeyOrFirstWord) {
  EXPECT_TRUE(passkey_exact(" 12345.", "12345"));
  EXPECT_TRUE(passkey_exact("$: 1 2 3 4 5", "12345"));
  EXPECT_FALSE(passkey_exact(" 1234", "12345"));
  EXPECT_FALSE(passkey_exact(" 12346", "12345"));
  EXPECT_FALSE(passkey_exact(" 012345", "12345"));
  EXPECT_TRUE(passkey_exact(" Tulips, I think.", "tulips"));
  EXPECT_FALSE(passkey_exact(" the tulips", "tulips"));  // the first word is the answer
  EXPECT_FALSE(passkey_exact("", "tulips"));
}

TEST(PasskeyStats, WilsonIntervalMatchesTheFormula) {
  const Interval none = wilson_interval(0, 10);
  EXPECT_DOUBLE_EQ(none.lo, 0.0);
  EXPECT_NEAR(none.hi, 0.2775, 1e-4);
  const Interval half = wilson_interval(5, 10);
  EXPECT_NEAR(half.lo, 0.2366, 1e-4);
  EXPECT_NEAR(half.hi, 0.7634, 1e-4);
  const Interval all = wilson_interval(100, 100);
  EXPECT_NEAR(all.lo, 0.9630, 1e-4);
  EXPECT_DOUBLE_EQ(all.hi, 1.0);
  EXPECT_DOUBLE_EQ(wilson_interval(0, 0).hi, 1.0);
}

TEST(PasskeyStats, McNemarIsTheExactBinomialTest) {
  EXPECT_DOUBLE_EQ(mcnemar_p(0, 0), 1.0);
  EXPECT_DOUBLE_EQ(mcnemar_p(3, 3), 1.0);
  EXPECT_NEAR(mcnemar_p(0, 6), 2.0 / 64, 1e-12);
  EXPECT_NEAR(mcnemar_p(9, 1), 2.0 * 11 / 1024, 1e-12);
  EXPECT_DOUBLE_EQ(mcnemar_p(1, 9), mcnemar_p(9, 1));
  EXPECT_LT(mcnemar_p(40, 10), 1e-4);
}

TEST(PasskeyStats, BootstrapCoversTheMean) {
  const Interval flat = bootstrap_mean({0.4, 0.4, 0.4});
  EXPECT_DOUBLE_EQ(flat.lo, 0.4);
  EXPECT_DOUBLE_EQ(flat.hi, 0.4);
  std::vector<double> half(100, 0.0);
  for (size_t i = 0; i < 50; ++i) half[i] = 1.0;
  const Interval ci = bootstrap_mean(half);
  EXPECT_LT(ci.lo, 0.5);
  EXPECT_GT(ci.hi, 0.5);
  EXPECT_NEAR(ci.hi - ci.lo, 2 * 1.96 * 0.05, 0.04);  // the normal approximation's width
}

TEST(PasskeyStats, SummarySplitsFailuresThreeWays) {
  const auto sample = [](bool exact, int digits, double intact) {
    PasskeySample s;
    s.length = 1024, s.key = "12345", s.exact = exact, s.digits = digits, s.key_intact = intact;
    s.score = exact ? 1.0 : 0.0;
    return s;
  };
  // Read right; retained but misread; forgotten and guessed in form; forgotten, no digits.
  const std::vector<PasskeySample> samples = {sample(true, 5, 1.0), sample(false, 5, 1.0),
                                              sample(false, 5, 0.5), sample(false, 0, 0.0)};
  const PasskeySummary s = summarize(samples, 1024);
  EXPECT_EQ(s.n, 4);
  EXPECT_DOUBLE_EQ(s.exact, 0.25);
  EXPECT_EQ(s.retained, 2);
  EXPECT_EQ(s.formed, 3);
  EXPECT_EQ(s.read, 1);
  EXPECT_DOUBLE_EQ(s.intact, 2.5 / 4);
  EXPECT_EQ(summarize(samples, 2048).n, 0);
}

}  // namespace
}  // namespace kvc
