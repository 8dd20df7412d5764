#include "quant/kv_storage.h"

#include <cstring>

#include "quant/ggml_type.h"
#include "quant/reference.h"

namespace kvc {
namespace {

GgmlType ggml_type(KvType type) {
  switch (type) {
    case KvType::kF16: return GgmlType::F16;
    case KvType::kQ8_0: return GgmlType::Q8_0;
    case KvType::kF32: break;
  }
  return GgmlType::F32;
}

}  // namespace

const char* kv_type_name(KvType type) {
  switch (type) {
    case KvType::kF16: return "f16";
    case KvType::kQ8_0: return "q8_0";
    case KvType::kF32: break;
  }
  return "f32";
}

std::optional<KvType> parse_kv_type(std::string_view name) {
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0})
    if (name == kv_type_name(t)) return t;
  return std::nullopt;
}

int kv_type_block(KvType type) { return type == KvType::kQ8_0 ? 32 : 1; }

size_t kv_row_bytes(KvType type, int head_dim) {
  const size_t n = static_cast<size_t>(head_dim);
  switch (type) {
    case KvType::kF16: return n * 2;
    case KvType::kQ8_0: return n / 32 * 34;
    case KvType::kF32: break;
  }
  return n * sizeof(float);
}

void kv_encode_row(KvType type, const float* x, int head_dim, uint8_t* row) {
  if (type == KvType::kF32) {
    std::memcpy(row, x, static_cast<size_t>(head_dim) * sizeof(float));
    return;
  }
  quant::ref::quantize_row(ggml_type(type), x, row, head_dim);
}

void kv_decode_row(KvType type, const uint8_t* row, int head_dim, float* x) {
  if (type == KvType::kF32) {
    std::memcpy(x, row, static_cast<size_t>(head_dim) * sizeof(float));
    return;
  }
  quant::ref::dequantize_row(ggml_type(type), row, x, head_dim);
}

void kv_round_rows(KvType type, float* x, int64_t n_rows, int head_dim) {
  if (type == KvType::kF32) return;
  std::vector<uint8_t> row(kv_row_bytes(type, head_dim));
  for (int64_t r = 0; r < n_rows; ++r) {
    float* xr = x + r * head_dim;
    kv_encode_row(type, xr, head_dim, row.data());
    kv_decode_row(type, row.data(), head_dim, xr);
  }
}

}  // namespace kvc
