// Scalar reference kernels: literal loops over the ggml block layouts (blocks.h).
// Activation quantization follows what llama.cpp runs on x86: scale 127/amax and round to
// nearest even (cvtps2dq), so the SIMD paths can match it bit for bit.
#include "quant/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "base/error.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace kvc::quant::ref {

namespace {

// Round to nearest even. NaN gives 0 and huge values saturate, where a plain cast would be
// undefined; every caller clamps to a few bits anyway.
int nearest(float x) {
  constexpr float kLimit = 1 << 24;
  if (std::isnan(x)) return 0;
  return static_cast<int>(std::nearbyint(std::clamp(x, -kLimit, kLimit)));
}

int64_t blocks_of(GgmlType t, int64_t n) {
  row_bytes(t, n);  // validates n against the block size
  return n / info(t).block_size;
}

// The element of largest magnitude, with its sign (first one on ties); NaN if any is NaN, so
// a broken input gives a NaN scale rather than finite garbage.
float signed_absmax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    if (std::isnan(x[i])) return x[i];
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  return max;
}

// ---- dequantize -----------------------------------------------------------------------------

void dequant_q4_0(const BlockQ4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>((b[i].qs[j] & 0xF) - 8) * d;
      y[j + 16] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequant_q4_1(const BlockQ4_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f16_to_f32(b[i].d), m = f16_to_f32(b[i].m);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(b[i].qs[j] & 0xF) * d + m;
      y[j + 16] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
    }
  }
}

void dequant_q5_0(const BlockQ5_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f16_to_f32(b[i].d);
    uint32_t qh;
    std::memcpy(&qh, b[i].qh, 4);
    for (int j = 0; j < 16; ++j) {
      const int lo = (b[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4);
      const int hi = (b[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      y[j] = static_cast<float>(lo - 16) * d;
      y[j + 16] = static_cast<float>(hi - 16) * d;
    }
  }
}

void dequant_q8_0(const BlockQ8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

void dequant_q8_1(const BlockQ8_1* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

void dequant_q4_k(const BlockQ4_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f16_to_f32(b[i].d), dmin = f16_to_f32(b[i].dmin);
    uint8_t sc[8], m[8];
    unpack_scales_k4(b[i].scales, sc, m);
    for (int c = 0; c < 4; ++c) {  // 64 elements: sub-blocks 2c (low nibbles), 2c+1 (high)
      const uint8_t* q = b[i].qs + 32 * c;
      const float d1 = d * sc[2 * c], m1 = dmin * m[2 * c];
      const float d2 = d * sc[2 * c + 1], m2 = dmin * m[2 * c + 1];
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequant_q5_k(const BlockQ5_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = f16_to_f32(b[i].d), dmin = f16_to_f32(b[i].dmin);
    uint8_t sc[8], m[8];
    unpack_scales_k4(b[i].scales, sc, m);
    for (int c = 0; c < 4; ++c) {
      const uint8_t* q = b[i].qs + 32 * c;
      const float d1 = d * sc[2 * c], m1 = dmin * m[2 * c];
      const float d2 = d * sc[2 * c + 1], m2 = dmin * m[2 * c + 1];
      for (int l = 0; l < 32; ++l) {
        const int v = (q[l] & 0xF) | (((b[i].qh[l] >> (2 * c)) & 1) << 4);
        *y++ = d1 * static_cast<float>(v) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int v = (q[l] >> 4) | (((b[i].qh[l] >> (2 * c + 1)) & 1) << 4);
        *y++ = d2 * static_cast<float>(v) - m2;
      }
    }
  }
}

// The 6-bit value (0..63) of element e (0..255) of a Q6_K block.
int q6k_value(const BlockQ6_K& b, int e) {
  const int h = e / 128, k = (e % 128) / 32, l = e % 32;
  const uint8_t ql = b.ql[64 * h + l + 32 * (k & 1)];
  const int lo = k < 2 ? (ql & 0xF) : (ql >> 4);
  const int hi = (b.qh[32 * h + l] >> (2 * k)) & 3;
  return lo | (hi << 4);
}

void dequant_q6_k(const BlockQ6_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    const float d = f16_to_f32(b[i].d);
    for (int e = 0; e < kQKK; ++e)
      y[e] = d * static_cast<float>(b[i].scales[e / 16]) *
             static_cast<float>(q6k_value(b[i], e) - 32);
  }
}

void dequant_q8_k(const BlockQ8_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQKK)
    for (int j = 0; j < kQKK; ++j) y[j] = b[i].d * static_cast<float>(b[i].qs[j]);
}

// ---- quantize -------------------------------------------------------------------------------

void quant_q4_0(const float* x, BlockQ4_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = signed_absmax(x, kQK) / -8.0f;  // the extreme maps to q = 0
    b[i].d = f32_to_f16(d);
    const float dq = f16_to_f32(b[i].d), id = dq != 0 ? 1.0f / dq : 0.0f;
    for (int j = 0; j < 16; ++j) {
      const int lo = std::clamp(nearest(x[j] * id) + 8, 0, 15);
      const int hi = std::clamp(nearest(x[j + 16] * id) + 8, 0, 15);
      b[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void quant_q4_1(const float* x, BlockQ4_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float mn = *std::min_element(x, x + kQK), mx = *std::max_element(x, x + kQK);
    b[i].d = f32_to_f16((mx - mn) / 15.0f);
    b[i].m = f32_to_f16(mn);
    const float dq = f16_to_f32(b[i].d), mq = f16_to_f32(b[i].m);
    const float id = dq != 0 ? 1.0f / dq : 0.0f;
    for (int j = 0; j < 16; ++j) {
      const int lo = std::clamp(nearest((x[j] - mq) * id), 0, 15);
      const int hi = std::clamp(nearest((x[j + 16] - mq) * id), 0, 15);
      b[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void quant_q5_0(const float* x, BlockQ5_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = signed_absmax(x, kQK) / -16.0f;
    b[i].d = f32_to_f16(d);
    const float dq = f16_to_f32(b[i].d), id = dq != 0 ? 1.0f / dq : 0.0f;
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = std::clamp(nearest(x[j] * id) + 16, 0, 31);
      const int hi = std::clamp(nearest(x[j + 16] * id) + 16, 0, 31);
      b[i].qs[j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= static_cast<uint32_t>(lo >> 4) << j;
      qh |= static_cast<uint32_t>(hi >> 4) << (j + 16);
    }
    std::memcpy(b[i].qh, &qh, 4);
  }
}

// Shared by Q8_0 and Q8_1: returns the scale; q gets round-to-nearest-even of x * 127 / amax.
float quant_int8_block(const float* x, int8_t* q) {
  float amax = 0;
  for (int j = 0; j < kQK; ++j) {
    if (std::isnan(x[j])) {  // std::max would drop it: keep it, so the scale is NaN
      amax = x[j];
      break;
    }
    amax = std::max(amax, std::fabs(x[j]));
  }
  const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
  for (int j = 0; j < kQK; ++j) q[j] = static_cast<int8_t>(nearest(x[j] * id));
  return d;
}

void quant_q8_0(const float* x, BlockQ8_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) b[i].d = f32_to_f16(quant_int8_block(x, b[i].qs));
}

void quant_q8_1(const float* x, BlockQ8_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = quant_int8_block(x, b[i].qs);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) sum += b[i].qs[j];
    b[i].d = f32_to_f16(d);
    b[i].s = f32_to_f16(d * static_cast<float>(sum));
  }
}

// Q4_K / Q5_K: per sub-block of 32 an affine range [mn, mx] with mn <= 0, its 6-bit scale and
// min relative to the super-block's d and dmin, then every element rounded with those.
template <int kMaxQ>
void quant_k_affine(const float* x, uint16_t* d_out, uint16_t* dmin_out, uint8_t scales[12],
                    uint8_t L[kQKK]) {
  float scale[8], min[8], max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* s = x + 32 * j;
    const float mn = std::min(0.0f, *std::min_element(s, s + 32));
    const float mx = *std::max_element(s, s + 32);
    scale[j] = (mx - mn) / kMaxQ;
    min[j] = -mn;
    max_scale = std::max(max_scale, scale[j]);
    max_min = std::max(max_min, min[j]);
  }
  *d_out = f32_to_f16(max_scale / 63.0f);
  *dmin_out = f32_to_f16(max_min / 63.0f);
  const float d = f16_to_f32(*d_out), dmin = f16_to_f32(*dmin_out);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = static_cast<uint8_t>(d > 0 ? std::clamp(nearest(scale[j] / d), 0, 63) : 0);
    m[j] = static_cast<uint8_t>(dmin > 0 ? std::clamp(nearest(min[j] / dmin), 0, 63) : 0);
  }
  std::memset(scales, 0, 12);
  for (int j = 0; j < 4; ++j) {
    scales[j] = sc[j];
    scales[j + 4] = m[j];
  }
  for (int j = 4; j < 8; ++j) {
    scales[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | ((m[j] & 0xF) << 4));
    scales[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
    scales[j] |= static_cast<uint8_t>((m[j] >> 4) << 6);
  }
  for (int j = 0; j < 8; ++j) {
    const float ds = d * sc[j], dm = dmin * m[j];
    for (int l = 0; l < 32; ++l) {
      const int v = ds > 0 ? nearest((x[32 * j + l] + dm) / ds) : 0;
      L[32 * j + l] = static_cast<uint8_t>(std::clamp(v, 0, kMaxQ));
    }
  }
}

void quant_q4_k(const float* x, BlockQ4_K* b, int64_t nb) {
  uint8_t L[kQKK];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    quant_k_affine<15>(x, &b[i].d, &b[i].dmin, b[i].scales, L);
    for (int c = 0; c < 4; ++c)
      for (int l = 0; l < 32; ++l)
        b[i].qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }
}

void quant_q5_k(const float* x, BlockQ5_K* b, int64_t nb) {
  uint8_t L[kQKK];
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    quant_k_affine<31>(x, &b[i].d, &b[i].dmin, b[i].scales, L);
    std::memset(b[i].qh, 0, 32);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
        b[i].qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        b[i].qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
    }
  }
}

void quant_q6_k(const float* x, BlockQ6_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    float scale[16], max_abs = 0;
    for (int j = 0; j < 16; ++j) {
      scale[j] = signed_absmax(x + 16 * j, 16) / -32.0f;  // the extreme maps to q - 32 = -32
      max_abs = std::max(max_abs, std::fabs(scale[j]));
    }
    b[i].d = f32_to_f16(max_abs / 127.0f);
    const float d = f16_to_f32(b[i].d);
    std::memset(b[i].ql, 0, sizeof b[i].ql);
    std::memset(b[i].qh, 0, sizeof b[i].qh);
    for (int j = 0; j < 16; ++j) {
      const int sc = d > 0 ? std::clamp(nearest(scale[j] / d), -128, 127) : 0;
      b[i].scales[j] = static_cast<int8_t>(sc);
      const float ds = d * static_cast<float>(sc);
      for (int l = 0; l < 16; ++l) {
        const int e = 16 * j + l;
        const int q = (ds != 0 ? std::clamp(nearest(x[e] / ds), -32, 31) : 0) + 32;
        const int h = e / 128, k = (e % 128) / 32, p = e % 32;
        uint8_t& ql = b[i].ql[64 * h + p + 32 * (k & 1)];
        ql |= static_cast<uint8_t>(k < 2 ? (q & 0xF) : ((q & 0xF) << 4));
        b[i].qh[32 * h + p] |= static_cast<uint8_t>((q >> 4) << (2 * k));
      }
    }
  }
}

// As ggml: the element of largest magnitude maps to -127 (d may be negative).
void quant_q8_k(const float* x, BlockQ8_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQKK) {
    const float max = signed_absmax(x, kQKK);
    if (max == 0) {
      std::memset(&b[i], 0, sizeof b[i]);
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQKK; ++j)
      b[i].qs[j] = static_cast<int8_t>(std::clamp(nearest(iscale * x[j]), -127, 127));
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += b[i].qs[16 * j + l];
      b[i].bsums[j] = static_cast<int16_t>(sum);
    }
    b[i].d = 1.0f / iscale;
  }
}

// ---- dot ------------------------------------------------------------------------------------
// Exact integer dot within a block, then the block's float scales, as ggml's vec_dot does.

float dot_q4_0(const BlockQ4_0* w, const BlockQ8_0* a, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int s = 0;
    for (int j = 0; j < 16; ++j)
      s += ((w[i].qs[j] & 0xF) - 8) * a[i].qs[j] + ((w[i].qs[j] >> 4) - 8) * a[i].qs[j + 16];
    sum += static_cast<float>(s) * (f16_to_f32(w[i].d) * f16_to_f32(a[i].d));
  }
  return sum;
}

float dot_q4_1(const BlockQ4_1* w, const BlockQ8_1* a, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int s = 0;
    for (int j = 0; j < 16; ++j)
      s += (w[i].qs[j] & 0xF) * a[i].qs[j] + (w[i].qs[j] >> 4) * a[i].qs[j + 16];
    sum += static_cast<float>(s) * (f16_to_f32(w[i].d) * f16_to_f32(a[i].d)) +
           f16_to_f32(w[i].m) * f16_to_f32(a[i].s);
  }
  return sum;
}

float dot_q5_0(const BlockQ5_0* w, const BlockQ8_0* a, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    uint32_t qh;
    std::memcpy(&qh, w[i].qh, 4);
    int s = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = ((w[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16;
      const int hi = ((w[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
      s += lo * a[i].qs[j] + hi * a[i].qs[j + 16];
    }
    sum += static_cast<float>(s) * (f16_to_f32(w[i].d) * f16_to_f32(a[i].d));
  }
  return sum;
}

float dot_q8_0(const BlockQ8_0* w, const BlockQ8_0* a, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int s = 0;
    for (int j = 0; j < kQK; ++j) s += w[i].qs[j] * a[i].qs[j];
    sum += static_cast<float>(s) * (f16_to_f32(w[i].d) * f16_to_f32(a[i].d));
  }
  return sum;
}

// Q4_K / Q5_K: d * sum_j sc[j] * dot_j - dmin * sum_j m[j] * (sum of the activation over j).
template <typename Block>
float dot_k_affine(const Block* w, const BlockQ8_K* a, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t sc[8], m[8];
    unpack_scales_k4(w[i].scales, sc, m);
    int isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
      const int c = j / 2, shift = (j & 1) * 4;
      int s = 0;
      for (int l = 0; l < 32; ++l) {
        int v = (w[i].qs[32 * c + l] >> shift) & 0xF;
        if constexpr (std::is_same_v<Block, BlockQ5_K>) v |= ((w[i].qh[l] >> j) & 1) << 4;
        s += v * a[i].qs[32 * j + l];
      }
      isum += sc[j] * s;
      msum += m[j] * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
    }
    sum += f16_to_f32(w[i].d) * a[i].d * static_cast<float>(isum) -
           f16_to_f32(w[i].dmin) * a[i].d * static_cast<float>(msum);
  }
  return sum;
}

float dot_q6_k(const BlockQ6_K* w, const BlockQ8_K* a, int64_t nb) {
  float sum = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += (q6k_value(w[i], 16 * j + l) - 32) * a[i].qs[16 * j + l];
      isum += w[i].scales[j] * s;
    }
    sum += f16_to_f32(w[i].d) * a[i].d * static_cast<float>(isum);
  }
  return sum;
}

template <typename ToFloat>
float dot_float(const uint8_t* w, size_t elem_bytes, const float* x, int64_t n, ToFloat to_f32) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(to_f32(w + i * elem_bytes)) * x[i];
  return static_cast<float>(sum);
}

float load_f32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}
uint16_t load_u16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

}  // namespace

void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n) {
  const int64_t nb = blocks_of(t, n);
  const auto* p = static_cast<const uint8_t*>(src);
  switch (t) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load_u16(p + 2 * i));
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(p + 2 * i));
      return;
    case GgmlType::Q4_0: return dequant_q4_0(static_cast<const BlockQ4_0*>(src), dst, nb);
    case GgmlType::Q4_1: return dequant_q4_1(static_cast<const BlockQ4_1*>(src), dst, nb);
    case GgmlType::Q5_0: return dequant_q5_0(static_cast<const BlockQ5_0*>(src), dst, nb);
    case GgmlType::Q8_0: return dequant_q8_0(static_cast<const BlockQ8_0*>(src), dst, nb);
    case GgmlType::Q8_1: return dequant_q8_1(static_cast<const BlockQ8_1*>(src), dst, nb);
    case GgmlType::Q4_K: return dequant_q4_k(static_cast<const BlockQ4_K*>(src), dst, nb);
    case GgmlType::Q5_K: return dequant_q5_k(static_cast<const BlockQ5_K*>(src), dst, nb);
    case GgmlType::Q6_K: return dequant_q6_k(static_cast<const BlockQ6_K*>(src), dst, nb);
    case GgmlType::Q8_K: return dequant_q8_k(static_cast<const BlockQ8_K*>(src), dst, nb);
    default: break;
  }
  fail("dequantize: type {} is not supported", type_name(static_cast<uint32_t>(t)));
}

void quantize_row(GgmlType t, const float* x, void* dst, int64_t n) {
  const int64_t nb = blocks_of(t, n);
  auto* p = static_cast<uint8_t*>(dst);
  switch (t) {
    case GgmlType::F32: std::memcpy(dst, x, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_f16(x[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = f32_to_bf16(x[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    case GgmlType::Q4_0: return quant_q4_0(x, static_cast<BlockQ4_0*>(dst), nb);
    case GgmlType::Q4_1: return quant_q4_1(x, static_cast<BlockQ4_1*>(dst), nb);
    case GgmlType::Q5_0: return quant_q5_0(x, static_cast<BlockQ5_0*>(dst), nb);
    case GgmlType::Q8_0: return quant_q8_0(x, static_cast<BlockQ8_0*>(dst), nb);
    case GgmlType::Q8_1: return quant_q8_1(x, static_cast<BlockQ8_1*>(dst), nb);
    case GgmlType::Q4_K: return quant_q4_k(x, static_cast<BlockQ4_K*>(dst), nb);
    case GgmlType::Q5_K: return quant_q5_k(x, static_cast<BlockQ5_K*>(dst), nb);
    case GgmlType::Q6_K: return quant_q6_k(x, static_cast<BlockQ6_K*>(dst), nb);
    case GgmlType::Q8_K: return quant_q8_k(x, static_cast<BlockQ8_K*>(dst), nb);
    default: break;
  }
  fail("quantize: type {} is not supported", type_name(static_cast<uint32_t>(t)));
}

void quantize_activation(GgmlType weight, const float* x, void* dst, int64_t n) {
  quantize_row(activation_type(weight), x, dst, n);
}

float dot(GgmlType weight, const void* w_row, const void* x_act, int64_t n) {
  const int64_t nb = blocks_of(weight, n);
  const auto* w = static_cast<const uint8_t*>(w_row);
  const auto* x = static_cast<const float*>(x_act);
  switch (weight) {
    case GgmlType::F32: return dot_float(w, 4, x, n, load_f32);
    case GgmlType::F16:
      return dot_float(w, 2, x, n, [](const uint8_t* p) { return f16_to_f32(load_u16(p)); });
    case GgmlType::BF16:
      return dot_float(w, 2, x, n, [](const uint8_t* p) { return bf16_to_f32(load_u16(p)); });
    case GgmlType::Q4_0:
      return dot_q4_0(static_cast<const BlockQ4_0*>(w_row), static_cast<const BlockQ8_0*>(x_act), nb);
    case GgmlType::Q4_1:
      return dot_q4_1(static_cast<const BlockQ4_1*>(w_row), static_cast<const BlockQ8_1*>(x_act), nb);
    case GgmlType::Q5_0:
      return dot_q5_0(static_cast<const BlockQ5_0*>(w_row), static_cast<const BlockQ8_0*>(x_act), nb);
    case GgmlType::Q8_0:
      return dot_q8_0(static_cast<const BlockQ8_0*>(w_row), static_cast<const BlockQ8_0*>(x_act), nb);
    case GgmlType::Q4_K:
      return dot_k_affine(static_cast<const BlockQ4_K*>(w_row), static_cast<const BlockQ8_K*>(x_act), nb);
    case GgmlType::Q5_K:
      return dot_k_affine(static_cast<const BlockQ5_K*>(w_row), static_cast<const BlockQ8_K*>(x_act), nb);
    case GgmlType::Q6_K:
      return dot_q6_k(static_cast<const BlockQ6_K*>(w_row), static_cast<const BlockQ8_K*>(x_act), nb);
    default: break;
  }
  fail("dot: weights of type {} are not supported", type_name(static_cast<uint32_t>(weight)));
}

}  // namespace kvc::quant::ref
