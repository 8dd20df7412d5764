// Errors that reach the user: a bad file, a bad flag, a bad request.
// Thrown at the boundary, caught in main() and printed as one line.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace kvc {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace kvc
