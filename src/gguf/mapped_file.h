// A read-only memory mapping of a whole file: the weights are read in place, never copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace kvc {

class MappedFile {
 public:
  // Maps `path` read-only; throws kvc::Error "PATH: reason".
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace kvc
