// The server's pure parts, without a model or a socket: request checking names the field at
// fault, stop strings hold back only what could still become one, the transcript chain tells
// histories apart, and API keys compare whole.
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/api_keys.h"
#include "server/completion_request.h"
#include "server/stop_matcher.h"
#include "server/transcript_hash.h"

namespace kvc::server {
namespace {

RequestDefaults defaults() {
  RequestDefaults d;
  d.n_predict_max = 100;
  return d;
}

// The ApiError that parsing `body` as a chat request throws.
ApiError chat_error(const std::string& body) {
  try {
    parse_chat_request(parse_json_object(body), defaults());
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError{0, "", "(no error)", "", nlohmann::json::object()};
}

TEST(ServerRequest, ParsesTheSamplingFields) {
  const CompletionRequest r = parse_chat_request(
      parse_json_object(R"({"messages":[{"role":"developer","content":"be brief"},
        {"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}],
        "temperature":0,"top_p":0.5,"top_k":7,"min_p":0.1,"seed":42,"max_tokens":12,
        "stop":["\n"],"frequency_penalty":0.5,"presence_penalty":-0.5,"repetition_penalty":1.1,
        "stream":true,"stream_options":{"include_usage":true},"session_id":"abc-1_2"})"),
      defaults());
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "hi there");
  EXPECT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_EQ(r.sampling.top_k, 7);
  EXPECT_EQ(r.sampling.seed, 42u);
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.repeat_penalty, 1.1f);
  EXPECT_EQ(r.max_tokens, 12);
  EXPECT_EQ(r.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(r.stream && r.include_usage);
  EXPECT_EQ(r.session_id, "abc-1_2");
}

TEST(ServerRequest, BadFieldsAre400NamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":101})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":0})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"hi"}],"top_k":-1})", "top_k"},
      {R"({"messages":[{"role":"user","content":"hi"}],"seed":1.5})", "seed"},
      {R"({"messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]})", "stop"},
      {R"({"messages":[{"role":"user","content":"hi"}],"session_id":"a b"})", "session_id"},
      {R"({"messages":[{"role":"user","content":"hi"}],"n":3})", "n"},
      {R"({"messages":[{"role":"tool","content":"hi"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"x"}]})",
       "messages"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "messages[0].content"},
  };
  for (const auto& [body, param] : cases) {
    const ApiError e = chat_error(body);
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, param) << body;
  }
  EXPECT_EQ(chat_error("{\"messages\": \"\xff\"}").status, 400);  // not UTF-8
  EXPECT_EQ(chat_error("[]").status, 400);
}

TEST(ServerRequest, ErrorShapeIsOpenAIs) {
  const nlohmann::json j = chat_error(R"({"messages":[]})").to_json();
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["code"], 400);
  EXPECT_EQ(j["error"]["param"], "messages");
  EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
}

TEST(ServerRequest, SessionIds) {
  EXPECT_TRUE(valid_session_id("abc-DEF_123"));
  EXPECT_TRUE(valid_session_id(std::string(64, 'a')));
  EXPECT_FALSE(valid_session_id(std::string(65, 'a')));
  EXPECT_FALSE(valid_session_id(""));
  EXPECT_FALSE(valid_session_id("../x"));
  EXPECT_FALSE(valid_session_id("a.b"));
}

TEST(StopMatcher, HoldsBackOnlyAPossibleStart) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.push("hello S"), "hello ");
  EXPECT_EQ(m.push("T"), "");
  EXPECT_EQ(m.push("x"), "STx");  // not a stop after all
  EXPECT_EQ(m.push(" then ST"), " then ");
  EXPECT_EQ(m.push("OP and more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("later"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, FlushGivesWhatWasHeld) {
  StopMatcher m({"\n\n", "END"});
  EXPECT_EQ(m.push("a\n"), "a");
  EXPECT_EQ(m.flush(), "\n");
  EXPECT_FALSE(m.stopped());
  StopMatcher none({});
  EXPECT_EQ(none.push("EN"), "EN");
}

TEST(StopMatcher, NeverSplitsAUtf8Character) {
  StopMatcher m({"\xC3\xA9X"});  // "éX"
  EXPECT_EQ(m.push("caf\xC3\xA9"), "caf");  // é might begin the stop string
  EXPECT_EQ(m.push("!"), "\xC3\xA9!");
}

TEST(TranscriptHash, TellsHistoriesApart) {
  const std::vector<ChatMessage> a = {{"user", "hi"}, {"assistant", "hello"}};
  const std::vector<ChatMessage> b = {{"user", "hi"}, {"assistant", "hell"}};
  const std::vector<ChatMessage> c = {{"user", "hiassistant"}, {"", "hello"}};  // same bytes
  const auto la = chain_links(a), lb = chain_links(b), lc = chain_links(c);
  EXPECT_EQ(la[0], lb[0]);
  EXPECT_NE(la[1], lb[1]);
  EXPECT_NE(la[1], lc[1]);
  // A chain continued from a link equals the chain over the whole.
  EXPECT_EQ(chain_links({a[1]}, la[0])[0], la[1]);
}

TEST(ApiKeys, CompareWholeKeys) {
  EXPECT_TRUE(constant_time_equal("sk-abc", "sk-abc"));
  EXPECT_FALSE(constant_time_equal("sk-abc", "sk-ab"));
  EXPECT_FALSE(constant_time_equal("sk-ab", "sk-abc"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  const ApiKeys keys({"one", "two"});
  EXPECT_TRUE(keys.owner("Bearer two", "").has_value());
  EXPECT_TRUE(keys.owner("", "one").has_value());
  EXPECT_FALSE(keys.owner("Bearer three", "").has_value());
  EXPECT_FALSE(keys.owner("", "").has_value());
  EXPECT_NE(*keys.owner("Bearer one", ""), *keys.owner("Bearer two", ""));
  EXPECT_EQ(*ApiKeys({}).owner("", ""), "");
}

}  // namespace
}  // namespace kvc::server
