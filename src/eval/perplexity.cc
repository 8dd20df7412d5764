#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "base/cancelled.h"
#include "base/error.h"
#include "engine/session.h"

namespace kvc {

double token_nll(std::span<const float> logits, int32_t target) {
  if (target < 0 || static_cast<size_t>(target) >= logits.size())
    fail("token id {} outside the vocabulary of {}", target, logits.size());
  double max = -std::numeric_limits<double>::infinity();
  for (float x : logits) max = std::max(max, static_cast<double>(x));
  double sum = 0.0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - max);
  // log softmax = x_t - max - log(sum exp(x - max)); sum >= 1, so the log is finite.
  return -(static_cast<double>(logits[target]) - max - std::log(sum));
}

double NllSum::ppl() const {
  if (count == 0) return std::numeric_limits<double>::quiet_NaN();
  return std::exp(mean());
}

BucketedNll::BucketedNll(int64_t bucket) : width_(bucket) {
  if (bucket < 1) fail("--bucket must be at least 1 token, got {}", bucket);
}

void BucketedNll::add(int64_t position, double nll) {
  total_.add(nll);
  const size_t b = static_cast<size_t>(position / width_);
  while (buckets_.size() <= b) {
    const int64_t begin = static_cast<int64_t>(buckets_.size()) * width_;
    buckets_.push_back({begin, begin + width_, {}});
  }
  buckets_[b].sum.add(nll);
}

PerplexityResult streaming_perplexity(Session& session, std::span<const int32_t> tokens,
                                      const PerplexityOptions& options) {
  PerplexityResult result;
  result.tokens_total = static_cast<int64_t>(tokens.size());
  BucketedNll acc(options.bucket);
  const int vocab = session.vocab_size();
  const size_t stride = static_cast<size_t>(session.options().stride);
  const auto start = std::chrono::steady_clock::now();
  // Feed one stride per call so cancel and progress are seen between chunks; the session
  // would chunk the same way inside one call.
  for (size_t i = 0; i < tokens.size(); i += stride) {
    if (options.cancel && options.cancel->load()) {
      result.cancelled = true;
      break;
    }
    const auto chunk = tokens.subspan(i, std::min(stride, tokens.size() - i));
    try {
      session.feed_scored(chunk, [&](int64_t j, const float* logits) {
        const size_t next = i + static_cast<size_t>(j) + 1;  // the token these logits predict
        if (next < tokens.size())
          acc.add(static_cast<int64_t>(next),
                  token_nll({logits, static_cast<size_t>(vocab)}, tokens[next]));
      });
    } catch (const Cancelled&) {  // the session's own flag, inside the chunk: nothing of it scored
      result.cancelled = true;
      break;
    }
    result.tokens_fed += static_cast<int64_t>(chunk.size());
    if (options.progress) options.progress(result.tokens_fed, result.tokens_total);
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.total = acc.total();
  result.buckets = acc.buckets();
  return result;
}

}  // namespace kvc
