// The SIMD gated activations against their scalar definitions, on every SIMD target.
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "ops/elementwise.h"

namespace kvc {
namespace {

class ElementwiseSimd : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { hwy::SetSupportedTargetsForTest(GetParam()); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

// Values over the range activations take, tails included; n not a multiple of any vector width.
std::vector<float> values(int n, uint32_t seed, float spread) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, spread);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

template <typename Fast, typename Ref>
void expect_close(Fast fast, Ref ref) {
  for (float spread : {0.1f, 1.0f, 4.0f, 30.0f}) {
    const int n = 1003;
    std::vector<float> g = values(n, 1, spread), up = values(n, 2, 1.0f);
    std::vector<float> want = g, got = g;
    ref(want.data(), up.data(), n);
    fast(got.data(), up.data(), n);
    for (int i = 0; i < n; ++i)
      ASSERT_NEAR(got[i], want[i], 2e-6f * (1.0f + std::fabs(want[i])))
          << "spread " << spread << " i " << i << " g " << g[i];
  }
}

TEST_P(ElementwiseSimd, SwiGluMatchesReference) { expect_close(swiglu, swiglu_reference); }
TEST_P(ElementwiseSimd, GeGluMatchesReference) { expect_close(geglu, geglu_reference); }

TEST(Elementwise, ReferenceValues) {
  // gelu_tanh(1) = 0.841192, silu(1) = 0.731059 (times up = 2).
  float g = 1.0f;
  const float up = 2.0f;
  geglu_reference(&g, &up, 1);
  EXPECT_NEAR(g, 2 * 0.841192f, 1e-5f);
  g = 1.0f;
  swiglu_reference(&g, &up, 1);
  EXPECT_NEAR(g, 2 * 0.731059f, 1e-5f);
}

INSTANTIATE_TEST_SUITE_P(AllTargets, ElementwiseSimd,
                         ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         [](const ::testing::TestParamInfo<int64_t>& p) {
                           return std::string(hwy::TargetName(p.param));
                         });

}  // namespace
}  // namespace kvc
