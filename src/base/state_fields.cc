#include "base/state_fields.h"

#include <cstring>

#include "base/error.h"

namespace kvc {

namespace {

// Field names are short identifiers; a longer one means a corrupt length.
constexpr size_t kMaxName = 255;

template <typename T>
void append(std::string& out, T x) {
  out.append(reinterpret_cast<const char*>(&x), sizeof x);
}

}  // namespace

size_t StateFields::checked_length(std::string_view name, uint64_t n, size_t max_n) {
  if (n > max_n) fail("field '{}' holds {} elements, more than the {} it may", name, n, max_n);
  return static_cast<size_t>(n);
}

void StateFields::expect(bool ok, std::string_view field) const {
  if (!ok) fail("saved state: field '{}' holds a value out of range (a corrupt file)", field);
}

void StateWriter::bytes(std::string_view name, void* data, size_t n) {
  append(out_, static_cast<uint8_t>(name.size()));
  out_.append(name);
  append(out_, static_cast<uint64_t>(n));
  if (n) out_.append(static_cast<const char*>(data), n);
}

void StateReader::bytes(std::string_view name, void* data, size_t n) {
  const auto take = [&](size_t k) {
    if (in_.size() - at_ < k)
      fail("{}: ends inside field '{}' (truncated or not a session file)", what_, name);
    const char* p = in_.data() + at_;
    at_ += k;
    return p;
  };
  const auto name_len = static_cast<uint8_t>(*take(1));
  const std::string_view saved(take(name_len), name_len);
  if (saved != name)
    fail("{}: holds field '{}' where '{}' belongs (another version or cache policy)", what_,
         saved.substr(0, kMaxName), name);
  uint64_t len;
  std::memcpy(&len, take(sizeof len), sizeof len);
  if (len != n)
    fail("{}: field '{}' holds {} bytes, this configuration expects {} (saved with another "
         "cache configuration)",
         what_, name, len, n);
  if (n) std::memcpy(data, take(n), n);
}

void StateReader::finish() const {
  if (at_ != in_.size())
    fail("{}: {} bytes follow the last field (another version or cache policy)", what_,
         in_.size() - at_);
}

}  // namespace kvc
