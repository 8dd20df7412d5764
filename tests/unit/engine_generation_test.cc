// The token loop on a tiny synthetic model: stepping a Generator by hand gives what generate()
// gives (the server interleaves streams by steps, the CLI runs one to the end), stop() ends it
// with the caller's reason, and a full cache stops it with "context".
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/generation.h"
#include "model/model.h"
#include "support/tiny_model.h"

namespace kvc {
namespace {

std::unique_ptr<Model> tiny_model(const std::string& name) {
  const std::string path = test::unique_temp_path("generation_" + name);
  test::write_tiny_model(path, test::TinyModelSpec{});
  return Model::load(path);
}

SessionOptions one_thread(int64_t context) {
  SessionOptions o;
  o.threads = 1;
  o.cache.policy = "full";
  o.cache.context = context;
  return o;
}

SamplingParams seeded() {
  SamplingParams p;
  p.seed = 7;
  return p;
}

const std::vector<int32_t> kPrompt = {1, 17, 42, 99, 7};

TEST(Generator, StepsEqualGenerate) {
  const auto model = tiny_model("steps");
  const Tokenizer& tok = model->tokenizer();

  Session a(*model, one_thread(64));
  Sampler sa(seeded(), a.vocab_size());
  std::vector<int32_t> ha = kPrompt;
  a.feed(ha);
  const Generation whole = generate(a, sa, tok, ha, 12, true, [](std::string_view) {});

  Session b(*model, one_thread(64));
  Sampler sb(seeded(), b.vocab_size());
  std::vector<int32_t> hb = kPrompt;
  b.feed(hb);
  std::string streamed;
  Generator g(b, sb, tok, hb, 12, true, [&](std::string_view s) { streamed += s; });
  int steps = 0;
  while (g.step()) ++steps;
  EXPECT_LE(steps, 12);
  EXPECT_EQ(g.result().tokens, whole.tokens);
  EXPECT_EQ(g.result().stop, whole.stop);
  EXPECT_EQ(streamed, g.result().text);
  EXPECT_EQ(b.n_past(), a.n_past());
}

TEST(Generator, StopEndsWithTheCallersReason) {
  const auto model = tiny_model("stop");
  Session s(*model, one_thread(64));
  SamplingParams p = seeded();
  p.banned = model->tokenizer().eog_ids();  // only stop() or the limit can end it
  Sampler sampler(p, s.vocab_size());
  std::vector<int32_t> history = kPrompt;
  s.feed(history);
  Generator g(s, sampler, model->tokenizer(), history, -1, true, [](std::string_view) {});
  ASSERT_TRUE(g.step());
  ASSERT_TRUE(g.step());
  g.stop("stop");
  EXPECT_TRUE(g.done());
  EXPECT_FALSE(g.step());
  EXPECT_EQ(g.result().stop, "stop");
  EXPECT_EQ(g.result().n_generated, 2);
}

TEST(Generator, FullCacheStopsWithContext) {
  const auto model = tiny_model("context");
  Session s(*model, one_thread(8));
  SamplingParams p = seeded();
  p.banned = model->tokenizer().eog_ids();
  Sampler sampler(p, s.vocab_size());
  std::vector<int32_t> history = kPrompt;
  s.feed(history);
  const Generation g = generate(s, sampler, model->tokenizer(), history, 100, true,
                                [](std::string_view) {});
  EXPECT_EQ(g.stop, "context");
  EXPECT_EQ(s.n_past(), 8);
  EXPECT_EQ(g.n_generated, 4);  // 3 fed after the prompt, the 4th found no room
}

}  // namespace
}  // namespace kvc
