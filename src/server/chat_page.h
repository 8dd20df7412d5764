#pragma once

#include <string_view>

namespace kvc::server {

// The chat page served at GET / (src/server/chat_page.html), compiled in by CMake so the binary
// needs no files beside it.
std::string_view chat_page();

}  // namespace kvc::server
