#include <cmath>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "eval/passkey.h"

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
  r.samples.push_back({2048, 0, 0.1, "11111", "", 1.0, 0.0});
  r.samples.push_back({2048, 0, 0.1, "11111", "", 0.4, 0.0});
  r.samples.push_back({2048, 1, 0.3, "11111", "", 0.0, 0.0});
  r.samples.push_back({4096, 0, 0.1, "11111", "", 0.2, 0.0});
  EXPECT_DOUBLE_EQ(r.accuracy(2048, 0), 0.7);
  EXPECT_DOUBLE_EQ(r.accuracy(2048, 1), 0.0);
  EXPECT_TRUE(std::isnan(r.accuracy(2048, 2)));
  EXPECT_NEAR(r.accuracy(2048), 1.4 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(r.accuracy(4096), 0.2);
}

}  // namespace
}  // namespace kvc
