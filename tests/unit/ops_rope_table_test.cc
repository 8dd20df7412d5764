// Rope's position table (what H2O re-rotates from) gives exactly the floats of apply().
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "ops/rope.h"

namespace kvc {
namespace {

void expect_table_matches_apply(RopeStyle style, int head_dim, int n_dims, double base) {
  const Rope rope(style, head_dim, n_dims, base);
  const int64_t n = 300;
  const std::vector<float> table = rope.position_table(n);
  ASSERT_EQ(table.size(), static_cast<size_t>(n) * n_dims);
  std::mt19937 rng(7);
  std::normal_distribution<float> dist;
  for (int64_t pos : {int64_t{0}, int64_t{1}, int64_t{17}, int64_t{255}, n - 1}) {
    std::vector<float> key(head_dim);
    for (float& x : key) x = dist(rng);
    std::vector<float> want = key, got = key;
    rope.apply(want.data(), pos);
    rope.rotate_to(got.data(), pos, table);
    for (int x = 0; x < head_dim; ++x) ASSERT_EQ(got[x], want[x]) << "pos " << pos << " x " << x;
  }
}

TEST(RopeTable, NormStyleMatchesApply) { expect_table_matches_apply(RopeStyle::Norm, 64, 64, 1e5); }
TEST(RopeTable, NeoxStyleMatchesApply) { expect_table_matches_apply(RopeStyle::Neox, 256, 256, 1e6); }
TEST(RopeTable, PartialRotationLeavesTheRestAlone) {
  expect_table_matches_apply(RopeStyle::Neox, 64, 32, 1e4);
}

}  // namespace
}  // namespace kvc
