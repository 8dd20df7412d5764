#include "gguf/gguf_file.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

#include "base/error.h"
#include "gguf/mapped_file.h"
#include "quant/quant.h"

namespace kvc {

namespace {

constexpr int kMaxDims = 4;  // ggml's GGML_MAX_DIMS
constexpr size_t kDefaultAlignment = 32;
// Smallest encodings, used to reject absurd counts before anything is allocated:
// a metadata entry is at least key length (8) + type (4) + a one-byte value;
// a tensor entry is at least name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8).
constexpr uint64_t kMinKvBytes = 13;
constexpr uint64_t kMinTensorInfoBytes = 32;

// Reads little-endian fields from the file, checking each against the bytes that remain.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  // `what` names the field for the error message (kept as a plain pointer: no formatting
  // cost on the hot path of a 262k-entry vocabulary).
  void need(uint64_t n, const char* what, std::string_view owner) const {
    if (n > left())
      fail("truncated: {}{}{} at byte {} needs {} bytes, {} left", what,
           owner.empty() ? "" : " of ", owner, pos_, n, left());
  }

  const uint8_t* take(uint64_t n, const char* what, std::string_view owner) {
    need(n, what, owner);
    const uint8_t* p = data_ + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }

  template <typename T>
  T read(const char* what, std::string_view owner = {}) {
    T v;
    std::memcpy(&v, take(sizeof(T), what, owner), sizeof(T));
    return v;
  }

  std::string_view read_string(const char* what, std::string_view owner = {}) {
    const uint64_t n = read<uint64_t>(what, owner);
    const uint8_t* p = take(n, what, owner);
    return {reinterpret_cast<const char*>(p), static_cast<size_t>(n)};
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

GgufType read_type(Cursor& c, const char* what, std::string_view key) {
  const uint32_t raw = c.read<uint32_t>(what, key);
  if (raw > static_cast<uint32_t>(GgufType::FLOAT64))
    fail("metadata key '{}' has unknown value type {}", key, raw);
  return static_cast<GgufType>(raw);
}

GgufValue read_value(Cursor& c, std::string_view key) {
  GgufValue v;
  v.type = read_type(c, "value type", key);
  if (v.type == GgufType::STRING) {
    v.str = c.read_string("string", key);
    return v;
  }
  if (v.type != GgufType::ARRAY) {
    v.raw = c.take(gguf_type_size(v.type), "value", key);
    return v;
  }
  v.elem_type = read_type(c, "array type", key);
  v.count = c.read<uint64_t>("array length", key);
  if (v.elem_type == GgufType::ARRAY) fail("metadata key '{}' is an array of arrays", key);
  if (v.elem_type == GgufType::STRING) {
    // Each string needs at least its 8-byte length: bound the count before reserving.
    if (v.count > c.left() / 8)
      fail("truncated: array '{}' claims {} strings but only {} bytes follow", key, v.count,
           c.left());
    v.strings.reserve(static_cast<size_t>(v.count));
    for (uint64_t i = 0; i < v.count; ++i) v.strings.push_back(c.read_string("string", key));
    return v;
  }
  const size_t elem = gguf_type_size(v.elem_type);
  if (v.count > c.left() / elem)
    fail("truncated: array '{}' claims {} elements of {} but only {} bytes follow", key, v.count,
         gguf_type_name(v.elem_type), c.left());
  v.raw = c.take(v.count * elem, "array", key);
  return v;
}

size_t read_alignment(const GgufValue& v) {
  if (!v.is_int()) fail("general.alignment has type {}, expected an integer", gguf_type_name(v.type));
  const int64_t a = v.as_int();
  if (a <= 0 || (a & (a - 1)) != 0) fail("general.alignment {} is not a power of two", a);
  return static_cast<size_t>(a);
}

// Reads one tensor entry after its name.
GgufTensor read_tensor_info(Cursor& c, std::string_view name) {
  GgufTensor t;
  t.name = std::string(name);
  const uint32_t n_dims = c.read<uint32_t>("dimension count", name);
  if (n_dims == 0 || n_dims > kMaxDims)
    fail("tensor '{}' has {} dimensions (1 to {} allowed)", name, n_dims, kMaxDims);
  t.dims.resize(n_dims);
  t.n_elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t raw = c.read<uint64_t>("dimension", name);
    if (raw == 0 || raw > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("tensor '{}' has dimension {} of size {}", name, d, static_cast<int64_t>(raw));
    t.dims[d] = static_cast<int64_t>(raw);
    if (__builtin_mul_overflow(t.n_elements, t.dims[d], &t.n_elements))
      fail("tensor '{}' element count overflows int64", name);
  }
  const uint32_t raw_type = c.read<uint32_t>("tensor type", name);
  t.type = static_cast<GgmlType>(raw_type);
  if (!quant::is_supported(t.type))
    fail("tensor '{}' has type {} ({}), which kvcascade does not support", name,
         quant::type_name(raw_type), raw_type);
  const quant::TypeInfo& ti = quant::info(t.type);
  if (t.dims[0] % ti.block_size != 0)
    fail("tensor '{}' has rows of {} elements, not a multiple of the {} block size {}", name,
         t.dims[0], ti.name, ti.block_size);
  const size_t row = quant::row_bytes(t.type, t.dims[0]);
  if (__builtin_mul_overflow(row, static_cast<size_t>(t.rows()), &t.n_bytes))
    fail("tensor '{}' byte size overflows", name);
  t.offset = c.read<uint64_t>("tensor offset", name);
  return t;
}

}  // namespace

GgufFile::~GgufFile() = default;

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->mapping_ = std::make_unique<MappedFile>(path);
  f->data_ = f->mapping_->data();
  f->size_ = f->mapping_->size();
  try {
    f->parse_all();
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
  return f;
}

std::unique_ptr<GgufFile> GgufFile::parse(const uint8_t* data, size_t size) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->data_ = data;
  f->size_ = size;
  f->parse_all();
  return f;
}

void GgufFile::parse_all() {
  Cursor c(data_, size_);
  if (size_ < 4 || std::memcmp(data_, "GGUF", 4) != 0) fail("not a GGUF file (bad magic)");
  c.take(4, "magic", {});
  version_ = c.read<uint32_t>("version");
  // A big-endian file stores the version byte-swapped: 3 reads as 0x03000000.
  if (version_ != 0 && (version_ & 0xffff) == 0)
    fail("big-endian GGUF files are not supported (version field {:#x})", version_);
  if (version_ < 2 || version_ > 3)
    fail("GGUF version {} is not supported (only 2 and 3)", version_);
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_kv > c.left() / kMinKvBytes)
    fail("truncated: header claims {} metadata entries but only {} bytes follow", n_kv, c.left());

  metadata_.reserve(static_cast<size_t>(n_kv));
  key_index_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string_view key = c.read_string("metadata key");
    if (!key_index_.emplace(key, metadata_.size()).second)
      fail("duplicate metadata key '{}'", key);
    metadata_.emplace_back(std::string(key), read_value(c, key));
  }
  alignment_ = kDefaultAlignment;
  if (const GgufValue* a = find("general.alignment")) alignment_ = read_alignment(*a);

  if (n_tensors > c.left() / kMinTensorInfoBytes)
    fail("truncated: header claims {} tensors but only {} bytes follow", n_tensors, c.left());
  tensors_.reserve(static_cast<size_t>(n_tensors));
  tensor_index_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    // The index keys view the name's bytes in the file, which stay put (the string may move).
    const std::string_view name = c.read_string("tensor name");
    if (!tensor_index_.emplace(name, tensors_.size()).second)
      fail("duplicate tensor name '{}'", name);
    tensors_.push_back(read_tensor_info(c, name));
  }

  // The data section starts at the next multiple of the alignment after the tensor table.
  const size_t pos = c.pos();
  const size_t pad = (alignment_ - pos % alignment_) % alignment_;
  if (tensors_.empty()) {
    data_offset_ = pad <= size_ - pos ? pos + pad : size_;
    return;
  }
  if (pad > size_ - pos)
    fail("truncated: data section would start at byte {} but the file has {} bytes",
         static_cast<uint64_t>(pos) + pad, size_);
  data_offset_ = pos + pad;
  const size_t data_size = size_ - data_offset_;

  for (GgufTensor& t : tensors_) {
    if (t.offset % alignment_ != 0)
      fail("tensor '{}' data offset {} is not a multiple of the alignment {}", t.name, t.offset,
           alignment_);
    if (t.offset > data_size || t.n_bytes > data_size - t.offset)
      fail("tensor '{}' data [{}, +{}) runs past the end of the file ({} bytes of data): "
           "truncated or corrupt",
           t.name, t.offset, t.n_bytes, data_size);
    t.data = data_ + data_offset_ + t.offset;
  }
  std::vector<size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const GgufTensor& prev = tensors_[order[i - 1]];
    const GgufTensor& cur = tensors_[order[i]];
    if (prev.offset + prev.n_bytes > cur.offset)
      fail("tensors '{}' and '{}' overlap in the data section", prev.name, cur.name);
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second].second;
}

namespace {

const GgufValue& require(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.find(key);
  if (!v) fail("missing metadata key '{}'", key);
  return *v;
}

[[noreturn]] void wrong_type(std::string_view key, const GgufValue& v, const char* expected) {
  if (v.is_array())
    fail("metadata key '{}' is an array of {}, expected {}", key, gguf_type_name(v.elem_type),
         expected);
  fail("metadata key '{}' has type {}, expected {}", key, gguf_type_name(v.type), expected);
}

int64_t int_of(std::string_view key, const GgufValue& v) {
  if (!v.is_int()) wrong_type(key, v, "an integer");
  try {
    return v.as_int();
  } catch (const Error& e) {
    fail("metadata key '{}': {}", key, e.what());
  }
}

double float_of(std::string_view key, const GgufValue& v) {
  if (!v.is_int() && !v.is_float()) wrong_type(key, v, "a number");
  return v.as_float();
}

std::string string_of(std::string_view key, const GgufValue& v) {
  if (v.type != GgufType::STRING) wrong_type(key, v, "a string");
  return std::string(v.str);
}

}  // namespace

int64_t GgufFile::get_int(std::string_view key) const { return int_of(key, require(*this, key)); }

std::optional<int64_t> GgufFile::find_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return int_of(key, *v);
}

double GgufFile::get_float(std::string_view key) const {
  return float_of(key, require(*this, key));
}

std::optional<double> GgufFile::find_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return float_of(key, *v);
}

std::string GgufFile::get_string(std::string_view key) const {
  return string_of(key, require(*this, key));
}

std::optional<std::string> GgufFile::find_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  return string_of(key, *v);
}

std::optional<bool> GgufFile::find_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::BOOL) wrong_type(key, *v, "a bool");
  return v->as_bool();
}

const GgufValue& GgufFile::get_array(std::string_view key) const {
  const GgufValue& v = require(*this, key);
  if (!v.is_array()) wrong_type(key, v, "an array");
  return v;
}

const GgufTensor* GgufFile::tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufFile::require_tensor(std::string_view name) const {
  const GgufTensor* t = tensor(name);
  if (!t) fail("missing tensor '{}'", name);
  return *t;
}

}  // namespace kvc
