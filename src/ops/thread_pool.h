// A fixed set of worker threads that the forward pass hands ranges of work to.
// Decode calls it a few hundred times per token, so a dispatch must cost microseconds; and it
// must keep going when a core is taken (a busy neighbour, more threads than CPUs). So a range is
// cut into more chunks than threads, and the caller and whichever workers are running claim
// chunks from one shared counter: a worker that is descheduled before it claims anything holds
// up nobody. Idle workers spin briefly, then yield the core, then sleep.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kvc {

class ThreadPool {
 public:
  // n_threads counts the calling thread: ThreadPool(1) runs everything inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end) for disjoint chunks that together cover [0, n), each exactly once, on
  // whichever threads claim them, and returns when all are done. Every chunk begins at a
  // multiple of `grain`, so a kernel that treats an aligned run differently from a ragged tail
  // computes each item the same way for any thread count. Not reentrant: fn must not call back
  // into the pool.
  void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn,
                    int64_t grain = 1);

 private:
  // One range being worked on. Written by the caller only while no chunk of the previous range
  // is claimed and unfinished, so a worker that has claimed a chunk reads it without a lock.
  struct Job {
    const std::function<void(int64_t, int64_t)>* fn = nullptr;
    int64_t n = 0;
    int64_t chunk = 0;
  };

  void worker();
  // Claims and runs chunks of the current job until none are left.
  void run_chunks();
  // Waits until ready() holds: spins for `pause_for`, then yields the core until `yield_until`
  // has passed, then sleeps on `cv` (counted in `sleepers`, so that a notifier knows to take
  // the lock) until notified.
  template <typename Ready>
  void wait_until(Ready ready, std::chrono::microseconds pause_for,
                  std::chrono::microseconds yield_until, std::atomic<int>& sleepers,
                  std::condition_variable& cv);

  int n_threads_;
  // More threads than usable CPUs: spinning would take the core from a thread with work, so
  // waiting threads yield from the start.
  bool oversubscribed_;
  std::vector<std::thread> workers_;
  Job job_;
  // Each counter on its own cache line: spinning readers of one do not slow the writers of
  // another. High 32 bits of claim_: the current job's chunk count; low 32 bits: the next chunk
  // to hand out. One word, so a claim and the count it is checked against are read together.
  alignas(64) std::atomic<uint64_t> claim_{0};
  alignas(64) std::atomic<uint32_t> done_{0};        // chunks of the current job finished
  alignas(64) std::atomic<uint32_t> generation_{0};  // bumped per job and at shutdown: wakes workers
  alignas(64) std::atomic<bool> stop_{false};
  std::atomic<int> sleeping_workers_{0};
  std::atomic<int> sleeping_callers_{0};  // 0 or 1: the thread waiting in parallel_for
  std::mutex mutex_;
  std::condition_variable job_posted_;
  std::condition_variable job_finished_;
};

}  // namespace kvc
