// Integer flags take plain decimal numbers. CLI11 alone reads "010" as octal 8, "0x10" as 16 and
// "" as 0, and clamps a value beyond 64 bits (--seed 18446744073709551615 became INT64_MAX).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <CLI/CLI.hpp>

namespace kvc::cli {

// "-12" -> -12; nullopt for anything but optional '-' and decimal digits, or out of range.
std::optional<int64_t> parse_decimal(std::string_view text);
// Digits only (no sign); nullopt out of range.
std::optional<uint64_t> parse_unsigned_decimal(std::string_view text);

// Every integer option of `app` and of its subcommands, present and future, accepts only a
// decimal number in the range of a 64-bit integer (signed or not as the option is), rewritten
// to its canonical form before CLI11 converts it; CLI11 then checks narrower types' ranges.
// Call once every option has been added.
void make_integer_options_strict(CLI::App& app);

}  // namespace kvc::cli
