// StreamDecoder on characters split across byte tokens, and the two chat formats.
#include <gtest/gtest.h>

#include "tokenizer/chat_template.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace kvc {
namespace {

// A SentencePiece vocabulary of byte tokens and a few pieces: every character outside it is
// spelled as UTF-8 bytes, one token each.
Tokenizer byte_tokenizer() {
  Vocab v;
  v.model = "llama";
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.types = {kTokenUnknown, kTokenControl, kTokenControl};
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">");
    v.types.push_back(kTokenByte);
  }
  for (const char* t : {"a", "\xE2\x96\x81", "\xC3\xA9"}) {  // a, ▁, é
    v.tokens.push_back(t);
    v.types.push_back(kTokenNormal);
  }
  v.scores.assign(v.tokens.size(), 0.0f);
  v.unk = 0, v.bos = 1, v.eos = 2;
  return Tokenizer(std::move(v));
}

int32_t byte_id(uint8_t b) { return 3 + b; }

TEST(StreamDecoder, HoldsBackSplitCharacters) {
  Tokenizer tok = byte_tokenizer();
  const std::string text = "a \xF0\x9F\x98\x80 \xE4\xBD\xA0\xC3\xA9";  // "a 😀 你é"
  const auto ids = tok.encode(text, false, false);
  StreamDecoder stream(tok);
  std::vector<std::string> parts;
  for (int32_t id : ids) parts.push_back(stream.push(id));
  parts.push_back(stream.flush());
  std::string joined;
  for (const auto& p : parts) {
    EXPECT_EQ(utf8_sanitize(p), p) << "emitted a partial character";
    joined += p;
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(joined, tok.decode(ids));
  // the four bytes of the emoji come out together, with its last byte
  const size_t emoji = std::find(ids.begin(), ids.end(), byte_id(0xF0)) - ids.begin();
  ASSERT_LT(emoji + 3, ids.size());
  EXPECT_EQ(parts[emoji], "");
  EXPECT_EQ(parts[emoji + 1], "");
  EXPECT_EQ(parts[emoji + 2], "");
  EXPECT_EQ(parts[emoji + 3], "\xF0\x9F\x98\x80");
}

TEST(StreamDecoder, FlushReplacesAnUnfinishedCharacter) {
  Tokenizer tok = byte_tokenizer();
  StreamDecoder stream(tok);
  EXPECT_EQ(stream.push(byte_id('a')), "a");
  EXPECT_EQ(stream.push(byte_id(0xE4)), "");
  EXPECT_EQ(stream.push(byte_id(0xBD)), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD\xEF\xBF\xBD");  // U+FFFD per byte
  // a stray continuation byte can never complete: replaced at once
  EXPECT_EQ(stream.push(byte_id(0x80)), "\xEF\xBF\xBD");
  EXPECT_EQ(stream.push(1), "");  // control tokens decode to nothing
}

TEST(ChatTemplate, ChatML) {
  const std::vector<ChatMessage> msgs = {{"system", "Be brief."}, {"user", "hi"}, {"assistant", "hello"}, {"user", "bye"}};
  EXPECT_EQ(apply_chat_template(ChatFormat::ChatML, msgs, true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
            "<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nbye<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template(ChatFormat::ChatML, {{"user", "hi"}}, false), "<|im_start|>user\nhi<|im_end|>\n");
}

TEST(ChatTemplate, SmolLM2AddsItsDefaultSystemPrompt) {
  EXPECT_EQ(apply_chat_template(ChatFormat::SmolLM2, {{"user", "hi"}}, true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  // a system message of the caller's replaces it
  EXPECT_EQ(apply_chat_template(ChatFormat::SmolLM2, {{"system", "S"}, {"user", "hi"}}, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n");
}

TEST(ChatTemplate, GemmaFoldsTheSystemPromptIntoTheFirstTurn) {
  const std::vector<ChatMessage> msgs = {{"system", "Be brief."}, {"user", "  hi\n"}, {"assistant", "hello"}, {"user", "bye"}};
  EXPECT_EQ(apply_chat_template(ChatFormat::Gemma, msgs, true),
            "<start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n"
            "<start_of_turn>model\nhello<end_of_turn>\n"
            "<start_of_turn>user\nbye<end_of_turn>\n"
            "<start_of_turn>model\n");
  EXPECT_EQ(apply_chat_template(ChatFormat::Gemma, {{"user", "hi"}}, false), "<start_of_turn>user\nhi<end_of_turn>\n");
}

TEST(ChatTemplate, DetectsTheFormat) {
  EXPECT_EQ(detect_chat_format("{{ '<start_of_turn>' + role }}", "gemma3"), ChatFormat::Gemma);
  EXPECT_EQ(detect_chat_format("", "gemma3"), ChatFormat::Gemma);
  EXPECT_EQ(detect_chat_format("{{'<|im_start|>' + message['role']}}", "qwen2"), ChatFormat::ChatML);
  EXPECT_EQ(detect_chat_format("'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>'", "llama"),
            ChatFormat::SmolLM2);
  EXPECT_EQ(detect_chat_format("", "llama"), ChatFormat::ChatML);
}

}  // namespace
}  // namespace kvc
