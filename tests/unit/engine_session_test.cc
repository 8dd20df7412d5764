// Session on a tiny synthetic model, at its failure boundaries: a model that computes NaN stops
// with an error instead of handing NaN logits to a sampler (which would pick token 0 forever),
// and a cache that cannot fit in memory says how big it is instead of std::bad_alloc.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "base/error.h"
#include "engine/session.h"
#include "model/model.h"
#include "support/error_of.h"
#include "support/tiny_model.h"

namespace kvc {
namespace {

using test::TinyModelSpec;

std::unique_ptr<Model> tiny_model(const std::string& name, const TinyModelSpec& spec) {
  const std::string path = test::unique_temp_path("session_" + name);
  test::write_tiny_model(path, spec);
  return Model::load(path);
}

SessionOptions one_thread(const std::string& policy = "full") {
  SessionOptions o;
  o.threads = 1;
  o.cache.policy = policy;
  o.cache.context = 64;
  o.cache.sinks = 2;
  o.cache.size = 16;
  o.stride = 3;
  return o;
}

using test::error_of;

const std::vector<int32_t> kTokens = {1, 17, 42, 99, 7};

TEST(Session, FiniteModelFeeds) {
  const auto model = tiny_model("finite", TinyModelSpec{});
  Session s(*model, one_thread());
  s.feed(kTokens);
  EXPECT_EQ(s.n_past(), 5);
}

// One NaN in the output matrix (not checked at load: matrices are too big to scan) makes one
// logit NaN in every row.
// The server's sessions borrow one pool; what they compute is what a session with its own
// threads computes, interleaved or not.
TEST(Session, SharedPoolGivesTheSameLogits) {
  const auto model = tiny_model("shared_pool", TinyModelSpec{});
  Session own(*model, one_thread("cascade"));
  ThreadPool pool(2);
  SessionOptions shared = one_thread("cascade");
  shared.shared_pool = &pool;
  Session a(*model, shared), b(*model, shared);
  own.feed(kTokens);
  a.feed(kTokens);
  b.feed(std::vector<int32_t>(kTokens.rbegin(), kTokens.rend()));
  b.feed(kTokens);
  a.feed(kTokens);
  own.feed(kTokens);
  EXPECT_EQ(&a.pool(), &pool);
  const std::vector<float> x(own.logits(), own.logits() + own.vocab_size());
  const std::vector<float> y(a.logits(), a.logits() + a.vocab_size());
  EXPECT_EQ(x, y);
}

TEST(Session, NonFiniteLogitsStopTheStream) {
  TinyModelSpec spec;
  spec.nan_tensor = "output.weight";
  const auto model = tiny_model("nan_output", spec);
  Session s(*model, one_thread());
  const std::string msg = error_of([&] { s.feed(kTokens); });
  EXPECT_NE(msg.find("non-finite logits (NaN/Inf) at token 5"), std::string::npos) << msg;

  Session scored(*model, one_thread());
  const std::string scored_msg =
      error_of([&] { scored.feed_scored(kTokens, [](int64_t, const float*) {}); });
  EXPECT_NE(scored_msg.find("non-finite logits (NaN/Inf) at token 1"), std::string::npos)
      << scored_msg;
}

// A NaN embedding row reaches every layer's activations (and the Q8 quantization of them).
TEST(Session, NonFiniteActivationsStopTheStream) {
  TinyModelSpec spec;
  spec.weight_type = GgmlType::Q8_0;
  spec.nan_tensor = "token_embd.weight";  // row 0: token 0
  const auto model = tiny_model("nan_embd", spec);
  Session s(*model, one_thread("cascade"));
  s.feed(kTokens);  // token 0 is not among them
  const std::string msg = error_of([&] { s.feed(std::vector<int32_t>{0}); });
  EXPECT_NE(msg.find("non-finite logits (NaN/Inf) at token 6"), std::string::npos) << msg;
}

TEST(Session, ACacheTooLargeForMemoryStatesItsSize) {
  const auto model = tiny_model("huge_cache", TinyModelSpec{});
  SessionOptions o = one_thread();
  o.cache.context = int64_t{1} << 40;  // 2 layers x 2 KV heads x 8 dims x 4 bytes (f16): 2^47 bytes
  const std::string msg = error_of([&] { Session s(*model, o); });
  EXPECT_NE(msg.find("the KV cache needs 140737488355328 bytes"), std::string::npos) << msg;
  o.cache.type_k = o.cache.type_v = "f32";  // 8 bytes: 2^48
  const std::string f32 = error_of([&] { Session s(*model, o); });
  EXPECT_NE(f32.find("the KV cache needs 281474976710656 bytes"), std::string::npos) << f32;
  o.cache.type_k = o.cache.type_v = "f16";

  o.cache.context = std::numeric_limits<int64_t>::max();  // would overflow size_t
  const std::string overflow = error_of([&] { Session s(*model, o); });
  EXPECT_NE(overflow.find("the KV cache needs"), std::string::npos) << overflow;
}

TEST(Session, TooManyBoundedSlotsAreRefused) {
  const auto model = tiny_model("many_slots", TinyModelSpec{});
  SessionOptions o = one_thread("cascade");
  o.cache.sinks = std::numeric_limits<int>::max();  // sinks + size overflows int
  o.cache.size = 16;
  const std::string msg = error_of([&] { Session s(*model, o); });
  // Refused for its size, or (on a machine with 256 GiB to spare) for its slot count.
  EXPECT_TRUE(msg.find("the KV cache needs") != std::string::npos ||
              msg.find("is too many slots") != std::string::npos)
      << msg;
}

}  // namespace
}  // namespace kvc
