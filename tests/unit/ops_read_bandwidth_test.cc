// The roofline's streaming read: the SIMD sum on every target against a plain loop, and a
// measurement that checks its own sum.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <vector>

#include "ops/read_bandwidth.h"
#include "ops/thread_pool.h"

namespace kvc {
namespace {

class ReadBandwidthSimd : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { hwy::SetSupportedTargetsForTest(GetParam()); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

TEST_P(ReadBandwidthSimd, SumMatchesPlainLoop) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{64}, size_t{1001}}) {
    std::vector<uint64_t> w(n);
    uint64_t want = 0;
    for (size_t i = 0; i < n; ++i) want += w[i] = i * 0x9E3779B97F4A7C15ull;
    EXPECT_EQ(sum_words(w.data(), n), want) << n;
  }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, ReadBandwidthSimd,
                         ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         [](const ::testing::TestParamInfo<int64_t>& p) {
                           return std::string(hwy::TargetName(p.param));
                         });

TEST(ReadBandwidth, MeasuresAPositiveRateOnAnyThreadCount) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    // 1 MiB plus a ragged page count: measure_read_bandwidth throws if any word went unread.
    EXPECT_GT(measure_read_bandwidth(pool, (size_t{1} << 20) + 3 * 4096 + 100, 2), 0.0);
  }
  ThreadPool one(1);
  EXPECT_EQ(measure_read_bandwidth(one, 100, 2), 0.0);  // under one page: nothing to read
}

TEST(ReadBandwidth, BufferIsLargeAndBounded) {
  EXPECT_GE(bandwidth_buffer_bytes(), size_t{512} << 20);
  EXPECT_LE(bandwidth_buffer_bytes(), size_t{2} << 30);
}

}  // namespace
}  // namespace kvc
