// What a cache policy keeps its keys or values in: n rows of head_dim elements in one storage
// type (quant/kv_storage.h), contiguous, allocated once. Row i starts at row_bytes() * i, so a run
// of slots is one segment that attention reads as stored.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "quant/kv_storage.h"

namespace kvc {

class KvRows {
 public:
  KvRows() = default;
  KvRows(KvType type, int head_dim, size_t n_rows)
      : type_(type), hd_(head_dim), row_bytes_(kv_row_bytes(type, head_dim)),
        data_(row_bytes_ * n_rows, 0) {}

  KvType type() const { return type_; }
  size_t row_bytes() const { return row_bytes_; }
  size_t bytes() const { return data_.size(); }
  uint8_t* data() { return data_.data(); }  // every row, for saving and loading a session
  size_t rows() const { return row_bytes_ ? data_.size() / row_bytes_ : 0; }
  uint8_t* row(size_t i) { return data_.data() + i * row_bytes_; }
  const uint8_t* row(size_t i) const { return data_.data() + i * row_bytes_; }

  // Row i = x, rounded to the storage type.
  void store(size_t i, const float* x) { kv_encode_row(type_, x, hd_, row(i)); }
  // x = row i as f32 (exact).
  void load(size_t i, float* x) const { kv_decode_row(type_, row(i), hd_, x); }
  // Row dst = row src, bytes as stored (no rounding).
  void copy(size_t dst, size_t src) { std::memmove(row(dst), row(src), row_bytes_); }
  // Row dst = row src of `from`, which holds the same type and head_dim.
  void copy_from(size_t dst, const KvRows& from, size_t src) {
    std::memcpy(row(dst), from.row(src), row_bytes_);
  }
  // Swaps row i with row j of `other` (same type and head_dim), bytes as stored.
  void swap_row(size_t i, KvRows& other, size_t j) {
    std::swap_ranges(row(i), row(i) + row_bytes_, other.row(j));
  }

 private:
  KvType type_ = KvType::kF32;
  int hd_ = 0;
  size_t row_bytes_ = 0;
  std::vector<uint8_t> data_;
};

}  // namespace kvc
