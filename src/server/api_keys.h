// API keys as llama-server takes them (Authorization: Bearer KEY, or X-Api-Key: KEY), checked
// in constant time so the reply's timing tells nothing about how much of a guess was right.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kvc::server {

class ApiKeys {
 public:
  explicit ApiKeys(std::vector<std::string> keys) : keys_(std::move(keys)) {}
  bool required() const { return !keys_.empty(); }
  // The owner tag of a request's credentials: "" when no key is required, a hash of the key
  // when it is one of ours, nullopt when it is missing or wrong.
  std::optional<std::string> owner(const std::string& authorization,
                                   const std::string& x_api_key) const;

 private:
  std::vector<std::string> keys_;
};

// Equal strings, in time that depends only on the lengths of `a` and `b`.
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace kvc::server
