// libFuzzer target for the GGUF reader: any bytes either parse or throw kvc::Error, and
// everything a parsed file hands out lies inside the input (AddressSanitizer checks the reads).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "base/error.h"
#include "gguf/gguf_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<kvc::GgufFile> f;
  try {
    f = kvc::GgufFile::parse(data, size);
  } catch (const kvc::Error&) {
    return 0;
  }
  volatile uint8_t sink = 0;
  for (const auto& [key, v] : f->metadata()) {
    if (f->find(key) != &v) std::abort();  // keys are unique and found
    (void)v.to_display(4);
    if (v.is_array() && v.array_size() > 0) {
      const size_t last = v.array_size() - 1;
      try {
        if (v.elem_type == kvc::GgufType::STRING) {
          const std::string_view s = v.string_at(last);
          if (!s.empty()) sink = sink + static_cast<uint8_t>(s.back());
        } else {
          (void)v.float_at(last);
        }
      } catch (const kvc::Error&) {  // bool arrays are not numbers
      }
    }
  }
  for (const kvc::GgufTensor& t : f->tensors()) {
    if (f->tensor(t.name) != &t) std::abort();
    if (t.data < data || t.data + t.n_bytes > data + size) std::abort();
    sink = sink + t.data[0] + t.data[t.n_bytes - 1];
  }
  (void)sink;
  return 0;
}
