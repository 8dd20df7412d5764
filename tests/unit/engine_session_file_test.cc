// Session files (engine/session_file.h) on a tiny synthetic model: a session saved mid-stream and
// loaded into a fresh one continues bit for bit as the uninterrupted one does, for every cache
// policy, storage type and sparse attention; the file's size does not grow with the stream; and
// a truncated, corrupt, other-model or other-configuration file fails with a message saying so.
#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "engine/session.h"
#include "engine/session_file.h"
#include "model/model.h"
#include "support/error_of.h"
#include "support/tiny_model.h"

namespace kvc {
namespace {

using test::TinyModelSpec;

std::unique_ptr<Model> tiny_model(const std::string& name, uint64_t seed = 1) {
  const std::string path = test::unique_temp_path("session_file_" + name);
  TinyModelSpec spec;
  spec.seed = seed;
  test::write_tiny_model(path, spec);
  return Model::load(path);
}

struct Case {
  std::string name;
  SessionOptions options;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

SessionOptions base(const std::string& policy) {
  SessionOptions o;
  o.threads = 1;
  o.cache.policy = policy;
  o.cache.context = 256;
  o.cache.sinks = 2;
  o.cache.size = 16;
  o.cache.cascades = 4;
  o.stride = 5;
  return o;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const char* p : {"full", "window", "cascade", "h2o"}) out.push_back({p, base(p)});
  SessionOptions o = base("oracle");
  o.cache.pinned = {7, 8, 30};
  out.push_back({"oracle", o});
  for (const char* share : {"head", "layer", "model"}) {
    o = base("cascade");
    o.cache.size = 32;  // levels of 8: a unit is at most 2 * 3 - 1 tokens
    o.cache.unit = "span";
    o.cache.unit_max = 3;
    o.cache.unit_share = share;
    out.push_back({std::string("span_") + share, o});
  }
  for (const char* compete : {"lowest", "pool"}) {
    o = base("cascade");
    o.cache.size = 32;
    o.cache.unit = "span";
    o.cache.unit_max = 3;
    o.cache.unit_compete = compete;
    out.push_back({std::string("span_") + compete, o});
  }
  o = base("cascade");
  o.cache.type_k = o.cache.type_v = "f32";
  out.push_back({"cascade_f32", o});
  o = base("window");
  o.cache.type_k = o.cache.type_v = "q8_0";
  out.push_back({"window_q8_0", o});  // head_dim 8: q8_0 needs 32, so this one must refuse
  o = base("full");
  o.sparse_attention = true;
  o.sparse = SparseAttentionConfig{2, 8, 3, 4, 4, 24, false};
  out.push_back({"full_sparse", o});
  return out;
}

std::vector<int32_t> random_tokens(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % 300);
  return t;
}

std::vector<float> logits_of(const Session& s) {
  return std::vector<float>(s.logits(), s.logits() + s.vocab_size());
}

std::string saved(Session& s, uint64_t fingerprint) {
  SessionFileWriter w;
  save_session(s, fingerprint, w);
  return w.finish();
}

using test::error_of;

class SessionFileTest : public ::testing::TestWithParam<Case> {};

TEST_P(SessionFileTest, ARestoredSessionContinuesBitForBit) {
  const Case& c = GetParam();
  const auto model = tiny_model(c.name);
  const uint64_t fp = model_fingerprint(*model);
  if (c.name == "window_q8_0") {
    EXPECT_NE(error_of([&] { Session s(*model, c.options); }), "(no error)");
    return;
  }
  Session a(*model, c.options);
  a.feed(random_tokens(90, 1));  // far past the 18 slots of the bounded policies
  for (int32_t t : random_tokens(6, 2)) a.feed(std::vector<int32_t>{t});  // decode steps
  const std::string bytes = saved(a, fp);
  const int64_t selections_before = a.sparse_stats().selections;

  Session b(*model, c.options);
  b.feed(random_tokens(20, 9));  // whatever it held is replaced
  load_session(b, fp, SessionFileReader(bytes, "file"));
  EXPECT_EQ(b.n_past(), a.n_past());
  EXPECT_EQ(logits_of(b), logits_of(a));
  EXPECT_EQ(saved(b, fp), bytes);  // the same state, field for field

  // The continuation: decode steps and a prefill chunk, equal after every one.
  const std::vector<int32_t> more = random_tokens(12, 3);
  for (size_t i = 0; i < more.size(); ++i) {
    a.feed(std::vector<int32_t>{more[i]});
    b.feed(std::vector<int32_t>{more[i]});
    ASSERT_EQ(logits_of(b), logits_of(a)) << "after " << i + 1 << " decode steps";
    // Sparse: the restored one reuses the selection it was saved with, as the other does (the
    // tiny model's logits need not tell a fresh selection from a kept one).
    ASSERT_EQ(b.sparse_stats().selections, a.sparse_stats().selections - selections_before);
  }
  const std::vector<int32_t> chunk = random_tokens(11, 4);
  a.feed(chunk);
  b.feed(chunk);
  EXPECT_EQ(logits_of(b), logits_of(a));
  if (c.options.sparse_attention) {
    EXPECT_GT(b.sparse_stats().sparse_calls, 0);
  }
  for (int l = 0; l < a.n_cache_layers(); ++l)
    for (int h = 0; h < model->config().n_kv_heads; ++h) {
      const auto sa = a.cache(l).slots(h), sb = b.cache(l).slots(h);
      ASSERT_EQ(sa.size(), sb.size());
      for (size_t i = 0; i < sa.size(); ++i) {
        EXPECT_EQ(sa[i].index, sb[i].index);
        EXPECT_EQ(sa[i].score, sb[i].score);
      }
    }
  if (c.options.cache.policy != "full") {
    // Bounded: the file does not grow with the stream.
    a.feed(random_tokens(200, 5));
    EXPECT_EQ(saved(a, fp).size(), bytes.size());
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, SessionFileTest, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(SessionFile, BadFilesFailWithAMessage) {
  const auto model = tiny_model("bad");
  const uint64_t fp = model_fingerprint(*model);
  const SessionOptions o = base("cascade");
  Session a(*model, o);
  a.feed(random_tokens(40, 1));
  const std::string bytes = saved(a, fp);
  const auto load = [&](const std::string& b, const SessionOptions& opts, uint64_t f) {
    return error_of([&] {
      Session s(*model, opts);
      load_session(s, f, SessionFileReader(b, "x.kvcs"));
    });
  };
  EXPECT_EQ(load(bytes, o, fp), "(no error)");
  EXPECT_NE(load(bytes.substr(0, bytes.size() / 2), o, fp).find("x.kvcs: truncated"),
            std::string::npos);
  EXPECT_NE(load(bytes.substr(0, 5), o, fp).find("not a kvcascade session file"), std::string::npos);
  EXPECT_NE(load("hello world, not a session", o, fp).find("not a kvcascade session file"),
            std::string::npos);
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x10;
  EXPECT_NE(load(flipped, o, fp).find("fails its checksum (the file is corrupt)"),
            std::string::npos);
  std::string version = bytes;
  version[8] = 9;
  EXPECT_NE(load(version, o, fp).find("session file version 9"), std::string::npos);
  EXPECT_NE(load(bytes + "x", o, fp).find("after the last section"), std::string::npos);

  SessionOptions other = o;
  other.cache.size = 32;
  const std::string msg = load(bytes, other, fp);
  EXPECT_NE(msg.find("saved with another cache configuration (saved with size=16, this one runs "
                     "size=32)"),
            std::string::npos)
      << msg;
  other = o;
  other.cache.type_k = "f32";
  EXPECT_NE(load(bytes, other, fp).find("saved with type_k=f16, this one runs type_k=f32"),
            std::string::npos);

  const auto model2 = tiny_model("bad_other", 2);
  EXPECT_NE(model_fingerprint(*model2), fp);
  EXPECT_NE(load(bytes, o, model_fingerprint(*model2)).find("saved by another model file"),
            std::string::npos);
}

TEST(SessionFile, WritesAtomicallyAndReadsBack) {
  const std::string path = test::unique_temp_path("atomic.kvcs");
  write_file_atomically(path, "first");
  write_file_atomically(path, std::string(100000, 'z'));
  EXPECT_EQ(read_whole_file(path), std::string(100000, 'z'));
  EXPECT_NE(error_of([] { read_whole_file("/nonexistent/dir/file"); }).find("cannot open"),
            std::string::npos);
  EXPECT_NE(error_of([] { write_file_atomically("/nonexistent/dir/file", "x"); }).find("cannot create"),
            std::string::npos);
}

}  // namespace
}  // namespace kvc
