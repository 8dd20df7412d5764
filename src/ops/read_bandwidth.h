// The machine's streaming read bandwidth, measured with the threads a decode step would use: the
// roofline a memory-bound decode is held to (kvcascade bench prints decode as a share of it).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops/thread_pool.h"

namespace kvc {

// Bytes of a buffer far larger than the last-level cache: 4x the LLC that sysconf reports,
// within [512 MiB, 2 GiB] (a VM may report a host-sized LLC, or none).
size_t bandwidth_buffer_bytes();

// Reads a buffer of `bytes` (rounded down to 4 KiB) `reps` times, split over the pool's threads
// as parallel_for splits work; returns the best pass in bytes per second. The buffer is written
// once before the first pass, so every page is resident.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int reps);

// The sum of 64-bit words [0, n): what a pass computes, so that the reads cannot be dropped.
uint64_t sum_words(const uint64_t* words, size_t n);

}  // namespace kvc
