// Which activation format each weight type is multiplied with (ggml's vec_dot_type, except that
// float weights take float activations).
#include "base/error.h"
#include "quant/quant.h"

namespace kvc::quant {

GgmlType activation_type(GgmlType weight) {
  switch (weight) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16: return GgmlType::F32;
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0: return GgmlType::Q8_0;
    case GgmlType::Q4_1:
    case GgmlType::Q5_1: return GgmlType::Q8_1;
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K: return GgmlType::Q8_K;
    default: break;
  }
  fail("no activation format for weights of type {}", type_name(static_cast<uint32_t>(weight)));
}

}  // namespace kvc::quant
