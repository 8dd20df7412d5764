// cache_config_error(): the one check every front end and the factory share.
#include <gtest/gtest.h>

#include "base/error.h"
#include "cache/kv_cache.h"
#include "ops/rope.h"

namespace kvc {
namespace {

CacheConfig config(const std::string& policy, int sinks, int size, int cascades = 4) {
  CacheConfig c;
  c.policy = policy;
  c.sinks = sinks;
  c.size = size;
  c.cascades = cascades;
  return c;
}

TEST(CacheConfig, AcceptsTheDefaultsOfEveryPolicy) {
  for (const char* policy : {"full", "window", "cascade", "h2o"})
    EXPECT_EQ(cache_config_error(config(policy, 64, 2048)), "") << policy;
}

// The factory used to build these, or fail only at construction; every front end now refuses
// them up front with the same words.
TEST(CacheConfig, RefusesWhatNoCacheCanBe) {
  EXPECT_NE(cache_config_error(config("cascade", 64, 2048, 64)), "") << "more than 30 cascades";
  EXPECT_NE(cache_config_error(config("cascade", 64, 2048, 0)), "");
  EXPECT_NE(cache_config_error(config("cascade", 64, 1000, 3)), "") << "3 does not divide 1000";
  EXPECT_NE(cache_config_error(config("h2o", 64, 1)), "") << "h2o needs a recent and a heavy half";
  EXPECT_NE(cache_config_error(config("window", -1, 16)), "");
  EXPECT_NE(cache_config_error(config("window", 4, 0)), "");
  EXPECT_NE(cache_config_error(config("lru", 4, 16)), "");
  CacheConfig beta = config("cascade", 4, 16);
  beta.beta = 0.0f;
  EXPECT_NE(cache_config_error(beta), "");
  CacheConfig full = config("full", 0, 0);
  full.context = 0;
  EXPECT_NE(cache_config_error(full), "");
}

// Slot counts that would overflow an int (sinks + size) or a byte count are refused.
TEST(CacheConfig, BoundsTheSlotCounts) {
  EXPECT_NE(cache_config_error(config("cascade", 2147483647, 2048)), "");
  EXPECT_NE(cache_config_error(config("window", 64, 2147483647)), "");
  EXPECT_NE(cache_config_error(config("window", kMaxCacheSlots / 2 + 1, kMaxCacheSlots / 2)), "");
  EXPECT_EQ(cache_config_error(config("window", kMaxCacheSlots / 2, kMaxCacheSlots / 2)), "");
  CacheConfig full = config("full", 0, 0);
  full.context = kMaxCacheSlots + 1;
  EXPECT_NE(cache_config_error(full), "");
}

TEST(CacheConfig, NamesTheFieldsAsTheCallerDoes) {
  CacheFieldNames flags;
  flags.size = "--cache-size";
  flags.cascades = "--cascades";
  EXPECT_EQ(cache_config_error(config("cascade", 64, 1000, 3), flags),
            "--cache-size (1000) must be a multiple of --cascades (3): each cascade holds an "
            "equal share of the slots");
  EXPECT_EQ(cache_config_error(config("cascade", 64, 2048, 64), flags),
            "--cascades must be in 1..30, got 64");
}

// Storage types: f16 by default (llama.cpp's), f32 and q8_0 too, for every policy; anything else
// is refused naming the field.
TEST(CacheConfig, StorageTypes) {
  CacheConfig c = config("window", 4, 16);
  EXPECT_EQ(c.type_k, "f16");
  EXPECT_EQ(c.type_v, "f16");
  for (const char* policy : {"full", "window", "cascade", "h2o"})
    for (const char* type : {"f32", "f16", "q8_0"}) {
      CacheConfig t = config(policy, 4, 16);
      t.type_k = t.type_v = type;
      EXPECT_EQ(cache_config_error(t), "") << policy << " " << type;
    }
  CacheFieldNames flags;
  flags.type_k = "--cache-type-k";
  flags.type_v = "--cache-type-v";
  c.type_k = "q4_0";
  EXPECT_EQ(cache_config_error(c, flags), "--cache-type-k must be f32, f16 or q8_0, got 'q4_0'");
  c.type_k = "f32", c.type_v = "bf16";
  EXPECT_EQ(cache_config_error(c, flags), "--cache-type-v must be f32, f16 or q8_0, got 'bf16'");
  CacheConfig full = config("full", 0, 0);  // checked for `full` too
  full.type_v = "";
  EXPECT_NE(cache_config_error(full), "");
}

TEST(CacheConfig, TheFactoryRefusesWhatTheCheckRefuses) {
  Rope rope(RopeStyle::Norm, 4, 4, 10000.0);
  try {
    make_layer_cache(config("cascade", 64, 2048, 64), {1, 4}, rope);
    FAIL() << "built a cache of 64 cascades";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "kv cache: cascades must be in 1..30, got 64");
  }
  EXPECT_THROW(make_layer_cache(config("h2o", 4, 1), {1, 4}, rope), Error);
}

}  // namespace
}  // namespace kvc
