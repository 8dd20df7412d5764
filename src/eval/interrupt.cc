#include "eval/interrupt.h"

#include <csignal>

namespace kvc {

namespace {

std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void on_signal(int) {
  g_interrupted.store(true);
  // The next one, of either kind, kills.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

void restore(int signal, void (*previous)(int)) {
  std::signal(signal, previous == SIG_ERR ? SIG_DFL : previous);
}

}  // namespace

ScopedInterrupt::ScopedInterrupt() {
  g_interrupted.store(false);
  previous_int_ = std::signal(SIGINT, on_signal);
  previous_term_ = std::signal(SIGTERM, on_signal);
}

ScopedInterrupt::~ScopedInterrupt() {
  restore(SIGINT, previous_int_);
  restore(SIGTERM, previous_term_);
}

const std::atomic<bool>* ScopedInterrupt::flag() const { return &g_interrupted; }

}  // namespace kvc
