// An error a request gets back: OpenAI's shape {"error":{"message","type","code","param"}} with
// the HTTP status the openai client maps to its exception classes (400 BadRequestError, 401
// AuthenticationError, 404 NotFoundError, 413/422 ..., 503 InternalServerError). `code` is
// the status as an integer, as llama-server sends it; extra carries fields such as n_ctx.
#pragma once

#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace kvc::server {

struct ApiError {
  int status = 400;
  std::string type = "invalid_request_error";
  std::string message;
  std::string param;    // the request field at fault, "" for none
  nlohmann::json extra = nlohmann::json::object();

  nlohmann::json to_json() const;
};

// A 400 invalid_request_error naming `param`.
template <typename... Args>
[[noreturn]] void bad_request(const std::string& param, fmt::format_string<Args...> format,
                              Args&&... args) {
  throw ApiError{400, "invalid_request_error", fmt::format(format, std::forward<Args>(args)...),
                 param, nlohmann::json::object()};
}

// JSON text that never throws on bytes that are not UTF-8 (replaced by U+FFFD).
std::string dump_json(const nlohmann::json& j);

}  // namespace kvc::server
