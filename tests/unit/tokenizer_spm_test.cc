// SentencePiece-style merging on a tiny vocabulary built in code: score order, byte fallback,
// the dummy space prefix, special tokens.
#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"

namespace kvc {
namespace {

using Ids = std::vector<int32_t>;

constexpr int kByte0 = 3;        // <0x00> .. <0xFF> are ids 3..258
constexpr int kWords = 3 + 256;  // first ordinary piece

Vocab tiny_spm() {
  Vocab v;
  v.model = "llama";
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.types = {kTokenUnknown, kTokenControl, kTokenControl};
  v.scores = {0, 0, 0};
  static const char* hex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">");
    v.types.push_back(kTokenByte);
    v.scores.push_back(0);
  }
  // piece, score: higher merges first
  const std::pair<const char*, float> words[] = {
      {"\xE2\x96\x81", -1}, {"a", -2}, {"b", -2}, {"c", -2}, {"ab", -5}, {"bc", -3},
      {"\xE2\x96\x81" "a", -4}, {"\xE2\x96\x81" "ab", -6}, {"abc", -7}, {"<turn>", 0}};
  for (auto [t, s] : words) {
    v.tokens.push_back(t);
    v.types.push_back(kTokenNormal);
    v.scores.push_back(s);
  }
  v.types.back() = kTokenControl;  // <turn>
  v.unk = 0, v.bos = 1, v.eos = 2;
  v.add_bos = true;
  return v;
}

const int32_t kSpace = kWords, kA = kWords + 1, kB = kWords + 2, kC = kWords + 3, kAB = kWords + 4,
              kBC = kWords + 5, kSpaceA = kWords + 6, kSpaceAB = kWords + 7, kABC = kWords + 8,
              kTurn = kWords + 9;

TEST(TokenizerSpm, HighestScoringPairMergesFirst) {
  Vocab v = tiny_spm();
  v.tokens[kABC] = "xyz";  // no "abc": the first merge decides the result
  Tokenizer bc_first(v);
  // "bc" (-3) beats "ab" (-5)
  EXPECT_EQ(bc_first.encode("abc", false, false), (Ids{kA, kBC}));
  v.scores[kAB] = -2.5f;
  Tokenizer ab_first(v);
  EXPECT_EQ(ab_first.encode("abc", false, false), (Ids{kAB, kC}));
  // merges go on as long as pairs form tokens: a + bc -> abc
  Tokenizer full(tiny_spm());
  EXPECT_EQ(full.encode("abc", false, false), (Ids{kABC}));
}

TEST(TokenizerSpm, SpacesBecomeU2581) {
  Tokenizer tok(tiny_spm());
  // "▁a" (-4) beats "ab" (-5), then "▁a"+"b" = "▁ab"
  EXPECT_EQ(tok.encode("c ab", false, false), (Ids{kC, kSpaceAB}));
  EXPECT_EQ(tok.decode(tok.encode("c ab", false, false)), "c ab");
}

TEST(TokenizerSpm, DummyPrefixOnlyWhenTheVocabularyAsks) {
  Vocab v = tiny_spm();
  v.add_space_prefix = true;
  Tokenizer with_prefix(std::move(v));
  EXPECT_EQ(with_prefix.encode("ab", true, false), (Ids{1, kSpaceAB}));
  // and after a special token
  EXPECT_EQ(with_prefix.encode("a<turn>a", false, true), (Ids{kSpaceA, kTurn, kSpaceA}));
  // decode drops the prefix space again
  EXPECT_EQ(with_prefix.decode(Ids{kSpaceAB}), "ab");
  Tokenizer without(tiny_spm());
  EXPECT_EQ(without.encode("ab", true, false), (Ids{1, kAB}));
}

TEST(TokenizerSpm, UnknownCharactersFallBackToBytes) {
  Tokenizer tok(tiny_spm());
  const Ids ids = tok.encode("a\xC3\xA9", false, false);  // "aé"
  EXPECT_EQ(ids, (Ids{kA, kByte0 + 0xC3, kByte0 + 0xA9}));
  EXPECT_EQ(tok.decode(ids), "a\xC3\xA9");
  EXPECT_EQ(tok.token_piece(kByte0 + 0x41), "A");
}

TEST(TokenizerSpm, ControlTokensNeedParseSpecial) {
  Tokenizer tok(tiny_spm());
  EXPECT_EQ(tok.encode("a<turn>b", false, true), (Ids{kA, kTurn, kB}));
  const Ids plain = tok.encode("<turn>", false, false);
  EXPECT_EQ(plain.size(), 6u);  // six characters, each by byte fallback
  EXPECT_EQ(plain[0], kByte0 + '<');
  EXPECT_EQ(tok.decode(Ids{kA, kTurn, kB}), "ab");
  EXPECT_EQ(tok.token_piece(kTurn), "<turn>");
}

TEST(TokenizerSpm, LongInputIsFastAndStable) {
  Tokenizer tok(tiny_spm());
  std::string text;
  for (int i = 0; i < 200000; ++i) text += "abc ab ";
  const Ids ids = tok.encode(text, false, false);
  // "abc▁ab▁abc▁ab▁...": the first "abc" merges fully; later ones lose "a" to "▁a" (-4),
  // which outranks "ab" (-5) but not "bc" (-3); one "▁" is left at the end
  ASSERT_EQ(ids.size(), 2 + 199999u * 3 + 1);
  EXPECT_EQ(Ids(ids.begin(), ids.begin() + 8), (Ids{kABC, kSpaceAB, kSpaceA, kBC, kSpaceAB, kSpaceA, kBC, kSpaceAB}));
  EXPECT_EQ(ids.back(), kSpace);
  EXPECT_EQ(tok.decode(ids), text);
}

}  // namespace
}  // namespace kvc
