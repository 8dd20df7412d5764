// How a KV cache stores one row of head_dim keys or values (llama.cpp's -ctk/-ctv): f32, f16, or
// q8_0 (GGML's block of 32: one f16 scale and 32 int8). A row is a run of bytes in that format;
// attention reads it directly (ops/attention.cc), a policy that moves a key decodes it to f32,
// rotates it and encodes it again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace kvc {

enum class KvType : uint8_t { kF32, kF16, kQ8_0 };

// "f32", "f16", "q8_0": the names the flags take.
const char* kv_type_name(KvType type);
std::optional<KvType> parse_kv_type(std::string_view name);
// The list for messages: "f32, f16 or q8_0".
inline constexpr const char* kKvTypeChoices = "f32, f16 or q8_0";

// Elements per block: q8_0 rows need head_dim a multiple of this; the others take any.
int kv_type_block(KvType type);
size_t kv_row_bytes(KvType type, int head_dim);

// The scalar codec, GGML's layout and rounding (quant/reference.cc): encode rounds each element
// (f16: to nearest even; q8_0: scale amax / 127 per block), decode is exact.
void kv_encode_row(KvType type, const float* x, int head_dim, uint8_t* row);
void kv_decode_row(KvType type, const uint8_t* row, int head_dim, float* x);

// Rounds n_rows rows of head_dim floats in place to what `type` stores (encode, then decode); f32
// leaves them alone. A chunk's own keys and values go through this before attention reads them,
// so a token sees its neighbours as the cache will hold them, whatever the prefill stride.
void kv_round_rows(KvType type, float* x, int64_t n_rows, int head_dim);

// Row i of the rows at `rows` as f32, decoded into `scratch` (for reference code and
// diagnostics: the kernels read rows as stored).
inline const float* kv_decoded_row(KvType type, const uint8_t* rows, int64_t i, int head_dim,
                                   std::vector<float>& scratch) {
  scratch.resize(static_cast<size_t>(head_dim));
  kv_decode_row(type, rows + static_cast<size_t>(i) * kv_row_bytes(type, head_dim), head_dim,
                scratch.data());
  return scratch.data();
}

}  // namespace kvc
