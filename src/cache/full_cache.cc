// `full`: exact attention. Every token stays at its stream position; memory for `context`
// tokens is allocated up front so that the forward pass never reallocates.
#include "base/error.h"
#include "cache/kv_rows.h"
#include "cache/policies.h"

namespace kvc {
namespace {

class FullCache final : public LayerKvCache {
 public:
  FullCache(int64_t context, const KvShape& shape)
      : context_(context),
        shape_(shape),
        k_(shape.k_type, shape.head_dim, static_cast<size_t>(shape.n_heads) * context),
        v_(shape.v_type, shape.head_dim, static_cast<size_t>(shape.n_heads) * context) {}

  int64_t next_position() const override { return n_; }
  int64_t room() const override { return context_ - n_; }
  bool wants_mass() const override { return false; }
  float beta() const override { return 1.0f; }

  void view(KvView& out) override {
    out.n_heads = shape_.n_heads;
    out.n_segments = 1;
    out.segments.assign(shape_.n_heads, KvSegment{});
    for (int h = 0; h < shape_.n_heads; ++h) {
      KvSegment& s = out.segments[h];
      s.k = k_.row(row(h, 0));
      s.v = v_.row(row(h, 0));
      s.k_type = k_.type(), s.v_type = v_.type();
      s.n = static_cast<int>(n_);
    }
  }

  void commit(const float* k, const float* v, int n, const float*, const int32_t*) override {
    if (n > room()) fail("context full: {} tokens cached, {} more do not fit in {}", n_, n, context_);
    const int hd = shape_.head_dim;
    for (int j = 0; j < n; ++j) {
      for (int h = 0; h < shape_.n_heads; ++h) {
        const size_t src = (static_cast<size_t>(j) * shape_.n_heads + h) * hd;
        k_.store(row(h, n_ + j), k + src);
        v_.store(row(h, n_ + j), v + src);
      }
    }
    n_ += n;
  }

  void clear() override { n_ = 0; }
  void visit_state(StateFields& f) override {
    f.value("n", n_);
    f.expect(n_ >= 0 && n_ <= context_, "n");
    f.rows("k", k_), f.rows("v", v_);
  }
  size_t bytes() const override { return k_.bytes() + v_.bytes(); }

  std::vector<SlotInfo> slots(int) const override {
    std::vector<SlotInfo> out(n_);
    for (int64_t i = 0; i < n_; ++i) out[i] = {i, i, 0.0f};
    return out;
  }

 private:
  size_t row(int h, int64_t slot) const { return static_cast<size_t>(h * context_ + slot); }

  int64_t context_;
  KvShape shape_;
  KvRows k_, v_;  // [head][context] rows
  int64_t n_ = 0;
};

}  // namespace

std::unique_ptr<LayerKvCache> make_full_cache(int64_t context, const KvShape& shape) {
  return std::make_unique<FullCache>(context, shape);
}

}  // namespace kvc
