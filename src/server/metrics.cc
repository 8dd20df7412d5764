#include "server/metrics.h"

#include <algorithm>

#include <fmt/format.h>

namespace kvc::server {

namespace {

constexpr const char* kPrefix = "kvcascade:";

void line(std::string& out, const char* type, const std::string& name, const std::string& help,
          double value) {
  out += fmt::format("# HELP {}{} {}\n# TYPE {}{} {}\n{}{} {}\n", kPrefix, name, help, kPrefix,
                     name, type, kPrefix, name, value);
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double x) {
  const size_t i = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), x) - bounds_.begin());
  ++counts_[i];
  ++count_;
  sum_ += x;
}

std::string Histogram::render(const std::string& name, const std::string& help) const {
  std::string out = fmt::format("# HELP {}{} {}\n# TYPE {}{} histogram\n", kPrefix, name, help,
                                kPrefix, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}{}_bucket{{le=\"{}\"}} {}\n", kPrefix, name, bounds_[i], cumulative);
  }
  out += fmt::format("{}{}_bucket{{le=\"+Inf\"}} {}\n", kPrefix, name, count_);
  out += fmt::format("{}{}_sum {}\n{}{}_count {}\n", kPrefix, name, sum_, kPrefix, name, count_);
  return out;
}

Metrics::Metrics()
    : ttft_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}),
      itl_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}),
      save_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}) {}

void Metrics::prompt(int64_t fed, int64_t cached, int64_t refed, double seconds) {
  std::lock_guard lock(mutex_);
  prompt_tokens_ += fed;
  cached_tokens_ += cached;
  refed_tokens_ += refed;
  prompt_seconds_ += seconds;
}

void Metrics::first_token(double seconds) {
  std::lock_guard lock(mutex_);
  ttft_.observe(seconds);
}

void Metrics::token(double seconds) {
  std::lock_guard lock(mutex_);
  itl_.observe(seconds);
}

void Metrics::finished(int64_t generated, double seconds, bool ok) {
  std::lock_guard lock(mutex_);
  predicted_tokens_ += generated;
  predicted_seconds_ += seconds;
  ++(ok ? requests_ok_ : requests_failed_);
}

void Metrics::failed() {
  std::lock_guard lock(mutex_);
  ++requests_failed_;
}

void Metrics::set_load(int64_t processing, int64_t deferred) {
  std::lock_guard lock(mutex_);
  processing_ = processing;
  deferred_ = deferred;
}

void Metrics::set_sessions(const SessionGauges& gauges) {
  std::lock_guard lock(mutex_);
  sessions_ = gauges;
}

void Metrics::saved(size_t bytes, double seconds) {
  std::lock_guard lock(mutex_);
  ++saves_;
  saved_bytes_ += static_cast<int64_t>(bytes);
  save_.observe(seconds);
}

void Metrics::decode_step(int64_t busy_streams) {
  std::lock_guard lock(mutex_);
  ++decode_steps_;
  busy_rows_ += busy_streams;
}

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  line(out, "counter", "prompt_tokens_total", "Prompt tokens fed.", double(prompt_tokens_));
  line(out, "counter", "prompt_tokens_cached_total",
       "Prompt tokens not fed because the session's cache held them.", double(cached_tokens_));
  line(out, "counter", "prompt_tokens_refed_total",
       "Prompt tokens fed again because a resent history diverged from its session.",
       double(refed_tokens_));
  line(out, "counter", "prompt_seconds_total", "Prompt processing time.", prompt_seconds_);
  line(out, "counter", "tokens_predicted_total", "Generated tokens.", double(predicted_tokens_));
  line(out, "counter", "tokens_predicted_seconds_total", "Generation time.", predicted_seconds_);
  line(out, "counter", "n_decode_total", "Engine steps (one token for each busy stream).",
       double(decode_steps_));
  line(out, "gauge", "n_busy_slots_per_decode", "Average busy streams per engine step.",
       decode_steps_ ? double(busy_rows_) / double(decode_steps_) : 0.0);
  line(out, "gauge", "prompt_tokens_seconds", "Average prompt throughput in tokens/s.",
       prompt_seconds_ > 0 ? double(prompt_tokens_) / prompt_seconds_ : 0.0);
  line(out, "gauge", "predicted_tokens_seconds", "Average generation throughput in tokens/s.",
       predicted_seconds_ > 0 ? double(predicted_tokens_) / predicted_seconds_ : 0.0);
  line(out, "gauge", "requests_processing", "Requests generating now.", double(processing_));
  line(out, "gauge", "requests_deferred", "Requests waiting in the queue.", double(deferred_));
  line(out, "counter", "requests_success_total", "Requests answered in full.", double(requests_ok_));
  line(out, "counter", "requests_failed_total", "Requests that failed or were cancelled.",
       double(requests_failed_));
  line(out, "gauge", "sessions_resident", "Sessions held in memory.", double(sessions_.resident));
  line(out, "gauge", "session_bytes", "KV cache bytes of the resident sessions.",
       double(sessions_.bytes));
  line(out, "counter", "sessions_dropped_total",
       "Idle sessions dropped from memory beyond --max-sessions.", double(sessions_.dropped_total));
  line(out, "gauge", "sessions_on_disk", "Saved sessions not held in memory (--session-dir).",
       double(sessions_.on_disk));
  line(out, "counter", "session_saves_total", "Session files written.", double(saves_));
  line(out, "counter", "session_saved_bytes_total", "Bytes of session files written.",
       double(saved_bytes_));
  out += save_.render("session_save_seconds", "Time to write one session file (fsync included).");
  out += ttft_.render("time_to_first_token_seconds", "Time from request to first token.");
  out += itl_.render("inter_token_latency_seconds", "Time between successive tokens.");
  return out;
}

}  // namespace kvc::server
