#include "server/api_error.h"

namespace kvc::server {

nlohmann::json ApiError::to_json() const {
  nlohmann::json e = {{"message", message},
                      {"type", type},
                      {"code", status},
                      {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)}};
  for (const auto& [key, value] : extra.items()) e[key] = value;
  return {{"error", e}};
}

std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace kvc::server
