#include "server/api_keys.h"

#include <fmt/format.h>

#include "server/transcript_hash.h"

namespace kvc::server {

bool constant_time_equal(const std::string& a, const std::string& b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::optional<std::string> ApiKeys::owner(const std::string& authorization,
                                          const std::string& x_api_key) const {
  if (keys_.empty()) return std::string();
  std::string given = x_api_key;
  if (given.empty()) {
    given = authorization;
    const std::string bearer = "Bearer ";
    if (given.compare(0, bearer.size(), bearer) == 0) given.erase(0, bearer.size());
  }
  if (given.empty()) return std::nullopt;
  bool found = false;
  for (const std::string& key : keys_) found |= constant_time_equal(given, key);  // no early exit
  if (!found) return std::nullopt;
  return fmt::format("{:016x}", chain_hash(kEmptyTranscript, {"api-key", given}));
}

}  // namespace kvc::server
