#include "support/gguf_writer.h"

#include <cstring>
#include <fstream>
#include <stdexcept>

#include "quant/quant.h"
#include "quant/reference.h"

namespace kvc::test {

namespace {

void put(std::vector<uint8_t>& out, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  put(out, &v, sizeof(T));
}

void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  put(out, s.data(), s.size());
}

void pad_to(std::vector<uint8_t>& out, size_t alignment) {
  while (out.size() % alignment != 0) out.push_back(0);
}

}  // namespace

void GgufWriter::add_kv(const std::string& key, GgufType type, const void* value, size_t n) {
  put_string(kv_bytes_, key);
  put<uint32_t>(kv_bytes_, static_cast<uint32_t>(type));
  put(kv_bytes_, value, n);
  ++n_kv_;
}

void GgufWriter::add_u8(const std::string& k, uint8_t v) { add_kv(k, GgufType::UINT8, &v, 1); }
void GgufWriter::add_i8(const std::string& k, int8_t v) { add_kv(k, GgufType::INT8, &v, 1); }
void GgufWriter::add_u16(const std::string& k, uint16_t v) { add_kv(k, GgufType::UINT16, &v, 2); }
void GgufWriter::add_i16(const std::string& k, int16_t v) { add_kv(k, GgufType::INT16, &v, 2); }
void GgufWriter::add_u32(const std::string& k, uint32_t v) { add_kv(k, GgufType::UINT32, &v, 4); }
void GgufWriter::add_i32(const std::string& k, int32_t v) { add_kv(k, GgufType::INT32, &v, 4); }
void GgufWriter::add_u64(const std::string& k, uint64_t v) { add_kv(k, GgufType::UINT64, &v, 8); }
void GgufWriter::add_i64(const std::string& k, int64_t v) { add_kv(k, GgufType::INT64, &v, 8); }
void GgufWriter::add_f32(const std::string& k, float v) { add_kv(k, GgufType::FLOAT32, &v, 4); }
void GgufWriter::add_f64(const std::string& k, double v) { add_kv(k, GgufType::FLOAT64, &v, 8); }

void GgufWriter::add_bool(const std::string& k, bool v) {
  const uint8_t b = v ? 1 : 0;
  add_kv(k, GgufType::BOOL, &b, 1);
}

void GgufWriter::add_string(const std::string& k, const std::string& v) {
  std::vector<uint8_t> value;
  put_string(value, v);
  add_kv(k, GgufType::STRING, value.data(), value.size());
}

void GgufWriter::add_string_array(const std::string& k, const std::vector<std::string>& v) {
  std::vector<uint8_t> value;
  put<uint32_t>(value, static_cast<uint32_t>(GgufType::STRING));
  put<uint64_t>(value, v.size());
  for (const std::string& s : v) put_string(value, s);
  add_kv(k, GgufType::ARRAY, value.data(), value.size());
}

void GgufWriter::add_int_array(const std::string& k, GgufType elem,
                               const std::vector<int64_t>& v) {
  const size_t size = gguf_type_size(elem);
  if (!gguf_is_int(elem)) throw std::invalid_argument("add_int_array: not an integer type");
  std::vector<uint8_t> value;
  put<uint32_t>(value, static_cast<uint32_t>(elem));
  put<uint64_t>(value, v.size());
  for (int64_t x : v) put(value, &x, size);  // little-endian: the low bytes come first
  add_kv(k, GgufType::ARRAY, value.data(), value.size());
}

void GgufWriter::add_i32_array(const std::string& k, const std::vector<int32_t>& v) {
  add_int_array(k, GgufType::INT32, std::vector<int64_t>(v.begin(), v.end()));
}

void GgufWriter::add_f32_array(const std::string& k, const std::vector<float>& v) {
  std::vector<uint8_t> value;
  put<uint32_t>(value, static_cast<uint32_t>(GgufType::FLOAT32));
  put<uint64_t>(value, v.size());
  put(value, v.data(), v.size() * sizeof(float));
  add_kv(k, GgufType::ARRAY, value.data(), value.size());
}

void GgufWriter::add_f64_array(const std::string& k, const std::vector<double>& v) {
  std::vector<uint8_t> value;
  put<uint32_t>(value, static_cast<uint32_t>(GgufType::FLOAT64));
  put<uint64_t>(value, v.size());
  put(value, v.data(), v.size() * sizeof(double));
  add_kv(k, GgufType::ARRAY, value.data(), value.size());
}

void GgufWriter::add_bool_array(const std::string& k, const std::vector<bool>& v) {
  std::vector<uint8_t> value;
  put<uint32_t>(value, static_cast<uint32_t>(GgufType::BOOL));
  put<uint64_t>(value, v.size());
  for (bool b : v) value.push_back(b ? 1 : 0);
  add_kv(k, GgufType::ARRAY, value.data(), value.size());
}

void GgufWriter::add_raw(const std::string& k, uint32_t type,
                         const std::vector<uint8_t>& value_bytes) {
  put_string(kv_bytes_, k);
  put<uint32_t>(kv_bytes_, type);
  put(kv_bytes_, value_bytes.data(), value_bytes.size());
  ++n_kv_;
}

void GgufWriter::set_alignment(uint32_t alignment) {
  add_u32("general.alignment", alignment);
  alignment_ = alignment;
}

void GgufWriter::add_tensor(const std::string& name, GgmlType type,
                            const std::vector<int64_t>& dims, const std::vector<uint8_t>& bytes) {
  tensors_.push_back({name, static_cast<uint32_t>(type), dims, bytes, std::nullopt});
}

void GgufWriter::add_tensor_f32(const std::string& name, const std::vector<int64_t>& dims,
                                const std::vector<float>& x, GgmlType target) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  if (dims.empty() || static_cast<int64_t>(x.size()) != n)
    throw std::invalid_argument("add_tensor_f32: " + name + ": values do not match dims");
  const int64_t row_len = dims[0];
  const size_t row_bytes = quant::row_bytes(target, row_len);
  std::vector<uint8_t> bytes(row_bytes * static_cast<size_t>(n / row_len));
  for (int64_t r = 0; r < n / row_len; ++r) {
    const float* src = x.data() + r * row_len;
    uint8_t* dst = bytes.data() + r * row_bytes;
    if (target == GgmlType::F32) {
      std::memcpy(dst, src, row_bytes);
    } else {
      quant::ref::quantize_row(target, src, dst, row_len);
    }
  }
  add_tensor(name, target, dims, bytes);
}

void GgufWriter::override_last_offset(uint64_t offset) {
  if (tensors_.empty()) throw std::logic_error("override_last_offset: no tensor yet");
  tensors_.back().offset_override = offset;
}

std::vector<uint8_t> GgufWriter::bytes() const {
  const size_t align = alignment_ == 0 ? 1 : alignment_;
  // Where each tensor's bytes go in the data section: in order, each start aligned.
  std::vector<uint64_t> offsets;
  uint64_t end = 0;
  for (const Tensor& t : tensors_) {
    end = (end + align - 1) / align * align;
    offsets.push_back(end);
    end += t.bytes.size();
  }

  std::vector<uint8_t> out;
  put(out, "GGUF", 4);
  put<uint32_t>(out, version_);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, n_kv_);
  put(out, kv_bytes_.data(), kv_bytes_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Tensor& t = tensors_[i];
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) put<int64_t>(out, d);
    put<uint32_t>(out, t.type);
    put<uint64_t>(out, t.offset_override.value_or(offsets[i]));
  }
  pad_to(out, align);
  const size_t data_start = out.size();
  for (size_t i = 0; i < tensors_.size(); ++i) {
    out.resize(data_start + offsets[i], 0);
    put(out, tensors_[i].bytes.data(), tensors_[i].bytes.size());
  }
  pad_to(out, align);
  return out;
}

void GgufWriter::write(const std::string& path) const {
  const std::vector<uint8_t> b = bytes();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

}  // namespace kvc::test
