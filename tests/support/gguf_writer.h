// Builds small GGUF files for tests: synthetic models, round trips and deliberately broken files.
// Entries are written in the order they are added. Nothing is validated, so a test can write
// whatever a hostile file might hold; the reader is what gets checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gguf/gguf_value.h"
#include "quant/ggml_type.h"

namespace kvc::test {

class GgufWriter {
 public:
  // Version 2 and 3 share one little-endian layout; anything else is written as given.
  explicit GgufWriter(uint32_t version = 3) : version_(version) {}

  void add_u8(const std::string& key, uint8_t v);
  void add_i8(const std::string& key, int8_t v);
  void add_u16(const std::string& key, uint16_t v);
  void add_i16(const std::string& key, int16_t v);
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_u64(const std::string& key, uint64_t v);
  void add_i64(const std::string& key, int64_t v);
  void add_f32(const std::string& key, float v);
  void add_f64(const std::string& key, double v);
  void add_bool(const std::string& key, bool v);
  void add_string(const std::string& key, const std::string& v);

  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  // Any integer element type; each value is truncated to it.
  void add_int_array(const std::string& key, GgufType elem, const std::vector<int64_t>& v);
  void add_i32_array(const std::string& key, const std::vector<int32_t>& v);
  void add_f32_array(const std::string& key, const std::vector<float>& v);
  void add_f64_array(const std::string& key, const std::vector<double>& v);
  void add_bool_array(const std::string& key, const std::vector<bool>& v);
  // Any type number followed by any bytes: unknown types, arrays of arrays, lying lengths.
  void add_raw(const std::string& key, uint32_t type, const std::vector<uint8_t>& value_bytes);

  // Writes general.alignment (u32) here and lays the data section out with it.
  void set_alignment(uint32_t alignment);

  // A tensor with its bytes as given (their size is not checked against dims and type).
  void add_tensor(const std::string& name, GgmlType type, const std::vector<int64_t>& dims,
                  const std::vector<uint8_t>& bytes);
  // A tensor from floats, row by row (dims[0] per row), quantized to `target` with the scalar
  // reference quantizer (F32 is copied as is).
  void add_tensor_f32(const std::string& name, const std::vector<int64_t>& dims,
                      const std::vector<float>& x, GgmlType target = GgmlType::F32);
  // Deliberate breakage: record `offset` (relative to the data section) for the last tensor
  // added instead of where its bytes really go.
  void override_last_offset(uint64_t offset);

  std::vector<uint8_t> bytes() const;
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    uint32_t type;
    std::vector<int64_t> dims;
    std::vector<uint8_t> bytes;
    std::optional<uint64_t> offset_override;
  };
  void add_kv(const std::string& key, GgufType type, const void* value, size_t n);

  uint32_t version_;
  uint32_t alignment_ = 32;
  uint64_t n_kv_ = 0;
  std::vector<uint8_t> kv_bytes_;  // encoded metadata entries
  std::vector<Tensor> tensors_;
};

}  // namespace kvc::test
