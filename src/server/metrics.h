// Counters for GET /metrics in Prometheus' text format: llama-server's names under a
// `kvcascade:` prefix (so dashboards map one to one), latency histograms as vLLM names them,
// and the sessions' gauges. Written by the engine thread, read by HTTP threads: one mutex.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace kvc::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double x);
  // The _bucket, _sum and _count lines of `name`.
  std::string render(const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0.0;
};

struct SessionGauges {
  int64_t resident = 0;
  int64_t bytes = 0;
  int64_t dropped_total = 0;
  int64_t on_disk = 0;  // saved sessions that are not resident
};

class Metrics {
 public:
  Metrics();
  void prompt(int64_t fed, int64_t cached, int64_t refed, double seconds);
  void first_token(double seconds_since_request);
  void token(double seconds_since_previous);
  void finished(int64_t generated, double generation_seconds, bool ok);
  void failed();
  void set_load(int64_t processing, int64_t deferred);
  void set_sessions(const SessionGauges& gauges);
  void decode_step(int64_t busy_streams);
  void saved(size_t bytes, double seconds);  // one session file written
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  int64_t prompt_tokens_ = 0, cached_tokens_ = 0, refed_tokens_ = 0, predicted_tokens_ = 0;
  double prompt_seconds_ = 0.0, predicted_seconds_ = 0.0;
  int64_t decode_steps_ = 0, busy_rows_ = 0;
  int64_t requests_ok_ = 0, requests_failed_ = 0;
  int64_t processing_ = 0, deferred_ = 0;
  SessionGauges sessions_;
  int64_t saves_ = 0, saved_bytes_ = 0;
  Histogram ttft_, itl_, save_;
};

}  // namespace kvc::server
