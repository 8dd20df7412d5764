// The ggml block layouts, byte for byte (they are read straight out of GGUF files).
// Halves are kept as raw uint16_t; see fp16.h.
#pragma once

#include <cstdint>

namespace kvc::quant {

constexpr int kQK = 32;   // elements per block of the simple formats
constexpr int kQKK = 256; // elements per K-quant super-block

// x = d * (q - 8), q in 0..15; element j in the low nibble of qs[j], j+16 in the high nibble.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[16];
};
// x = d * q + m, q in 0..15, nibble order as Q4_0.
struct BlockQ4_1 {
  uint16_t d, m;
  uint8_t qs[16];
};
// x = d * (q - 16), q in 0..31: low 4 bits as Q4_0; bit 4 of element j is bit j of qh (little endian).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
// Activation block for Q4_1: s = d * sum(qs), so the min term of a dot is m * s.
struct BlockQ8_1 {
  uint16_t d, s;
  int8_t qs[32];
};
// 8 sub-blocks of 32: x = d * sc[j] * q - dmin * m[j], q in 0..15; 6-bit sc/m packed in scales
// (see unpack_scales_k4). qs: each 32 bytes hold sub-block 2i (low nibbles) and 2i+1 (high).
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qs[128];
};
// As Q4_K with a fifth bit: bit 2i of qh[l] is for element l of sub-block 2i, bit 2i+1 of 2i+1.
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
// 16 sub-blocks of 16: x = d * scales[j] * (q - 32), q in 0..63. Each half (128 elements) uses
// 64 bytes of ql and 32 of qh: element l (l < 32) of quarter k takes its low 4 bits from
// ql[l + 32*(k&1)] (low nibble for k < 2, high for k >= 2) and its top 2 bits from qh[l] >> 2k.
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
};
// Activation block for the K-quants; bsums[j] = sum of qs[16j .. 16j+15].
struct BlockQ8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);

// The 6-bit scales and mins of the 8 sub-blocks of a Q4_K/Q5_K super-block (ggml's
// get_scale_min_k4): sub-blocks 0-3 in the low 6 bits of bytes 0-3 (scales) and 4-7 (mins);
// sub-blocks 4-7 keep their low 4 bits in bytes 8-11 and their top 2 bits in the spare top bits
// of bytes 0-3 (scales) and 4-7 (mins).
inline void unpack_scales_k4(const uint8_t* q, uint8_t sc[8], uint8_t m[8]) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = q[j] & 63;
    m[j] = q[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    sc[j] = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

}  // namespace kvc::quant
