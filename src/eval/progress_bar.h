// A one-line progress bar with rate and ETA on stderr, for evaluations that run for minutes or
// hours on two cores. Redraws at most a few times a second; silent unless enabled.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace kvc {

class ProgressBar {
 public:
  // `unit` names what is counted ("tok", "samples"). Enabled: draws; otherwise does nothing.
  ProgressBar(std::string unit, bool enabled);
  ~ProgressBar();
  void update(int64_t done, int64_t total);
  // Ends the line (a final redraw, then a newline) so later output starts clean.
  void finish();

  // True when stderr is a terminal: the default for showing a bar.
  static bool stderr_is_tty();

 private:
  void draw(int64_t done, int64_t total);

  std::string unit_;
  bool enabled_;
  bool drawn_ = false;
  int64_t last_done_ = 0, last_total_ = 0, drawn_done_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1h02m", "3m05s", "12s"
std::string format_duration(double seconds);

}  // namespace kvc
