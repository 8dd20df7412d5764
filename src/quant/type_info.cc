// Names and block layouts of the ggml tensor types.
#include <array>

#include "base/error.h"
#include "quant/quant.h"

namespace kvc::quant {

namespace {

struct Entry {
  uint32_t raw;
  TypeInfo info;
  bool supported;
};

// Block sizes and bytes as ggml defines them; types the engine cannot run are listed for names.
constexpr std::array<Entry, 31> kTypes = {{
    {0, {"f32", 1, 4}, true},
    {1, {"f16", 1, 2}, true},
    {2, {"q4_0", 32, 18}, true},
    {3, {"q4_1", 32, 20}, true},
    {4, {"q4_2", 0, 0}, false},
    {5, {"q4_3", 0, 0}, false},
    {6, {"q5_0", 32, 22}, true},
    {7, {"q5_1", 32, 24}, false},
    {8, {"q8_0", 32, 34}, true},
    {9, {"q8_1", 32, 36}, true},
    {10, {"q2_K", 256, 84}, false},
    {11, {"q3_K", 256, 110}, false},
    {12, {"q4_K", 256, 144}, true},
    {13, {"q5_K", 256, 176}, true},
    {14, {"q6_K", 256, 210}, true},
    {15, {"q8_K", 256, 292}, true},
    {16, {"iq2_xxs", 256, 66}, false},
    {17, {"iq2_xs", 256, 74}, false},
    {18, {"iq3_xxs", 256, 98}, false},
    {19, {"iq1_s", 256, 50}, false},
    {20, {"iq4_nl", 32, 18}, false},
    {21, {"iq3_s", 256, 110}, false},
    {22, {"iq2_s", 256, 82}, false},
    {23, {"iq4_xs", 256, 136}, false},
    {24, {"i8", 1, 1}, false},
    {25, {"i16", 1, 2}, false},
    {26, {"i32", 1, 4}, false},
    {27, {"i64", 1, 8}, false},
    {28, {"f64", 1, 8}, false},
    {29, {"iq1_m", 256, 56}, false},
    {30, {"bf16", 1, 2}, true},
}};

const Entry* find(uint32_t raw) {
  return raw < kTypes.size() ? &kTypes[raw] : nullptr;
}

}  // namespace

const char* type_name(uint32_t raw_type) {
  const Entry* e = find(raw_type);
  return e ? e->info.name : "unknown";
}

bool is_supported(GgmlType t) {
  const Entry* e = find(static_cast<uint32_t>(t));
  return e && e->supported;
}

const TypeInfo& info(GgmlType t) {
  const uint32_t raw = static_cast<uint32_t>(t);
  const Entry* e = find(raw);
  if (!e || !e->supported) fail("tensor type {} ({}) is not supported", type_name(raw), raw);
  return e->info;
}

size_t row_bytes(GgmlType t, int64_t n) {
  const TypeInfo& ti = info(t);
  if (n < 0 || n % ti.block_size != 0)
    fail("a row of {} elements is not a whole number of {} blocks ({} each)", n, ti.name,
         ti.block_size);
  return static_cast<size_t>(n / ti.block_size) * ti.block_bytes;
}

}  // namespace kvc::quant
