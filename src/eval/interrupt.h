// Ctrl-C (SIGINT) or SIGTERM (systemd, `timeout`) during a long run: the first one sets a flag
// that the run polls, so it can stop and print partial results; a second one kills as usual.
#pragma once

#include <atomic>

namespace kvc {

// Installs the handler for its lifetime and restores the previous ones afterwards.
// One at a time (the flag is process-wide, as signals are).
class ScopedInterrupt {
 public:
  ScopedInterrupt();
  ~ScopedInterrupt();
  ScopedInterrupt(const ScopedInterrupt&) = delete;
  ScopedInterrupt& operator=(const ScopedInterrupt&) = delete;

  const std::atomic<bool>* flag() const;
  bool interrupted() const { return flag()->load(); }

 private:
  void (*previous_int_)(int);
  void (*previous_term_)(int);
};

}  // namespace kvc
