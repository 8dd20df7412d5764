// The GGUF container (v2 and v3, little-endian): header, metadata, tensor table and the data
// section, read in place from a memory mapping. Every count, size and offset is checked against
// the file before it is used, so a hostile or truncated file gives a one-line kvc::Error and
// never a crash or a huge allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gguf/gguf_value.h"
#include "quant/ggml_type.h"

namespace kvc {

class MappedFile;

struct GgufTensor {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<int64_t> dims;  // dims[0] = row length (ggml ne0); all > 0, at most 4
  int64_t n_elements = 0;
  size_t n_bytes = 0;
  uint64_t offset = 0;  // relative to the data section
  const uint8_t* data = nullptr;

  int64_t rows() const { return n_elements / dims[0]; }
};

class GgufFile {
 public:
  // Maps and parses `path`; throws kvc::Error "PATH: reason".
  static std::unique_ptr<GgufFile> open(const std::string& path);
  // Parses bytes the caller owns and keeps alive as long as the result (fuzzer, tests).
  static std::unique_ptr<GgufFile> parse(const uint8_t* data, size_t size);
  ~GgufFile();

  uint32_t version() const { return version_; }
  size_t size() const { return size_; }
  size_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }
  const uint8_t* bytes() const { return data_; }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;

  // Typed getters. get_* throw kvc::Error naming the key when it is missing; both get_* and
  // find_* throw when the key is present with the wrong type (a broken file, not a default).
  int64_t get_int(std::string_view key) const;
  std::optional<int64_t> find_int(std::string_view key) const;
  double get_float(std::string_view key) const;  // float or integer values
  std::optional<double> find_float(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  std::optional<std::string> find_string(std::string_view key) const;
  std::optional<bool> find_bool(std::string_view key) const;
  // An array value (any element type); throws when missing or not an array.
  const GgufValue& get_array(std::string_view key) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* tensor(std::string_view name) const;  // null if absent
  const GgufTensor& require_tensor(std::string_view name) const;  // throws "missing tensor 'x'"

 private:
  GgufFile() = default;
  void parse_all();

  std::unique_ptr<MappedFile> mapping_;  // null when parsing borrowed bytes
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<GgufTensor> tensors_;
  // Keys are views into the file's bytes, which never move.
  std::unordered_map<std::string_view, size_t> key_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace kvc
