// The pool hands out every index exactly once, whatever the thread count, the grain, and however
// the threads are scheduled: more threads than CPUs, a chunk that sleeps, a worker descheduled.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ops/thread_pool.h"
#include "ops/usable_cpus.h"

namespace kvc {
namespace {

// Runs parallel_for over [0, n) and returns how often each index was visited.
std::vector<int> visits(ThreadPool& pool, int64_t n, int64_t grain,
                        const std::function<void(int64_t, int64_t)>& extra = {}) {
  std::vector<std::atomic<int>> count(n);
  pool.parallel_for(n, [&](int64_t b, int64_t e) {
    EXPECT_LE(0, b);
    EXPECT_LT(b, e);
    EXPECT_LE(e, n);
    EXPECT_EQ(b % grain, 0) << "chunks begin at a multiple of the grain";
    if (extra) extra(b, e);
    for (int64_t i = b; i < e; ++i) count[i].fetch_add(1);
  }, grain);
  std::vector<int> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = count[i].load();
  return out;
}

void expect_once(const std::vector<int>& v, const std::string& what) {
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], 1) << what << ", index " << i;
}

TEST(ThreadPool, EveryIndexOnceForAnyThreadCountAndGrain) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 7, 64, 1000, 4097})
      for (int64_t grain : {1, 3, 16, 4096})
        expect_once(visits(pool, n, grain), std::to_string(threads) + " threads, n " +
                                                std::to_string(n) + ", grain " + std::to_string(grain));
  }
}

TEST(ThreadPool, ManyDispatchesInARow) {
  // Decode dispatches hundreds of times per token: no job may leak into the next.
  ThreadPool pool(4);
  for (int round = 0; round < 2000; ++round)
    expect_once(visits(pool, 1 + round % 97, 1 + round % 5), "round " + std::to_string(round));
}

TEST(ThreadPool, MoreThreadsThanCpus) {
  ThreadPool pool(4 * usable_cpus() + 3);
  for (int round = 0; round < 200; ++round) expect_once(visits(pool, 513, 1), "round " + std::to_string(round));
}

TEST(ThreadPool, AStalledWorkerLeavesTheRestToTheOthers) {
  // The first chunk a worker takes sleeps 50 ms, as a worker preempted by a busy neighbour
  // would. The caller must take over everything else: with one fixed share per thread it would
  // wait for the stalled thread's whole share instead.
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  const int64_t n = 64;
  bool exercised = false;
  for (int round = 0; round < 50 && !exercised; ++round) {
    std::atomic<int64_t> by_caller{0}, by_stalled{0}, stalled_chunk{0};
    std::atomic<bool> stalled{false};
    const auto v = visits(pool, n, 1, [&](int64_t b, int64_t e) {
      if (std::this_thread::get_id() == caller) {
        by_caller += e - b;
        // A little work per chunk, so that the worker gets to claim one.
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        return;
      }
      thread_local bool stalls_here = false;
      if (!stalled.exchange(true)) {
        stalls_here = true;
        stalled_chunk = e - b;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (stalls_here) by_stalled += e - b;
    });
    expect_once(v, "round " + std::to_string(round));
    if (!stalled.load()) continue;  // the worker got no chunk before the caller finished
    exercised = true;
    EXPECT_LT(stalled_chunk.load(), n / 2) << "more chunks than threads";
    EXPECT_EQ(by_stalled.load(), stalled_chunk.load()) << "the stalled worker took one chunk only";
    EXPECT_EQ(by_caller.load(), n - stalled_chunk.load()) << "the caller did all the rest";
  }
  EXPECT_TRUE(exercised) << "no worker ever claimed a chunk in 50 rounds";
}

TEST(ThreadPool, StaysCorrectAfterIdling) {
  // Workers go from spinning to sleeping after a while; a job after that wakes them.
  ThreadPool pool(3);
  expect_once(visits(pool, 100, 1), "before idling");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  expect_once(visits(pool, 100, 1), "after idling");
}

}  // namespace
}  // namespace kvc
