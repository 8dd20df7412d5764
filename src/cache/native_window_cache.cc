// Native sliding-window attention (Gemma 3's local layers): a ring of the last `window` tokens,
// keys rotated once at their stream positions and never moved. Attention masks by KvSegment::pos,
// so within a chunk each query still sees exactly its own `window` predecessors.
#include <algorithm>
#include <limits>

#include "base/error.h"
#include "cache/kv_cache.h"
#include "cache/kv_rows.h"

namespace kvc {
namespace {

class NativeWindowCache final : public LayerKvCache {
 public:
  NativeWindowCache(int window, const KvShape& shape)
      : window_(window),
        shape_(shape),
        k_(shape.k_type, shape.head_dim, static_cast<size_t>(shape.n_heads) * window),
        v_(shape.v_type, shape.head_dim, static_cast<size_t>(shape.n_heads) * window),
        pos_(window, 0) {}

  int64_t next_position() const override { return count_; }
  int64_t room() const override { return std::numeric_limits<int64_t>::max() / 4; }
  bool wants_mass() const override { return false; }
  float beta() const override { return 1.0f; }

  void view(KvView& out) override {
    out.n_heads = shape_.n_heads;
    out.n_segments = 1;
    out.segments.assign(shape_.n_heads, KvSegment{});
    for (int h = 0; h < shape_.n_heads; ++h) {
      KvSegment& s = out.segments[h];
      s.k = k_.row(static_cast<size_t>(h) * window_);
      s.v = v_.row(static_cast<size_t>(h) * window_);
      s.k_type = k_.type(), s.v_type = v_.type();
      s.n = static_cast<int>(std::min<int64_t>(count_, window_));
      s.pos = pos_.data();
    }
  }

  void commit(const float* k, const float* v, int n, const float*, const int32_t*) override {
    const int hd = shape_.head_dim;
    for (int j = 0; j < n; ++j, ++count_) {
      const int slot = static_cast<int>(count_ % window_);
      pos_[slot] = count_;
      for (int h = 0; h < shape_.n_heads; ++h) {
        const size_t src = (static_cast<size_t>(j) * shape_.n_heads + h) * hd;
        const size_t dst = static_cast<size_t>(h) * window_ + slot;
        k_.store(dst, k + src);
        v_.store(dst, v + src);
      }
    }
  }

  void clear() override { count_ = 0; }
  void visit_state(StateFields& f) override {
    f.value("count", count_);
    f.expect(count_ >= 0, "count");
    f.rows("k", k_), f.rows("v", v_), f.array("pos", pos_);
  }
  size_t bytes() const override {
    return k_.bytes() + v_.bytes() + pos_.size() * sizeof(int64_t);
  }

  std::vector<SlotInfo> slots(int) const override {
    std::vector<SlotInfo> out;
    for (int64_t p = std::max<int64_t>(0, count_ - window_); p < count_; ++p)
      out.push_back({p, p, 0.0f});
    return out;
  }

 private:
  int window_;
  KvShape shape_;
  KvRows k_, v_;              // [head][window] rows
  std::vector<int64_t> pos_;  // stream position per slot, the same for every head
  int64_t count_ = 0;
};

}  // namespace

std::unique_ptr<LayerKvCache> make_native_window_cache(int window, const KvShape& shape,
                                                       const KeyRotator&) {
  if (window <= 0) fail("native window cache: window must be positive, got {}", window);
  if (const std::string error = kv_shape_error(shape); !error.empty()) fail("kv cache: {}", error);
  return std::make_unique<NativeWindowCache>(window, shape);
}

}  // namespace kvc
