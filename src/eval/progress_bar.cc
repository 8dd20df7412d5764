#include "eval/progress_bar.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include <fmt/format.h>

namespace kvc {

ProgressBar::ProgressBar(std::string unit, bool enabled)
    : unit_(std::move(unit)), enabled_(enabled), start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { finish(); }

bool ProgressBar::stderr_is_tty() { return isatty(STDERR_FILENO) == 1; }

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = std::lround(s);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

void ProgressBar::update(int64_t done, int64_t total) {
  if (!enabled_) return;
  last_done_ = done;
  last_total_ = total;
  const auto now = std::chrono::steady_clock::now();
  // Redrawing on every token would cost more than it shows.
  if (drawn_ && done < total && now - last_draw_ < std::chrono::milliseconds(200)) return;
  last_draw_ = now;
  draw(done, total);
}

void ProgressBar::draw(int64_t done, int64_t total) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0.0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(frac * kWidth);
  const double rate = elapsed > 0 ? done / elapsed : 0.0;
  const double eta = rate > 0 ? (total - done) / rate : NAN;
  const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '-');
  std::fprintf(stderr, "\r[%s] %3.0f%% %lld/%lld %s | %.1f %s/s | %s elapsed, ETA %s ", bar.c_str(),
               frac * 100, static_cast<long long>(done), static_cast<long long>(total),
               unit_.c_str(), rate, unit_.c_str(), format_duration(elapsed).c_str(),
               format_duration(eta).c_str());
  std::fflush(stderr);
  drawn_ = true;
  drawn_done_ = done;
}

void ProgressBar::finish() {
  if (!enabled_ || !drawn_) return;
  if (drawn_done_ != last_done_) draw(last_done_, last_total_);
  std::fputc('\n', stderr);
  drawn_ = false;
  enabled_ = false;
}

}  // namespace kvc
