#include "engine/session.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>

#include "base/cancelled.h"
#include "base/error.h"
#include "cache/view_read_bytes.h"
#include "engine/token_kinds.h"
#include "tokenizer/tokenizer.h"
#include "ops/usable_cpus.h"

namespace kvc {

namespace {

int resolve_threads(int requested) {
  return requested > 0 ? requested : usable_cpus();
}

// Physical memory of the machine, 0 if unknown.
uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

double gib(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

// Tokens whose logits are computed together when scoring text.
constexpr int kLogitBlock = 16;

// Throws if any of n logits is NaN or infinite. A sane model never produces one; a broken file
// (weights, norms, scales) does, and sampling from NaN would silently pick token 0. An integer
// test on the exponent bits, so the loop vectorizes: one cheap pass per row.
void check_finite(const float* logits, size_t n, int64_t position) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &logits[i], sizeof bits);
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  if (bad)
    fail("the model produced non-finite logits (NaN/Inf) at token {}: its weights or metadata "
         "are broken",
         position);
}

}  // namespace

Session::Session(const Model& model, const SessionOptions& options)
    : model_(model),
      options_(options),
      own_pool_(options.shared_pool ? nullptr
                                    : std::make_unique<ThreadPool>(resolve_threads(options.threads))),
      pool_(options.shared_pool ? options.shared_pool : own_pool_.get()) {
  if (options_.stride < 1) fail("--stride must be at least 1, got {}", options_.stride);
  reconfigure(options_.cache);
  logits_.assign(model.config().vocab_size, 0.0f);
}

void Session::reconfigure(const CacheConfig& cache) {
  std::shared_ptr<const std::vector<uint8_t>> kinds = options_.cache.token_kinds;
  options_.cache = cache;
  if (uses_span_cascade(cache) && !options_.cache.token_kinds)
    options_.cache.token_kinds = kinds ? kinds : classify_tokens(model_.tokenizer());
  caches_.clear();
  cache_ptrs_.clear();
  // Checked before allocating: one wrong value must say what it asks for, not exhaust memory.
  const uint64_t need = model_.transformer().kv_bytes(options_.cache);
  const uint64_t have = physical_memory_bytes();
  if (have > 0 && need > have)
    fail("the KV cache needs {} bytes ({:.1f} GiB), more than this machine's memory ({:.1f} GiB): "
         "lower -c or --cache-size",
         need, gib(need), gib(have));
  try {
    caches_ = model_.transformer().make_caches(options_.cache);
  } catch (const std::bad_alloc&) {
    fail("out of memory allocating the KV cache of {} bytes ({:.1f} GiB): lower -c or --cache-size",
         need, gib(need));
  } catch (const std::length_error&) {
    fail("the KV cache of {} bytes ({:.1f} GiB) cannot be allocated", need, gib(need));
  }
  for (auto& c : caches_) cache_ptrs_.push_back(c.get());
  for (SparseSelection& sel : scratch_.sparse) sel.invalidate();
  n_past_ = 0;
}

int Session::vocab_size() const { return model_.config().vocab_size; }

size_t Session::kv_bytes() const {
  size_t total = 0;
  for (const auto& c : caches_) total += c->bytes();
  return total;
}

uint64_t Session::kv_read_bytes() {
  // view() only zeroes the masses, which the next step's view() zeroes again before attention.
  KvView view;
  uint64_t total = 0;
  const int hd = model_.config().head_dim;
  for (auto& c : caches_) {
    c->view(view);
    total += view_read_bytes(view, hd);
  }
  return total;
}

SparseStats Session::sparse_stats() const {
  SparseStats total;
  for (const SparseSelection& sel : scratch_.sparse) {
    const SparseStats& s = sel.stats;
    total.dense_calls += s.dense_calls;
    total.sparse_calls += s.sparse_calls;
    total.selections += s.selections;
    total.keys_scored += s.keys_scored;
    total.keys_attended += s.keys_attended;
    total.keys_cached += s.keys_cached;
    total.recall_covered += s.recall_covered;
    total.recall_best += s.recall_best;
    total.recall_rows += s.recall_rows;
  }
  return total;
}

std::vector<SparseStats> Session::sparse_layer_stats() const {
  std::vector<SparseStats> out;
  for (const SparseSelection& sel : scratch_.sparse) out.push_back(sel.stats);
  return out;
}

void Session::reset() {
  for (auto& c : caches_) c->clear();
  for (SparseSelection& sel : scratch_.sparse) sel.invalidate();
  n_past_ = 0;
  std::fill(logits_.begin(), logits_.end(), 0.0f);
}

void Session::visit_stream_state(StateFields& f) {
  f.value("n_past", n_past_);
  f.expect(n_past_ >= 0, "n_past");
  f.array("logits", logits_);
  // A decode selection that the next step would reuse is kept, so that a restored sparse
  // session picks the same keys as one that never stopped. Its view is the one the next step
  // will read (views change only in commits); on loading, the view's pointers are the new
  // caches', with the saved lengths.
  uint64_t layers = scratch_.sparse.size();
  f.value("sparse_layers", layers);
  f.expect(layers == 0 || layers == caches_.size(), "sparse_layers");
  if (f.loading()) scratch_.sparse.assign(static_cast<size_t>(layers), SparseSelection{});
  KvView view;
  for (size_t l = 0; l < scratch_.sparse.size(); ++l) {
    SparseSelection& sel = scratch_.sparse[l];
    caches_[l]->view(view);
    bool kept = !f.loading() && sel.valid && sel.made_on.size() == view.segments.size();
    if (kept)
      for (size_t i = 0; i < view.segments.size(); ++i) {
        const KvSegment &a = sel.made_on[i], &b = view.segments[i];
        kept = kept && a.k == b.k && a.v == b.v && a.pos_offset == b.pos_offset && b.n >= a.n;
      }
    f.value("selection_kept", kept);
    if (!kept) {
      sel.invalidate();
      continue;
    }
    f.value("uses", sel.uses);
    uint64_t heads = sel.heads.size();
    f.value("heads", heads);
    f.expect(heads == static_cast<uint64_t>(view.n_heads), "heads");
    if (f.loading()) sel.heads.assign(static_cast<size_t>(heads), {});
    for (SparseSelection::Head& h : sel.heads) {
      f.list("chunks", h.chunks, size_t{1} << 24);
      f.value("tail_begin", h.tail_begin);
      f.expect(h.tail_begin >= 0, "tail_begin");
    }
    std::vector<int> n(view.segments.size());
    if (!f.loading())
      for (size_t i = 0; i < n.size(); ++i) n[i] = sel.made_on[i].n;
    f.array("made_on", n);
    if (f.loading()) {
      sel.made_on = view.segments;
      for (size_t i = 0; i < n.size(); ++i) {
        f.expect(n[i] >= 0 && n[i] <= view.segments[i].n, "made_on");
        sel.made_on[i].n = n[i];
      }
      for (int h = 0; h < view.n_heads; ++h)
        for (const KeyRange& r : sel.heads[static_cast<size_t>(h)].chunks)
          f.expect(r.seg >= 0 && r.seg < view.n_segments && r.begin >= 0 && r.begin <= r.end &&
                       r.end <= view.at(h, r.seg).n,
                   "chunks");
      sel.valid = true;
    }
  }
}

void Session::feed_chunk(std::span<const int32_t> chunk) {
  for (const auto& c : caches_)
    if (c->room() < static_cast<int64_t>(chunk.size()))
      fail("context full: {} tokens fed, room for {} more (raise -c or use a bounded --cache)",
           n_past_, c->room());
  try {
    if (cancelled(cancel_)) throw Cancelled();
    model_.transformer().forward(chunk, cache_ptrs_, options_.cache, *pool_, scratch_, cancel_,
                                 options_.sparse_attention ? &options_.sparse : nullptr);
  } catch (const Cancelled&) {
    reset();
    throw;
  }
  n_past_ += static_cast<int64_t>(chunk.size());
}

void Session::feed(std::span<const int32_t> tokens) {
  const size_t stride = static_cast<size_t>(options_.stride);
  for (size_t i = 0; i < tokens.size(); i += stride) {
    const auto chunk = tokens.subspan(i, std::min(stride, tokens.size() - i));
    feed_chunk(chunk);
    if (i + chunk.size() == tokens.size()) {
      model_.transformer().logits(scratch_, static_cast<int>(chunk.size()) - 1, 1, logits_.data(),
                                  *pool_, logits_act_);
      check_finite(logits_.data(), logits_.size(), n_past_);
    }
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
      model_.transformer().logits(scratch_, b, m, block_logits_.data(), *pool_, logits_act_);
      const int64_t first = n_past_ - n + b + 1;  // the token the block's first row predicts
      check_finite(block_logits_.data(), static_cast<size_t>(m) * vocab, first);
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
