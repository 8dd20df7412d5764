// Scalar conversions between float and the two 16-bit float formats of GGUF (IEEE half, bfloat16).
// Portable bit manipulation: the reference must not depend on the CPU having F16C.
#pragma once

#include <cstdint>
#include <cstring>

namespace kvc::quant {

inline float bits_to_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint32_t f32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ff;
  if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (man << 13));  // inf / nan
  if (exp != 0) return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
  // Subnormal half (or zero): man * 2^-24 is exact in float.
  const float v = static_cast<float>(man) * (1.0f / 16777216.0f);
  return sign ? -v : v;
}

// Round to nearest even, like F16C's vcvtps2ph with the default rounding mode.
inline uint16_t f32_to_f16(float f) {
  const uint32_t u = f32_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) return sign | 0x7c00 | (a > 0x7f800000u ? 0x200 : 0);  // inf / nan
  if (a >= 0x477ff000u) return sign | 0x7c00;  // rounds past the largest half: inf
  if (a < 0x38800000u) {
    // Result is subnormal (or zero): scale so the half's LSB is the float's unit, round there.
    const float v = bits_to_f32(a) * 16777216.0f;  // exact: a power-of-two scaling
    // Adding 2^23 forces rounding at the integer position with ties to even.
    const uint32_t r = f32_to_bits(v + 8388608.0f) - 0x4b000000u;
    return sign | static_cast<uint16_t>(r);
  }
  const uint32_t mant_odd = (a >> 13) & 1;
  const uint32_t r = a + 0xfff + mant_odd;  // round to nearest even at bit 13
  return sign | static_cast<uint16_t>((r - (112u << 23)) >> 13);
}

inline float bf16_to_f32(uint16_t h) { return bits_to_f32(static_cast<uint32_t>(h) << 16); }

inline uint16_t f32_to_bf16(float f) {
  const uint32_t u = f32_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet nan
  return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

}  // namespace kvc::quant
