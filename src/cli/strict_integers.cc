#include "cli/strict_integers.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <string>

#include <fmt/format.h>

namespace kvc::cli {

namespace {

template <typename T>
std::optional<T> parse_whole(std::string_view text) {
  T value{};
  const char* end = text.data() + text.size();
  // from_chars reads base 10 only, with no '+', no spaces and no prefixes; it reports overflow.
  const auto [stop, error] = std::from_chars(text.data(), end, value, 10);
  if (text.empty() || error != std::errc() || stop != end) return std::nullopt;
  return value;
}

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// What CLI11 calls the option's value type: "INT" for signed integers, "UINT" for unsigned ones,
// followed by ":..." when a validator describes itself.
bool type_is(const CLI::Option& option, const std::string& name) {
  const std::string type = option.get_type_name();
  return type.compare(0, name.size(), name) == 0 &&
         (type.size() == name.size() || type[name.size()] == ':');
}

template <typename T>
CLI::Validator decimal(const char* what) {
  return CLI::Validator(
      [what](std::string& value) -> std::string {
        const std::optional<T> parsed = parse_whole<T>(value);
        if (!parsed && all_digits(std::string_view(value).substr(value.rfind('-', 0) == 0)))
          return fmt::format("{} is out of range ({}..{})", value, std::numeric_limits<T>::min(),
                             std::numeric_limits<T>::max());
        if (!parsed) return fmt::format("'{}' is not {} decimal integer", value, what);
        value = std::to_string(*parsed);  // no leading zeros left for CLI11 to read as octal
        return "";
      },
      "");
}

}  // namespace

std::optional<int64_t> parse_decimal(std::string_view text) { return parse_whole<int64_t>(text); }

std::optional<uint64_t> parse_unsigned_decimal(std::string_view text) {
  return parse_whole<uint64_t>(text);
}

void make_integer_options_strict(CLI::App& app) {
  for (CLI::Option* option : app.get_options()) {
    if (type_is(*option, "INT")) option->transform(decimal<int64_t>("a"));
    else if (type_is(*option, "UINT")) option->transform(decimal<uint64_t>("a non-negative"));
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    make_integer_options_strict(*sub);
}

}  // namespace kvc::cli
