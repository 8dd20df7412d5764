#include "engine/session.h"

#include <algorithm>

#include "base/error.h"
#include "ops/usable_cpus.h"

namespace kvc {

namespace {

int resolve_threads(int requested) {
  return requested > 0 ? requested : usable_cpus();
}

// Tokens whose logits are computed together when scoring text.
constexpr int kLogitBlock = 16;

}  // namespace

Session::Session(const Model& model, const SessionOptions& options)
    : model_(model), options_(options), pool_(resolve_threads(options.threads)) {
  if (options_.stride < 1) fail("--stride must be at least 1, got {}", options_.stride);
  caches_ = model.transformer().make_caches(options_.cache);
  for (auto& c : caches_) cache_ptrs_.push_back(c.get());
  logits_.assign(model.config().vocab_size, 0.0f);
}

int Session::vocab_size() const { return model_.config().vocab_size; }

size_t Session::kv_bytes() const {
  size_t total = 0;
  for (const auto& c : caches_) total += c->bytes();
  return total;
}

void Session::reset() {
  for (auto& c : caches_) c->clear();
  n_past_ = 0;
  std::fill(logits_.begin(), logits_.end(), 0.0f);
}

void Session::feed_chunk(std::span<const int32_t> chunk) {
  for (const auto& c : caches_)
    if (c->room() < static_cast<int64_t>(chunk.size()))
      fail("context full: {} tokens fed, room for {} more (raise -c or use a bounded --cache)",
           n_past_, c->room());
  model_.transformer().forward(chunk, cache_ptrs_, options_.cache, pool_, scratch_);
  n_past_ += static_cast<int64_t>(chunk.size());
}

void Session::feed(std::span<const int32_t> tokens) {
  const size_t stride = static_cast<size_t>(options_.stride);
  for (size_t i = 0; i < tokens.size(); i += stride) {
    const auto chunk = tokens.subspan(i, std::min(stride, tokens.size() - i));
    feed_chunk(chunk);
    if (i + chunk.size() == tokens.size())
      model_.transformer().logits(scratch_, static_cast<int>(chunk.size()) - 1, 1, logits_.data(),
                                  pool_, logits_act_);
  }
}

void Session::feed_scored(std::span<const int32_t> tokens,
                          const std::function<void(int64_t, const float*)>& on_logits) {
  const size_t stride = static_cast<size_t>(options_.stride);
  const int vocab = vocab_size();
  block_logits_.resize(static_cast<size_t>(kLogitBlock) * vocab);
  for (size_t i = 0; i < tokens.size(); i += stride) {
    const auto chunk = tokens.subspan(i, std::min(stride, tokens.size() - i));
    feed_chunk(chunk);
    const int n = static_cast<int>(chunk.size());
    for (int b = 0; b < n; b += kLogitBlock) {
      const int m = std::min(kLogitBlock, n - b);
      model_.transformer().logits(scratch_, b, m, block_logits_.data(), pool_, logits_act_);
      for (int j = 0; j < m; ++j)
        on_logits(static_cast<int64_t>(i) + b + j, block_logits_.data() + static_cast<size_t>(j) * vocab);
    }
    if (i + chunk.size() == tokens.size()) {
      const float* last = block_logits_.data() + static_cast<size_t>((n - 1) % kLogitBlock) * vocab;
      std::copy(last, last + vocab, logits_.begin());
    }
  }
}

}  // namespace kvc
