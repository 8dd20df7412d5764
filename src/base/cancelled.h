// Thrown where a long computation notices that its cancel flag (Ctrl-C, SIGTERM) was set; the
// caller catches it and reports what was finished before.
#pragma once

#include <atomic>

#include "base/error.h"

namespace kvc {

// True once a flag (if any) is set; relaxed: a poll, not a synchronisation.
inline bool cancelled(const std::atomic<bool>* flag) {
  return flag && flag->load(std::memory_order_relaxed);
}

class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled") {}
};

}  // namespace kvc
