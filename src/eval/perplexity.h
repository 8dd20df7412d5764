// Streaming perplexity: a token stream goes through one Session in strides, every token after
// the first is scored against the logits that predicted it. Reports the whole stream and
// position buckets, so a reader sees whether a bounded cache loses quality along the stream.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace kvc {

class Session;

// -log softmax(logits)[target], computed in double with the max subtracted (stable for any
// logit range). Throws kvc::Error if target is outside the vocabulary.
double token_nll(std::span<const float> logits, int32_t target);

// Sum of NLL over a run of scored tokens.
struct NllSum {
  int64_t count = 0;
  double nll = 0.0;
  void add(double x) { ++count; nll += x; }
  double mean() const { return count > 0 ? nll / static_cast<double>(count) : 0.0; }
  double ppl() const;  // exp(mean); NaN when nothing was scored
};

// Tokens at stream positions [begin, end) (the position of the predicted token).
struct PplBucket {
  int64_t begin = 0;
  int64_t end = 0;
  NllSum sum;
};

// Accumulates NLL per predicted-token position into fixed-width buckets.
class BucketedNll {
 public:
  explicit BucketedNll(int64_t bucket);
  void add(int64_t position, double nll);
  const NllSum& total() const { return total_; }
  const std::vector<PplBucket>& buckets() const { return buckets_; }

 private:
  int64_t width_;
  NllSum total_;
  std::vector<PplBucket> buckets_;
};

struct PerplexityOptions {
  int64_t bucket = 4096;  // bucket width in tokens
  // Called after every stride with tokens processed so far and the total.
  std::function<void(int64_t done, int64_t total)> progress;
  // Checked between strides; when set, the run stops and returns what it has. To stop inside
  // a long stride as well, give the session the same flag (Session::set_cancel).
  const std::atomic<bool>* cancel = nullptr;
};

struct PerplexityResult {
  NllSum total;
  std::vector<PplBucket> buckets;
  int64_t tokens_fed = 0;  // of the stream, including the unscored first token
  int64_t tokens_total = 0;
  double seconds = 0.0;
  bool cancelled = false;
  double tokens_per_second() const { return seconds > 0 ? tokens_fed / seconds : 0.0; }
};

// Streams `tokens` through `session` (which should be fresh: reset() it first) and scores every
// token but the first. The session's stride sets the prefill chunk.
PerplexityResult streaming_perplexity(Session& session, std::span<const int32_t> tokens,
                                      const PerplexityOptions& options);

}  // namespace kvc
