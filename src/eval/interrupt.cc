#include "eval/interrupt.h"

#include <csignal>

namespace kvc {

namespace {

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void on_sigint(int) {
  g_interrupted.store(true);
  std::signal(SIGINT, SIG_DFL);
}

}  // namespace

ScopedInterrupt::ScopedInterrupt() {
  g_interrupted.store(false);
  previous_ = std::signal(SIGINT, on_sigint);
}

ScopedInterrupt::~ScopedInterrupt() { std::signal(SIGINT, previous_ == SIG_ERR ? SIG_DFL : previous_); }

const std::atomic<bool>* ScopedInterrupt::flag() const { return &g_interrupted; }

}  // namespace kvc
