#include "ops/thread_pool.h"

#include <algorithm>
#include <chrono>

#include "ops/usable_cpus.h"

namespace kvc {

namespace {

// Chunks per thread: enough that the running threads can take over a stalled one's share, few
// enough that claiming (one atomic add) stays negligible against a chunk's work.
constexpr int64_t kChunksPerThread = 4;

// A waiting thread spins on the pause instruction for a while (the gap between the matrix
// products of one token is microseconds, far below a futex wake-up), then yields the core (a
// descheduled thread on the same core gets to run), then sleeps.
// A worker waiting for the next job: a longer gap means the caller is busy elsewhere.
constexpr auto kWorkerPause = std::chrono::microseconds(50);
constexpr auto kWorkerYieldUntil = std::chrono::microseconds(500);
// The caller waiting for chunks that workers have started: a chunk of decode work takes a few
// microseconds, so a longer wait means a worker lost its core mid-chunk. Sleeping then leaves
// this core idle, and an idle core pulls the preempted worker over at once.
constexpr auto kCallerPause = std::chrono::microseconds(50);
constexpr auto kCallerYieldUntil = std::chrono::microseconds(60);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::max(1, n_threads)), oversubscribed_(n_threads_ > usable_cpus()) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1);
  }
  job_posted_.notify_all();
  for (auto& t : workers_) t.join();
}

template <typename Ready>
void ThreadPool::wait_until(Ready ready, std::chrono::microseconds pause_for,
                            std::chrono::microseconds yield_until, std::atomic<int>& sleepers,
                            std::condition_variable& cv) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  if (!oversubscribed_) {
    for (int i = 1;; ++i) {
      if (ready()) return;
      cpu_relax();
      if (i % 64 == 0 && Clock::now() - start > pause_for) break;
    }
  }
  while (Clock::now() - start < yield_until) {
    if (ready()) return;
    std::this_thread::yield();
  }
  // The count is raised before ready() is checked under the lock, and the notifier changes the
  // state before it reads the count (both sequentially consistent): one of the two sees the other.
  std::unique_lock<std::mutex> lock(mutex_);
  sleepers.fetch_add(1);
  cv.wait(lock, ready);
  sleepers.fetch_sub(1);
}

void ThreadPool::worker() {
  // The generation at construction, not at thread start: a worker that starts late must still
  // see the jobs and the shutdown posted before it ran.
  uint32_t seen = 0;
  for (;;) {
    wait_until([&] { return generation_.load() != seen; }, kWorkerPause, kWorkerYieldUntil,
               sleeping_workers_, job_posted_);
    seen = generation_.load();
    if (stop_.load()) return;
    run_chunks();
  }
}

void ThreadPool::run_chunks() {
  uint32_t finished = 0;
  for (;;) {
    const uint64_t c = claim_.fetch_add(1, std::memory_order_acq_rel);
    const uint32_t index = static_cast<uint32_t>(c), count = static_cast<uint32_t>(c >> 32);
    if (index >= count) {
      // Finished chunks are reported once, when none are left to claim: one atomic add per
      // thread and job rather than per chunk.
      if (finished > 0 && done_.fetch_add(finished) + finished == count &&
          sleeping_callers_.load() > 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        job_finished_.notify_one();
      }
      return;
    }
    // A claim below the count belongs to the current job, which cannot end before this chunk.
    const int64_t begin = index * job_.chunk;
    (*job_.fn)(begin, std::min(job_.n, begin + job_.chunk));
    ++finished;
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                              int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t units = (n + grain - 1) / grain;
  const int64_t per_chunk = (units + n_threads_ * kChunksPerThread - 1) / (n_threads_ * kChunksPerThread);
  const int64_t chunk = per_chunk * grain;
  const int64_t count = (n + chunk - 1) / chunk;
  if (n_threads_ == 1 || count <= 1) {
    fn(0, n);
    return;
  }
  // No chunk of the previous job is outstanding (its caller waited for all), so this is safe.
  job_ = Job{&fn, n, chunk};
  done_.store(0, std::memory_order_relaxed);
  claim_.store(static_cast<uint64_t>(count) << 32, std::memory_order_release);
  generation_.fetch_add(1);
  if (sleeping_workers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    job_posted_.notify_all();
  }
  run_chunks();
  const uint32_t total = static_cast<uint32_t>(count);
  // Only chunks a worker has started can be outstanding here; a worker that never got to run
  // claimed nothing and is not waited for.
  wait_until([&] { return done_.load() == total; }, kCallerPause, kCallerYieldUntil, sleeping_callers_,
             job_finished_);
}

}  // namespace kvc
