#include "gguf/gguf_value.h"

#include <cstring>
#include <limits>

#include "base/error.h"

namespace kvc {

namespace {

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // the file gives no alignment guarantee for metadata
  return v;
}

// Integer of type t at p, as int64 (u64 above INT64_MAX throws).
int64_t load_int(GgufType t, const uint8_t* p) {
  switch (t) {
    case GgufType::UINT8: return load<uint8_t>(p);
    case GgufType::INT8: return load<int8_t>(p);
    case GgufType::UINT16: return load<uint16_t>(p);
    case GgufType::INT16: return load<int16_t>(p);
    case GgufType::UINT32: return load<uint32_t>(p);
    case GgufType::INT32: return load<int32_t>(p);
    case GgufType::INT64: return load<int64_t>(p);
    case GgufType::UINT64: {
      const uint64_t v = load<uint64_t>(p);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("u64 value {} does not fit in int64", v);
      return static_cast<int64_t>(v);
    }
    default: fail("value of type {} is not an integer", gguf_type_name(t));
  }
}

double load_float(GgufType t, const uint8_t* p) {
  switch (t) {
    case GgufType::FLOAT32: return load<float>(p);
    case GgufType::FLOAT64: return load<double>(p);
    case GgufType::UINT64: return static_cast<double>(load<uint64_t>(p));
    default:
      if (gguf_is_int(t)) return static_cast<double>(load_int(t, p));
      fail("value of type {} is not a number", gguf_type_name(t));
  }
}

void append_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
}

std::string display_scalar(GgufType t, const uint8_t* p) {
  if (t == GgufType::BOOL) return p[0] ? "true" : "false";
  if (t == GgufType::FLOAT32) return fmt::format("{}", load<float>(p));
  if (t == GgufType::FLOAT64) return fmt::format("{}", load<double>(p));
  if (t == GgufType::UINT64) return fmt::format("{}", load<uint64_t>(p));
  return fmt::format("{}", load_int(t, p));
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return "u8";
    case GgufType::INT8: return "i8";
    case GgufType::UINT16: return "u16";
    case GgufType::INT16: return "i16";
    case GgufType::UINT32: return "u32";
    case GgufType::INT32: return "i32";
    case GgufType::FLOAT32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::UINT64: return "u64";
    case GgufType::INT64: return "i64";
    case GgufType::FLOAT64: return "f64";
  }
  return "unknown";
}

size_t gguf_type_size(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL: return 1;
    case GgufType::UINT16:
    case GgufType::INT16: return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32: return 4;
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64: return 8;
    case GgufType::STRING:
    case GgufType::ARRAY: return 0;
  }
  return 0;
}

bool gguf_is_int(GgufType t) {
  switch (t) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::UINT16:
    case GgufType::INT16:
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::UINT64:
    case GgufType::INT64: return true;
    default: return false;
  }
}

bool gguf_is_float(GgufType t) { return t == GgufType::FLOAT32 || t == GgufType::FLOAT64; }

int64_t GgufValue::as_int() const {
  if (!is_int()) fail("expected an integer, got {}", gguf_type_name(type));
  return load_int(type, raw);
}

double GgufValue::as_float() const {
  if (!is_int() && !is_float()) fail("expected a number, got {}", gguf_type_name(type));
  return load_float(type, raw);
}

bool GgufValue::as_bool() const {
  if (type != GgufType::BOOL) fail("expected a bool, got {}", gguf_type_name(type));
  return raw[0] != 0;
}

std::string_view GgufValue::as_string() const {
  if (type != GgufType::STRING) fail("expected a string, got {}", gguf_type_name(type));
  return str;
}

size_t GgufValue::array_size() const {
  if (!is_array()) fail("expected an array, got {}", gguf_type_name(type));
  return static_cast<size_t>(count);
}

std::string_view GgufValue::string_at(size_t i) const {
  if (!is_array() || elem_type != GgufType::STRING) fail("expected an array of strings");
  if (i >= count) fail("array index {} out of range ({} elements)", i, count);
  return strings[i];
}

int64_t GgufValue::int_at(size_t i) const {
  if (!is_array() || !gguf_is_int(elem_type)) fail("expected an array of integers");
  if (i >= count) fail("array index {} out of range ({} elements)", i, count);
  return load_int(elem_type, raw + i * gguf_type_size(elem_type));
}

double GgufValue::float_at(size_t i) const {
  if (!is_array() || !(gguf_is_int(elem_type) || gguf_is_float(elem_type)))
    fail("expected an array of numbers");
  if (i >= count) fail("array index {} out of range ({} elements)", i, count);
  return load_float(elem_type, raw + i * gguf_type_size(elem_type));
}

bool GgufValue::bool_at(size_t i) const {
  if (!is_array() || elem_type != GgufType::BOOL) fail("expected an array of bools");
  if (i >= count) fail("array index {} out of range ({} elements)", i, count);
  return raw[i] != 0;
}

std::string GgufValue::to_display(size_t max_array) const {
  std::string out;
  if (type == GgufType::STRING) {
    append_escaped(out, str);
    return out;
  }
  if (!is_array()) return display_scalar(type, raw);
  out += '[';
  const size_t shown = count < max_array ? static_cast<size_t>(count) : max_array;
  for (size_t i = 0; i < shown; ++i) {
    if (i) out += ", ";
    if (elem_type == GgufType::STRING) {
      out += '"';
      append_escaped(out, strings[i]);
      out += '"';
    } else {
      out += display_scalar(elem_type, raw + i * gguf_type_size(elem_type));
    }
  }
  if (shown < count) out += fmt::format(", ... ({} {} total)", count, gguf_type_name(elem_type));
  out += ']';
  return out;
}

}  // namespace kvc
