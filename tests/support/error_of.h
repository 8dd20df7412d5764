// For tests of failure paths: what a kvc::Error thrown by a call says.
#pragma once

#include <string>

#include "base/error.h"

namespace kvc::test {

// The message of the kvc::Error that `f` throws, or "(no error)".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace kvc::test
