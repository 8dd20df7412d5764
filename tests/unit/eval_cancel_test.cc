// Cancellation inside a feed: a session with a set flag throws Cancelled and starts its stream
// over; streaming perplexity turns that into a partial result.
#include <atomic>

#include <gtest/gtest.h>

#include "base/cancelled.h"
#include "engine/session.h"
#include "eval/perplexity.h"
#include "support/tiny_model.h"

namespace kvc {
namespace {

std::unique_ptr<Model> tiny_model() {
  const std::string path = test::unique_temp_path("cancel");
  test::write_tiny_model(path, test::TinyModelSpec{});
  return Model::load(path);
}

std::vector<int32_t> tokens(int n) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 37) % 256;
  return t;
}

SessionOptions options() {
  SessionOptions o;
  o.threads = 1;
  o.stride = 8;
  o.cache.policy = "cascade";
  o.cache.sinks = 2;
  o.cache.size = 8;
  o.cache.cascades = 2;
  return o;
}

TEST(SessionCancel, ASetFlagStopsTheFeedAndResetsTheStream) {
  const auto model = tiny_model();
  Session session(*model, options());
  std::atomic<bool> cancel{false};
  session.set_cancel(&cancel);
  session.feed(tokens(20));
  EXPECT_EQ(session.n_past(), 20);
  cancel = true;
  EXPECT_THROW(session.feed(tokens(20)), Cancelled);
  EXPECT_EQ(session.n_past(), 0) << "a half-fed stream must not stay";
  cancel = false;
  session.feed(tokens(5));
  EXPECT_EQ(session.n_past(), 5);
}

TEST(SessionCancel, PerplexityReportsACancelledStride) {
  const auto model = tiny_model();
  Session session(*model, options());
  std::atomic<bool> cancel{true};
  session.set_cancel(&cancel);
  PerplexityOptions po;
  po.bucket = 16;
  const PerplexityResult r = streaming_perplexity(session, tokens(40), po);
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.tokens_fed, 0);
  EXPECT_EQ(r.total.count, 0);
}

}  // namespace
}  // namespace kvc
