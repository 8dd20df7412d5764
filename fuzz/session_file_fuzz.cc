// libFuzzer target for the session-file loader (engine/session_file.h): any bytes either load or
// throw kvc::Error, and a session that loaded can go on streaming. The checksums would stop
// almost every mutation at the door, so half the inputs are raw files and half are a valid file
// of a tiny model with one section's payload overwritten by the input and its checksum made
// right again: those reach every field check of every cache policy.
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "engine/session.h"
#include "engine/session_file.h"
#include "model/model.h"
#include "support/tiny_model.h"

namespace {

struct Policy {
  kvc::SessionOptions options;
  std::string valid;  // a saved session of this policy, mid-stream
};

std::unique_ptr<kvc::Model> g_model;
uint64_t g_fingerprint = 0;
std::vector<Policy> g_policies;

kvc::SessionOptions options_for(const std::string& policy, const std::string& unit) {
  kvc::SessionOptions o;
  o.threads = 1;
  o.cache.policy = policy;
  o.cache.context = 64;
  o.cache.sinks = 2;
  o.cache.size = 32;
  o.cache.unit = unit;
  o.cache.unit_max = 3;
  o.stride = 5;
  return o;
}

// Where each section's payload lies in a file: [begin, begin + size), checksum right after.
struct Span {
  size_t begin, size;
};

std::vector<Span> sections_of(const std::string& f) {
  std::vector<Span> out;
  uint32_t n;
  std::memcpy(&n, f.data() + 12, 4);
  size_t at = 16;
  for (uint32_t i = 0; i < n; ++i) {
    at += 1 + static_cast<uint8_t>(f[at]);
    uint64_t size;
    std::memcpy(&size, f.data() + at, 8);
    at += 8;
    out.push_back({at, static_cast<size_t>(size)});
    at += static_cast<size_t>(size) + 8;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string path = "/tmp/kvc_session_file_fuzz_model.gguf";
  kvc::test::TinyModelSpec spec;
  kvc::test::write_tiny_model(path, spec);
  g_model = kvc::Model::load(path);
  g_fingerprint = kvc::model_fingerprint(*g_model);
  for (const auto& [policy, unit] : std::vector<std::pair<std::string, std::string>>{
           {"full", "token"}, {"window", "token"}, {"cascade", "token"}, {"cascade", "span"},
           {"h2o", "token"}}) {
    Policy p{options_for(policy, unit), {}};
    kvc::Session s(*g_model, p.options);
    std::vector<int32_t> tokens;
    for (int i = 0; i < 50; ++i) tokens.push_back((i * 37 + 11) % 300);
    s.feed(tokens);
    kvc::SessionFileWriter w;
    kvc::save_session(s, g_fingerprint, w);
    p.valid = w.finish();
    g_policies.push_back(std::move(p));
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const Policy& p = g_policies[(data[0] >> 1) % g_policies.size()];
  std::string bytes;
  if ((data[0] & 1) == 0) {
    bytes.assign(reinterpret_cast<const char*>(data + 2), size - 2);
  } else {
    bytes = p.valid;
    const std::vector<Span> spans = sections_of(bytes);
    const Span s = spans[data[1] % spans.size()];
    // The input overwrites the payload from an offset that its first bytes choose.
    size_t at = 0;
    if (size >= 6) {
      uint32_t off;
      std::memcpy(&off, data + 2, 4);
      at = s.size ? off % s.size : 0;
    }
    for (size_t i = 6; i < size && at < s.size; ++i, ++at) bytes[s.begin + at] = static_cast<char>(data[i]);
    const uint64_t sum = XXH3_64bits(bytes.data() + s.begin, s.size);
    std::memcpy(bytes.data() + s.begin + s.size, &sum, 8);
  }
  try {
    const kvc::SessionFileReader in(std::move(bytes), "fuzz");
    kvc::Session session(*g_model, p.options);
    kvc::load_session(session, g_fingerprint, in);
    const std::vector<int32_t> more = {5, 17, 250, 3, 99, 42, 7};
    session.feed(more);
    for (int32_t t : more) session.feed(std::vector<int32_t>{t});
  } catch (const kvc::Error&) {
  }
  return 0;
}
