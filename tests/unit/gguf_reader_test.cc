// The GGUF reader against files written by the test writer: every metadata type round trips,
// tensors land where the table says, and each kind of broken file gives its own clear error.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <future>
#include <limits>
#include <utility>

#include "base/error.h"
#include "gguf/gguf_file.h"
#include "quant/fp16.h"
#include "support/gguf_writer.h"

namespace kvc {
namespace {

using test::GgufWriter;

std::unique_ptr<GgufFile> parse(const std::vector<uint8_t>& b) {
  return GgufFile::parse(b.data(), b.size());
}

// The message of the kvc::Error that parsing throws ("" if it does not throw).
std::string parse_error(const std::vector<uint8_t>& b) {
  try {
    parse(b);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

template <typename T>
void poke(std::vector<uint8_t>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof(T));
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& x) {
  std::vector<uint8_t> b(x.size() * 4);
  std::memcpy(b.data(), x.data(), b.size());
  return b;
}

std::vector<uint8_t> f16_bytes(const std::vector<float>& x) {
  std::vector<uint8_t> b(x.size() * 2);
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t h = quant::f32_to_f16(x[i]);
    std::memcpy(b.data() + 2 * i, &h, 2);
  }
  return b;
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

// A small valid file: a few keys and two tensors.
GgufWriter small_file() {
  GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 2);
  w.add_tensor("a", GgmlType::F32, {4, 2}, f32_bytes({1, 2, 3, 4, 5, 6, 7, 8}));
  w.add_tensor("b", GgmlType::F16, {3}, f16_bytes({0.5f, -1.0f, 2.0f}));
  return w;
}

class GgufVersionTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GgufVersionTest, EveryScalarTypeRoundTrips) {
  GgufWriter w(GetParam());
  w.add_u8("u8", 250);
  w.add_i8("i8", -100);
  w.add_u16("u16", 65000);
  w.add_i16("i16", -32000);
  w.add_u32("u32", 4000000000u);
  w.add_i32("i32", -2000000000);
  w.add_u64("u64", 1ull << 40);
  w.add_i64("i64", std::numeric_limits<int64_t>::min());
  w.add_f32("f32", 0.15625f);
  w.add_f64("f64", 1e-300);
  w.add_bool("yes", true);
  w.add_bool("no", false);
  w.add_string("s", std::string("caf\xc3\xa9 \0 end", 11));
  w.add_string("empty", "");
  const auto bytes = w.bytes();
  const auto f = parse(bytes);

  EXPECT_EQ(f->version(), GetParam());
  ASSERT_EQ(f->metadata().size(), 14u);
  EXPECT_EQ(f->metadata()[0].first, "u8");
  EXPECT_EQ(f->metadata()[13].first, "empty");
  EXPECT_EQ(f->get_int("u8"), 250);
  EXPECT_EQ(f->get_int("i8"), -100);
  EXPECT_EQ(f->get_int("u16"), 65000);
  EXPECT_EQ(f->get_int("i16"), -32000);
  EXPECT_EQ(f->get_int("u32"), 4000000000ll);
  EXPECT_EQ(f->get_int("i32"), -2000000000);
  EXPECT_EQ(f->get_int("u64"), 1ll << 40);
  EXPECT_EQ(f->get_int("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f->get_float("f32"), 0.15625);
  EXPECT_EQ(f->get_float("f64"), 1e-300);
  EXPECT_EQ(f->get_float("u32"), 4e9);  // integers read as floats too
  EXPECT_EQ(f->find_bool("yes"), true);
  EXPECT_EQ(f->find_bool("no"), false);
  EXPECT_EQ(f->get_string("s"), std::string("caf\xc3\xa9 \0 end", 11));
  EXPECT_EQ(f->get_string("empty"), "");

  EXPECT_EQ(f->find("u8")->type, GgufType::UINT8);
  EXPECT_EQ(f->find("f64")->type, GgufType::FLOAT64);
  EXPECT_TRUE(f->find("i16")->is_int());
  EXPECT_FALSE(f->find("f32")->is_int());
  EXPECT_FALSE(f->find("yes")->is_int());
  EXPECT_EQ(f->find("missing"), nullptr);
  EXPECT_EQ(f->find_int("missing"), std::nullopt);
  EXPECT_EQ(f->find_float("missing"), std::nullopt);
  EXPECT_EQ(f->find_string("missing"), std::nullopt);
  EXPECT_EQ(f->find_bool("missing"), std::nullopt);
  EXPECT_EQ(f->find_int("i8"), -100);
  EXPECT_EQ(f->find_string("s")->size(), 11u);
  EXPECT_TRUE(f->tensors().empty());
}

TEST_P(GgufVersionTest, ArraysRoundTrip) {
  GgufWriter w(GetParam());
  w.add_string_array("strs", {"<s>", "", "\xe2\x96\x81hello", "a\nb"});
  w.add_i32_array("i32s", {3, -1, 2147483647});
  w.add_int_array("u8s", GgufType::UINT8, {0, 255, 7});
  w.add_int_array("i64s", GgufType::INT64, {-5, 1ll << 50});
  w.add_int_array("u16s", GgufType::UINT16, {65535});
  w.add_f32_array("f32s", {-1000.0f, 0.25f});
  w.add_f64_array("f64s", {3.5});
  w.add_bool_array("bools", {true, false, true});
  w.add_i32_array("none", {});
  const auto bytes = w.bytes();
  const auto f = parse(bytes);

  const GgufValue& s = f->get_array("strs");
  EXPECT_EQ(s.elem_type, GgufType::STRING);
  ASSERT_EQ(s.array_size(), 4u);
  EXPECT_EQ(s.string_at(0), "<s>");
  EXPECT_EQ(s.string_at(1), "");
  EXPECT_EQ(s.string_at(2), "\xe2\x96\x81hello");
  EXPECT_EQ(s.string_at(3), "a\nb");
  EXPECT_THROW(s.string_at(4), Error);
  EXPECT_THROW(s.int_at(0), Error);

  const GgufValue& i = f->get_array("i32s");
  ASSERT_EQ(i.array_size(), 3u);
  EXPECT_EQ(i.int_at(0), 3);
  EXPECT_EQ(i.int_at(1), -1);
  EXPECT_EQ(i.int_at(2), 2147483647);
  EXPECT_EQ(i.float_at(1), -1.0);
  EXPECT_THROW(i.string_at(0), Error);
  EXPECT_THROW(i.int_at(3), Error);

  EXPECT_EQ(f->get_array("u8s").int_at(1), 255);
  EXPECT_EQ(f->get_array("i64s").int_at(1), 1ll << 50);
  EXPECT_EQ(f->get_array("i64s").int_at(0), -5);
  EXPECT_EQ(f->get_array("u16s").int_at(0), 65535);
  EXPECT_EQ(f->get_array("f32s").float_at(0), -1000.0);
  EXPECT_EQ(f->get_array("f32s").float_at(1), 0.25);
  EXPECT_THROW(f->get_array("f32s").int_at(0), Error);
  EXPECT_EQ(f->get_array("f64s").float_at(0), 3.5);
  EXPECT_TRUE(f->get_array("bools").bool_at(0));
  EXPECT_FALSE(f->get_array("bools").bool_at(1));
  EXPECT_EQ(f->get_array("none").array_size(), 0u);
  EXPECT_EQ(f->get_array("none").elem_type, GgufType::INT32);
}

TEST_P(GgufVersionTest, TensorsLandWhereTheTableSays) {
  GgufWriter w(GetParam());
  const auto a = f32_bytes({1, 2, 3, 4, 5, 6, 7, 8});
  const auto q8 = pattern(2 * 3 * 34, 1);   // q8_0: 2 blocks per row, 3 rows
  const auto q4k = pattern(144 * 2, 9);     // q4_K: one block per row, 2 rows
  const auto q41 = pattern(20, 3);          // q4_1: one block
  w.add_tensor("a", GgmlType::F32, {4, 2}, a);
  w.add_tensor("b", GgmlType::F16, {3}, f16_bytes({0.5f, -1.0f, 2.0f}));
  w.add_tensor("blk.0.q8", GgmlType::Q8_0, {64, 3}, q8);
  w.add_tensor("blk.0.q4k", GgmlType::Q4_K, {256, 1, 2}, q4k);
  w.add_tensor("q41", GgmlType::Q4_1, {32, 1, 1, 1}, q41);
  const auto bytes = w.bytes();
  const auto f = parse(bytes);

  ASSERT_EQ(f->tensors().size(), 5u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->data_offset() % 32, 0u);
  const GgufTensor& ta = f->require_tensor("a");
  EXPECT_EQ(ta.type, GgmlType::F32);
  EXPECT_EQ(ta.dims, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(ta.n_elements, 8);
  EXPECT_EQ(ta.rows(), 2);
  EXPECT_EQ(ta.n_bytes, 32u);
  EXPECT_EQ(ta.offset, 0u);
  EXPECT_EQ(ta.data, bytes.data() + f->data_offset());
  EXPECT_EQ(std::memcmp(ta.data, a.data(), a.size()), 0);

  const GgufTensor& tb = f->require_tensor("b");
  EXPECT_EQ(tb.n_bytes, 6u);
  EXPECT_EQ(tb.offset, 32u);
  uint16_t h;
  std::memcpy(&h, tb.data + 2, 2);
  EXPECT_EQ(quant::f16_to_f32(h), -1.0f);

  const GgufTensor& q = f->require_tensor("blk.0.q8");
  EXPECT_EQ(q.n_elements, 192);
  EXPECT_EQ(q.rows(), 3);
  EXPECT_EQ(q.n_bytes, q8.size());
  EXPECT_EQ(std::memcmp(q.data, q8.data(), q8.size()), 0);

  const GgufTensor& k = f->require_tensor("blk.0.q4k");
  EXPECT_EQ(k.rows(), 2);
  EXPECT_EQ(k.n_bytes, 288u);
  EXPECT_EQ(std::memcmp(k.data, q4k.data(), q4k.size()), 0);
  EXPECT_EQ(f->require_tensor("q41").dims.size(), 4u);
  EXPECT_EQ(std::memcmp(f->require_tensor("q41").data, q41.data(), 20), 0);

  for (const GgufTensor& t : f->tensors()) EXPECT_EQ(t.offset % 32, 0u) << t.name;
  EXPECT_EQ(f->tensor("nope"), nullptr);
  EXPECT_EQ(f->tensors()[2].name, "blk.0.q8");  // file order
}

INSTANTIATE_TEST_SUITE_P(V2AndV3, GgufVersionTest, ::testing::Values(2u, 3u));

class GgufAlignmentTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GgufAlignmentTest, DataFollowsTheAlignmentKey) {
  const uint32_t align = GetParam();
  GgufWriter w;
  w.add_string("general.name", "x");  // an odd-length header, so padding matters
  w.set_alignment(align);
  const auto b1 = pattern(34, 5);
  const auto b2 = pattern(34 * 3, 6);
  w.add_tensor("t1", GgmlType::Q8_0, {32}, b1);
  w.add_tensor("t2", GgmlType::Q8_0, {32, 3}, b2);
  const auto bytes = w.bytes();
  const auto f = parse(bytes);
  EXPECT_EQ(f->alignment(), align);
  EXPECT_EQ(f->data_offset() % align, 0u);
  const GgufTensor& t2 = f->require_tensor("t2");
  EXPECT_EQ(t2.offset % align, 0u);
  EXPECT_GE(t2.offset, 34u);
  EXPECT_EQ(std::memcmp(t2.data, b2.data(), b2.size()), 0);
  EXPECT_EQ(std::memcmp(f->require_tensor("t1").data, b1.data(), b1.size()), 0);
}

INSTANTIATE_TEST_SUITE_P(Alignments, GgufAlignmentTest, ::testing::Values(1u, 8u, 64u, 256u));

TEST(GgufReader, AlignmentDefaultsTo32) {
  const auto bytes = small_file().bytes();
  EXPECT_EQ(parse(bytes)->alignment(), 32u);
}

TEST(GgufReader, ALargeVocabularyIsViewsIntoTheFile) {
  std::vector<std::string> tokens(262144);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = "tok" + std::to_string(i);
  GgufWriter w;
  w.add_string_array("tokenizer.ggml.tokens", tokens);
  const auto bytes = w.bytes();
  const auto f = parse(bytes);
  const GgufValue& v = f->get_array("tokenizer.ggml.tokens");
  ASSERT_EQ(v.array_size(), 262144u);
  EXPECT_EQ(v.string_at(262143), "tok262143");
  const auto* p = reinterpret_cast<const uint8_t*>(v.string_at(1000).data());
  EXPECT_TRUE(p >= bytes.data() && p < bytes.data() + bytes.size());
}

TEST(GgufReader, Display) {
  GgufWriter w;
  w.add_u32("n", 7);
  w.add_f32("f", 0.5f);
  w.add_bool("b", true);
  w.add_string("s", "two\nlines");
  w.add_i32_array("ints", {1, 2, 3, 4, 5});
  w.add_string_array("strs", {"a", "b\"c"});
  w.add_u64("big", 18446744073709551615ull);
  const auto bytes = w.bytes();
  const auto f = parse(bytes);
  EXPECT_EQ(f->find("n")->to_display(), "7");
  EXPECT_EQ(f->find("f")->to_display(), "0.5");
  EXPECT_EQ(f->find("b")->to_display(), "true");
  EXPECT_EQ(f->find("s")->to_display(), "two\\nlines");
  EXPECT_EQ(f->find("ints")->to_display(), "[1, 2, 3, 4, 5]");
  EXPECT_EQ(f->find("ints")->to_display(2), "[1, 2, ... (5 i32 total)]");
  EXPECT_EQ(f->find("strs")->to_display(), "[\"a\", \"b\\\"c\"]");
  EXPECT_EQ(f->find("big")->to_display(), "18446744073709551615");
}

TEST(GgufReader, GettersNameTheKey) {
  GgufWriter w;
  w.add_string("arch", "llama");
  w.add_u32("n", 3);
  w.add_u64("huge", 1ull << 63);
  w.add_i32_array("arr", {1});
  const auto bytes = w.bytes();
  const auto f = parse(bytes);
  auto message = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(message([&] { f->get_int("llama.block_count"); }),
            "missing metadata key 'llama.block_count'");
  EXPECT_EQ(message([&] { f->get_string("missing.key"); }), "missing metadata key 'missing.key'");
  EXPECT_EQ(message([&] { f->get_int("arch"); }),
            "metadata key 'arch' has type string, expected an integer");
  EXPECT_EQ(message([&] { f->find_int("arch"); }),
            "metadata key 'arch' has type string, expected an integer");
  EXPECT_EQ(message([&] { f->get_string("n"); }),
            "metadata key 'n' has type u32, expected a string");
  EXPECT_EQ(message([&] { f->get_float("arr"); }),
            "metadata key 'arr' is an array of i32, expected a number");
  EXPECT_EQ(message([&] { f->find_bool("n"); }), "metadata key 'n' has type u32, expected a bool");
  EXPECT_NE(message([&] { f->get_int("huge"); }).find("'huge'"), std::string::npos);
  EXPECT_EQ(f->get_float("huge"), 9223372036854775808.0);
  EXPECT_EQ(message([&] { f->get_array("n"); }),
            "metadata key 'n' has type u32, expected an array");
  EXPECT_EQ(message([&] { f->require_tensor("output.weight"); }),
            "missing tensor 'output.weight'");
  EXPECT_THROW(f->find("arch")->as_int(), Error);
  EXPECT_THROW(f->find("n")->as_string(), Error);
  EXPECT_THROW(f->find("n")->as_bool(), Error);
  EXPECT_THROW(f->find("arch")->array_size(), Error);
}

// ---- broken files: one test per kind of damage ----

TEST(GgufErrors, BadMagic) {
  auto bytes = small_file().bytes();
  bytes[0] = 'X';
  EXPECT_EQ(parse_error(bytes), "not a GGUF file (bad magic)");
  EXPECT_EQ(parse_error({'G', 'G'}), "not a GGUF file (bad magic)");
  EXPECT_EQ(parse_error({}), "not a GGUF file (bad magic)");
}

TEST(GgufErrors, UnsupportedVersion) {
  EXPECT_EQ(parse_error(GgufWriter(1).bytes()), "GGUF version 1 is not supported (only 2 and 3)");
  EXPECT_EQ(parse_error(GgufWriter(4).bytes()), "GGUF version 4 is not supported (only 2 and 3)");
  EXPECT_NE(parse_error(GgufWriter(0).bytes()).find("version 0 is not supported"),
            std::string::npos);
}

TEST(GgufErrors, BigEndian) {
  auto bytes = small_file().bytes();
  poke<uint32_t>(bytes, 4, 0x03000000u);  // version 3 as a big-endian writer stores it
  EXPECT_NE(parse_error(bytes).find("big-endian GGUF files are not supported"),
            std::string::npos);
}

TEST(GgufErrors, EveryTruncationIsCaught) {
  const auto full = small_file().bytes();
  const auto f = parse(full);
  const GgufTensor& last = f->require_tensor("b");
  const size_t data_end = f->data_offset() + last.offset + last.n_bytes;
  for (size_t n = 0; n < data_end; ++n) {
    const std::vector<uint8_t> cut(full.begin(), full.begin() + n);
    const std::string msg = parse_error(cut);
    if (n < 4) {
      EXPECT_EQ(msg, "not a GGUF file (bad magic)") << n;
    } else {
      EXPECT_NE(msg.find("truncated"), std::string::npos) << n << ": " << msg;
    }
  }
  // Trailing padding after the last tensor is not needed.
  EXPECT_NO_THROW(parse(std::vector<uint8_t>(full.begin(), full.begin() + data_end)));
}

TEST(GgufErrors, HugeCountsFailBeforeAllocating) {
  auto bytes = small_file().bytes();
  poke<uint64_t>(bytes, 16, 1ull << 60);  // n_kv
  EXPECT_NE(parse_error(bytes).find("truncated: header claims 1152921504606846976 metadata"),
            std::string::npos);
  bytes = small_file().bytes();
  poke<uint64_t>(bytes, 8, 1ull << 60);  // n_tensors
  EXPECT_NE(parse_error(bytes).find("truncated: header claims 1152921504606846976 tensors"),
            std::string::npos);

  // An array claiming 2^60 strings, and a string claiming 2^60 bytes.
  std::vector<uint8_t> value(12);
  poke<uint32_t>(value, 0, static_cast<uint32_t>(GgufType::STRING));
  poke<uint64_t>(value, 4, 1ull << 60);
  GgufWriter w;
  w.add_raw("tokenizer.ggml.tokens", static_cast<uint32_t>(GgufType::ARRAY), value);
  EXPECT_NE(parse_error(w.bytes()).find("array 'tokenizer.ggml.tokens' claims"),
            std::string::npos);
  GgufWriter w2;
  std::vector<uint8_t> str(8);
  poke<uint64_t>(str, 0, 1ull << 60);
  w2.add_raw("general.name", static_cast<uint32_t>(GgufType::STRING), str);
  EXPECT_NE(parse_error(w2.bytes()).find("truncated: string of general.name"), std::string::npos);
  // A numeric array whose byte size would overflow 64 bits.
  std::vector<uint8_t> nums(12);
  poke<uint32_t>(nums, 0, static_cast<uint32_t>(GgufType::INT64));
  poke<uint64_t>(nums, 4, ~0ull);
  GgufWriter w3;
  w3.add_raw("x", static_cast<uint32_t>(GgufType::ARRAY), nums);
  EXPECT_NE(parse_error(w3.bytes()).find("truncated: array 'x' claims"), std::string::npos);
}

TEST(GgufErrors, BadMetadataTypes) {
  GgufWriter w;
  w.add_raw("k", 13, {0, 0, 0, 0});
  EXPECT_EQ(parse_error(w.bytes()), "metadata key 'k' has unknown value type 13");
  std::vector<uint8_t> nested(12, 0);
  poke<uint32_t>(nested, 0, static_cast<uint32_t>(GgufType::ARRAY));
  GgufWriter w2;
  w2.add_raw("k", static_cast<uint32_t>(GgufType::ARRAY), nested);
  EXPECT_EQ(parse_error(w2.bytes()), "metadata key 'k' is an array of arrays");
}

TEST(GgufErrors, DuplicateKey) {
  GgufWriter w;
  w.add_u32("a", 1);
  w.add_u32("a", 2);
  EXPECT_EQ(parse_error(w.bytes()), "duplicate metadata key 'a'");
}

TEST(GgufErrors, BadAlignment) {
  for (uint32_t a : {0u, 48u, 3u}) {
    GgufWriter w;
    w.set_alignment(a);
    w.add_tensor("t", GgmlType::F32, {1}, f32_bytes({1}));
    EXPECT_EQ(parse_error(w.bytes()),
              "general.alignment " + std::to_string(a) + " is not a power of two");
  }
  GgufWriter w;
  w.add_string("general.alignment", "32");
  EXPECT_EQ(parse_error(w.bytes()), "general.alignment has type string, expected an integer");
}

TEST(GgufErrors, MisalignedTensorData) {
  GgufWriter w = small_file();
  w.add_tensor("c", GgmlType::F32, {1}, f32_bytes({1}));
  w.override_last_offset(65);
  EXPECT_EQ(parse_error(w.bytes()),
            "tensor 'c' data offset 65 is not a multiple of the alignment 32");
}

TEST(GgufErrors, OverlappingTensorData) {
  GgufWriter w = small_file();
  w.add_tensor("c", GgmlType::F32, {2}, f32_bytes({1, 2}));
  w.override_last_offset(0);  // on top of tensor 'a'
  EXPECT_EQ(parse_error(w.bytes()), "tensors 'a' and 'c' overlap in the data section");
}

TEST(GgufErrors, DataOutsideTheFile) {
  GgufWriter w = small_file();
  w.add_tensor("c", GgmlType::F32, {2}, f32_bytes({1, 2}));
  w.override_last_offset(1ull << 62);
  const std::string msg = parse_error(w.bytes());
  EXPECT_NE(msg.find("tensor 'c' data [4611686018427387904, +8) runs past the end of the file"),
            std::string::npos)
      << msg;
  // Just one byte past the end.
  GgufWriter w2;
  w2.add_tensor("a", GgmlType::F32, {8}, f32_bytes({1, 2, 3, 4, 5, 6, 7, 8}));
  w2.override_last_offset(32);
  auto bytes = w2.bytes();
  bytes.resize(bytes.size() + 31);
  EXPECT_NE(parse_error(bytes).find("runs past the end of the file"), std::string::npos);
  bytes.resize(bytes.size() + 1);
  EXPECT_EQ(parse_error(bytes), "");
}

TEST(GgufErrors, DuplicateTensorName) {
  GgufWriter w = small_file();
  w.add_tensor("a", GgmlType::F32, {1}, f32_bytes({1}));
  EXPECT_EQ(parse_error(w.bytes()), "duplicate tensor name 'a'");
}

TEST(GgufErrors, BadDimensions) {
  GgufWriter zero;
  zero.add_tensor("z", GgmlType::F32, {4, 0}, {});
  EXPECT_EQ(parse_error(zero.bytes()), "tensor 'z' has dimension 1 of size 0");
  GgufWriter negative;
  negative.add_tensor("n", GgmlType::F32, {-3}, {});
  EXPECT_EQ(parse_error(negative.bytes()), "tensor 'n' has dimension 0 of size -3");
  GgufWriter five;
  five.add_tensor("f", GgmlType::F32, {1, 1, 1, 1, 1}, f32_bytes({1}));
  EXPECT_EQ(parse_error(five.bytes()), "tensor 'f' has 5 dimensions (1 to 4 allowed)");
  GgufWriter none;
  none.add_tensor("s", GgmlType::F32, {}, f32_bytes({1}));
  EXPECT_EQ(parse_error(none.bytes()), "tensor 's' has 0 dimensions (1 to 4 allowed)");
}

TEST(GgufErrors, ElementCountOverflow) {
  GgufWriter w;
  w.add_tensor("big", GgmlType::F32, {1ll << 32, 1ll << 31}, {});
  EXPECT_EQ(parse_error(w.bytes()), "tensor 'big' element count overflows int64");
  // Elements fit in int64 but the bytes do not fit in size_t.
  GgufWriter w2;
  w2.add_tensor("big", GgmlType::F32, {1ll << 31, 1ll << 31}, {});
  EXPECT_EQ(parse_error(w2.bytes()), "tensor 'big' byte size overflows");
}

TEST(GgufErrors, UnsupportedTensorType) {
  GgufWriter w;
  w.add_tensor("blk.0.attn_q.weight", static_cast<GgmlType>(16), {256}, pattern(66, 0));
  EXPECT_EQ(parse_error(w.bytes()),
            "tensor 'blk.0.attn_q.weight' has type iq2_xxs (16), which kvcascade does not support");
  GgufWriter w2;
  w2.add_tensor("t", static_cast<GgmlType>(99), {1}, {0});
  EXPECT_EQ(parse_error(w2.bytes()),
            "tensor 't' has type unknown (99), which kvcascade does not support");
}

TEST(GgufErrors, RowNotWholeBlocks) {
  GgufWriter w;
  w.add_tensor("q", GgmlType::Q8_0, {33}, pattern(68, 0));
  EXPECT_EQ(parse_error(w.bytes()),
            "tensor 'q' has rows of 33 elements, not a multiple of the q8_0 block size 32");
}

// ---- files on disk ----

class TempFile {
 public:
  TempFile() {
    char name[] = "/tmp/kvc_gguf_testXXXXXX";
    const int fd = mkstemp(name);
    if (fd >= 0) close(fd);
    path_ = name;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }
  void write(const std::vector<uint8_t>& b) const {
    std::ofstream(path_, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }

 private:
  std::string path_;
};

TEST(GgufOpen, MapsAFile) {
  TempFile tmp;
  small_file().write(tmp.path());
  const auto f = GgufFile::open(tmp.path());
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->size(), small_file().bytes().size());
  const GgufTensor& a = f->require_tensor("a");
  float x[8];
  std::memcpy(x, a.data, sizeof(x));
  EXPECT_EQ(x[7], 8.0f);
}

TEST(GgufOpen, ErrorsNameThePath) {
  TempFile tmp;
  auto bytes = small_file().bytes();
  bytes.resize(40);
  tmp.write(bytes);
  try {
    GgufFile::open(tmp.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(tmp.path() + ": truncated: ", 0), 0u) << e.what();
  }
  tmp.write({});
  try {
    GgufFile::open(tmp.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), tmp.path() + ": not a GGUF file (bad magic)");
  }
  try {
    GgufFile::open("/nonexistent/model.gguf");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "/nonexistent/model.gguf: No such file or directory");
  }
  EXPECT_THROW(GgufFile::open("/tmp"), Error);
}

// A path that is not a regular file is named for what it is, and never blocks: opening a FIFO
// for reading waits for a writer, so the reader must look before it opens.
TEST(GgufOpen, AFifoIsNamedAndDoesNotBlock) {
  const std::string fifo = ::testing::TempDir() + "kvc_gguf_fifo_" + std::to_string(getpid());
  std::remove(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  auto opening = std::async(std::launch::async, [&]() -> std::string {
    try {
      GgufFile::open(fifo);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  });
  if (opening.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "opening a FIFO blocked";
    const int writer = ::open(fifo.c_str(), O_WRONLY);  // releases the blocked open
    if (writer >= 0) ::close(writer);
  }
  EXPECT_EQ(opening.get(), fifo + ": is a FIFO (named pipe), not a GGUF file");
  std::remove(fifo.c_str());
}

TEST(GgufOpen, ASymlinkLoopIsNamed) {
  const std::string a = ::testing::TempDir() + "kvc_gguf_loop_a_" + std::to_string(getpid());
  const std::string b = ::testing::TempDir() + "kvc_gguf_loop_b_" + std::to_string(getpid());
  std::remove(a.c_str());
  std::remove(b.c_str());
  ASSERT_EQ(symlink(b.c_str(), a.c_str()), 0);
  ASSERT_EQ(symlink(a.c_str(), b.c_str()), 0);
  try {
    GgufFile::open(a);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), a + ": a symbolic link loop (too many levels of symbolic links)");
  }
  std::remove(a.c_str());
  std::remove(b.c_str());
}

TEST(GgufOpen, DirectoriesAndDevicesAreNamed) {
  const std::string dir = ::testing::TempDir() + "kvc_gguf_dir_" + std::to_string(getpid());
  ::mkdir(dir.c_str(), 0700);
  for (const auto& [path, kind] : {std::pair<std::string, std::string>{dir, "a directory"},
                                   {"/dev/null", "a character device"}}) {
    try {
      GgufFile::open(path);
      ADD_FAILURE() << "no error for " << path;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), path + ": is " + kind + ", not a GGUF file");
    }
  }
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace kvc
