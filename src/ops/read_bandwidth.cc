// A streaming read as fast as this CPU can issue loads: Highway SIMD with four independent
// accumulators, so neither the add chain nor the instruction width is what is measured.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/read_bandwidth.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "ops/read_bandwidth.h"

HWY_BEFORE_NAMESPACE();
namespace kvc {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

uint64_t SumWords(const uint64_t* HWY_RESTRICT w, size_t n) {
  const hn::ScalableTag<uint64_t> d;
  const size_t N = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::Add(a0, hn::LoadU(d, w + i));
    a1 = hn::Add(a1, hn::LoadU(d, w + i + N));
    a2 = hn::Add(a2, hn::LoadU(d, w + i + 2 * N));
    a3 = hn::Add(a3, hn::LoadU(d, w + i + 3 * N));
  }
  // The lanes are added as unsigned (wrapping) words: GCC's AVX-512 reduction behind
  // SumOfLanes adds them as signed 64-bit integers, an overflow UBSan rightly reports.
  HWY_ALIGN uint64_t lanes[hn::MaxLanes(d)];
  hn::Store(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), d, lanes);
  uint64_t s = 0;
  for (size_t l = 0; l < N; ++l) s += lanes[l];
  for (; i < n; ++i) s += w[i];
  return s;
}

}  // namespace HWY_NAMESPACE
}  // namespace kvc
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "base/error.h"

namespace kvc {

HWY_EXPORT(SumWords);

uint64_t sum_words(const uint64_t* words, size_t n) {
  return HWY_DYNAMIC_DISPATCH(SumWords)(words, n);
}

size_t bandwidth_buffer_bytes() {
  const long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
  const size_t lo = size_t{512} << 20, hi = size_t{2} << 30;
  return std::clamp(llc > 0 ? 4 * static_cast<size_t>(llc) : lo, lo, hi);
}

double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int reps) {
  constexpr size_t kPage = 4096;
  bytes = bytes / kPage * kPage;
  if (bytes == 0 || reps < 1) return 0.0;
  const size_t words = bytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t, decltype(&std::free)> buf(
      static_cast<uint64_t*>(std::aligned_alloc(kPage, bytes)), &std::free);
  uint64_t* const w = buf.get();
  // Pages are written from the threads that later read them (first touch), like mapped weights
  // that the same workers keep reading.
  constexpr size_t kGrain = (size_t{1} << 20) / sizeof(uint64_t);  // 1 MiB pieces
  pool.parallel_for(static_cast<int64_t>(words), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) w[i] = static_cast<uint64_t>(i);
  }, kGrain);
  std::atomic<uint64_t> sink{0};
  double best = 0.0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(static_cast<int64_t>(words), [&](int64_t b, int64_t e) {
      sink.fetch_add(sum_words(w + b, static_cast<size_t>(e - b)), std::memory_order_relaxed);
    }, kGrain);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(bytes) / s);
  }
  // The sum is known (0 + 1 + ... + words-1 per pass, mod 2^64); checking it keeps the loads
  // from being optimised away.
  const uint64_t pass = words % 2 == 0 ? words / 2 * (words - 1) : words * ((words - 1) / 2);
  if (sink.load() != static_cast<uint64_t>(reps) * pass)
    fail("read bandwidth: the buffer summed to {}, expected {}", sink.load(), reps * pass);
  return best;
}

}  // namespace kvc
#endif  // HWY_ONCE
