// Byte-level BPE on a tiny vocabulary built in code: merge order, pre-split, byte fallback,
// special tokens.
#include <gtest/gtest.h>

#include "base/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace kvc {
namespace {

using Ids = std::vector<int32_t>;

// Token texts are in GPT-2's byte mapping: " a" is stored as "Ġa".
Vocab tiny_bpe(const std::vector<std::pair<std::string, std::string>>& merges) {
  Vocab v;
  v.model = "gpt2";
  v.pre = "smollm";
  for (const char* t : {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>",  // 0..3
                        "a", "b", "c", " ", "ab", "bc", "abc", " a", " ab", "1", "2", "!", "\n",  // 4..16
                        "x", "A", "B", "C", "<", ">"}) {  // 17..22
    v.tokens.push_back(gpt2_encode_bytes(t));
  }
  v.types.assign(v.tokens.size(), kTokenNormal);
  v.types[0] = v.types[1] = v.types[2] = kTokenControl;
  v.types[3] = kTokenUserDefined;
  for (const auto& [left, right] : merges) {
    v.merges.push_back(gpt2_encode_bytes(left) + " " + gpt2_encode_bytes(right));
  }
  v.bos = 1;
  v.eos = 0;
  return v;
}

TEST(TokenizerBpe, MergesApplyInRankOrder) {
  // "b c" outranks "a b": abc -> a + bc, and no "a bc" merge exists
  Tokenizer first_bc(tiny_bpe({{"b", "c"}, {"a", "b"}, {"ab", "c"}}));
  EXPECT_EQ(first_bc.encode("abc", false, false), (Ids{4, 9}));
  // "a b" first, then "ab c"
  Tokenizer first_ab(tiny_bpe({{"a", "b"}, {"b", "c"}, {"ab", "c"}}));
  EXPECT_EQ(first_ab.encode("abc", false, false), (Ids{10}));
  // equal-rank candidates: the leftmost pair merges first ("a b" at 0 and 2 of "abab")
  EXPECT_EQ(first_ab.encode("abab", false, false), (Ids{8, 8}));
}

TEST(TokenizerBpe, PreSplitKeepsWordsApart) {
  // "b " would merge first if words were not split apart; " ab" is one word (" ?\p{L}+")
  Tokenizer tok(tiny_bpe({{"b", " "}, {" ", "a"}, {" a", "b"}, {"a", "b"}}));
  EXPECT_EQ(tok.encode("ab ab", false, false), (Ids{8, 12}));
  // smollm splits every digit on its own before the GPT-2 regex
  EXPECT_EQ(tok.encode("12", false, false), (Ids{13, 14}));
  // "!" and "\n" are separate pieces; nothing merges across them
  EXPECT_EQ(tok.encode("a!\nb", false, false), (Ids{4, 15, 16, 5}));
}

TEST(TokenizerBpe, UnknownCharactersFallBackToSingleByteTokens) {
  Tokenizer tok(tiny_bpe({{"a", "b"}}));
  // 'é' has no token and its bytes map to characters with no token: dropped, as llama.cpp does
  EXPECT_EQ(tok.encode("a\xC3\xA9" "b", false, false), (Ids{4, 5}));
}

TEST(TokenizerBpe, SpecialTokensOnlyWhenParsingSpecial) {
  Tokenizer tok(tiny_bpe({{"a", "b"}}));
  EXPECT_EQ(tok.encode("<|im_start|>ab<|im_end|>", false, true), (Ids{1, 8, 2}));
  // not parsed: the text is ordinary characters
  const Ids plain = tok.encode("<|im_start|>", false, false);
  EXPECT_EQ(plain.front(), 21);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  // user-defined tokens are split out either way
  EXPECT_EQ(tok.encode("a<tool>b", false, false), (Ids{4, 3, 5}));
}

TEST(TokenizerBpe, LongerSpecialTokensWinEvenWhenTheyStartLater) {
  // llama.cpp splits the longest special token first, over the whole text: in "xABC" the
  // 3-byte "ABC" claims its bytes before the 2-byte "xA" is looked for.
  Vocab v = tiny_bpe({});
  v.tokens.push_back("ABC");  // 23
  v.tokens.push_back("xA");   // 24
  v.types.push_back(kTokenControl);
  v.types.push_back(kTokenControl);
  Tokenizer tok(std::move(v));
  EXPECT_EQ(tok.encode("xABC", false, true), (Ids{17, 23}));
  EXPECT_EQ(tok.encode("xAxA", false, true), (Ids{24, 24}));
}

TEST(TokenizerBpe, BosFollowsTheVocabulary) {
  Vocab v = tiny_bpe({});
  v.add_bos = true;
  Tokenizer with_bos(v);
  EXPECT_EQ(with_bos.encode("a", true, false), (Ids{1, 4}));
  EXPECT_EQ(with_bos.encode("a", false, false), (Ids{4}));
  Tokenizer without(tiny_bpe({}));
  EXPECT_EQ(without.encode("a", true, false), (Ids{4}));
}

TEST(TokenizerBpe, DecodeUnmapsBytesAndHidesControlTokens) {
  Tokenizer tok(tiny_bpe({{"a", "b"}, {" ", "a"}, {" a", "b"}}));
  const Ids ids = tok.encode("<|im_start|>ab ab<tool>\n", false, true);
  EXPECT_EQ(tok.decode(ids), "ab ab<tool>\n");
  EXPECT_EQ(tok.token_piece(1), "<|im_start|>");
  EXPECT_EQ(tok.token_piece(12), " ab");
  EXPECT_TRUE(tok.is_eog(0));  // <|endoftext|> and <|im_end|> end generation
  EXPECT_TRUE(tok.is_eog(2));
  EXPECT_FALSE(tok.is_eog(1));
  EXPECT_EQ(tok.describe(), "byte-level BPE (pre: smollm), 23 tokens");
}

TEST(TokenizerBpe, RejectsUnknownPreTokenizer) {
  Vocab v = tiny_bpe({});
  v.pre = "no-such-pre";
  EXPECT_THROW(Tokenizer{v}, Error);
  v.model = "t5";
  EXPECT_THROW(Tokenizer{v}, Error);
}

}  // namespace
}  // namespace kvc
