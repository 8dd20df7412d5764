// One GGUF metadata value. Values are views into the file's bytes (the mapping outlives them):
// a 262,144-entry vocabulary costs one vector of string_views, nothing is copied or decoded
// until asked for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvc {

enum class GgufType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

// "u32", "string", ... ("unknown" outside the enum).
const char* gguf_type_name(GgufType t);
// Bytes of one value of a fixed-size type; 0 for STRING, ARRAY and unknown types.
size_t gguf_type_size(GgufType t);
bool gguf_is_int(GgufType t);
bool gguf_is_float(GgufType t);

struct GgufValue {
  GgufType type = GgufType::UINT8;
  GgufType elem_type = GgufType::UINT8;  // arrays only
  // Fixed-size scalars and numeric/bool arrays: the little-endian bytes in the file.
  const uint8_t* raw = nullptr;
  uint64_t count = 0;                     // arrays only: number of elements
  std::string_view str;                   // STRING
  std::vector<std::string_view> strings;  // arrays of STRING

  bool is_int() const { return gguf_is_int(type); }
  bool is_float() const { return gguf_is_float(type); }
  bool is_array() const { return type == GgufType::ARRAY; }

  // Scalars. Each throws kvc::Error on a value of another kind.
  int64_t as_int() const;  // any integer type; a u64 above INT64_MAX throws
  double as_float() const;  // float or integer types
  bool as_bool() const;
  std::string_view as_string() const;

  // Arrays: element i of an array of the matching kind; throws on a wrong kind or index.
  size_t array_size() const;
  std::string_view string_at(size_t i) const;
  int64_t int_at(size_t i) const;
  double float_at(size_t i) const;  // float or integer arrays
  bool bool_at(size_t i) const;

  // One line for `kvcascade info`: arrays show their first max_array elements and the count.
  std::string to_display(size_t max_array = 8) const;
};

}  // namespace kvc
