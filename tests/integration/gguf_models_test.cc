// The GGUF reader on the two shipped models: headers, metadata and tensor tables as llama.cpp
// reports them (tensor counts, architecture, block counts, vocabularies, tensor types).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "gguf/gguf_file.h"
#include "quant/quant.h"

namespace kvc {
namespace {

const std::string kSmol = std::string(KVC_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kGemma = std::string(KVC_SOURCE_DIR) + "/models/gemma-3-270m-q4_k_m.gguf";

std::set<std::string> type_names(const GgufFile& f) {
  std::set<std::string> names;
  for (const GgufTensor& t : f.tensors()) names.insert(quant::type_name(static_cast<uint32_t>(t.type)));
  return names;
}

// Tensors tile the data section in order, each aligned, up to the end of the file.
void expect_data_section_is_tight(const GgufFile& f) {
  uint64_t end = 0;
  for (const GgufTensor& t : f.tensors()) {
    EXPECT_EQ(t.offset % f.alignment(), 0u) << t.name;
    EXPECT_EQ(t.data, f.bytes() + f.data_offset() + t.offset) << t.name;
    end = std::max<uint64_t>(end, t.offset + t.n_bytes);
  }
  EXPECT_LE(f.data_offset() + end, f.size());
  EXPECT_GT(f.data_offset() + end + f.alignment(), f.size());
}

TEST(GgufModels, SmolLM2) {
  if (!std::filesystem::exists(kSmol)) GTEST_SKIP() << kSmol << " missing (scripts/fetch-model.sh)";
  const auto f = GgufFile::open(kSmol);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->tensors().size(), 272u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
  EXPECT_EQ(f->get_int("llama.block_count"), 30);
  EXPECT_EQ(f->get_int("llama.embedding_length"), 576);
  EXPECT_EQ(f->get_int("llama.feed_forward_length"), 1536);
  EXPECT_EQ(f->get_int("llama.attention.head_count"), 9);
  EXPECT_EQ(f->get_int("llama.attention.head_count_kv"), 3);
  EXPECT_EQ(f->get_int("llama.context_length"), 8192);
  EXPECT_EQ(f->get_float("llama.rope.freq_base"), 100000.0);
  EXPECT_FLOAT_EQ(static_cast<float>(f->get_float("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f->find_bool("tokenizer.ggml.add_bos_token"), false);
  const GgufValue& tokens = f->get_array("tokenizer.ggml.tokens");
  EXPECT_EQ(tokens.array_size(), 49152u);
  EXPECT_EQ(tokens.string_at(0), "<|endoftext|>");
  EXPECT_EQ(tokens.string_at(1), "<|im_start|>");
  EXPECT_EQ(f->get_array("tokenizer.ggml.merges").array_size(), 48900u);
  EXPECT_EQ(f->get_array("tokenizer.ggml.token_type").int_at(0), 3);
  EXPECT_EQ(f->get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(f->get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_NE(f->get_string("tokenizer.chat_template").find("<|im_start|>"), std::string::npos);

  const GgufTensor& embd = f->require_tensor("token_embd.weight");
  EXPECT_EQ(embd.type, GgmlType::Q8_0);
  EXPECT_EQ(embd.dims, (std::vector<int64_t>{576, 49152}));
  EXPECT_EQ(embd.n_bytes, 49152u * 18 * 34);
  const GgufTensor& down = f->require_tensor("blk.29.ffn_down.weight");
  EXPECT_EQ(down.type, GgmlType::Q4_1);
  EXPECT_EQ(down.dims, (std::vector<int64_t>{1536, 576}));
  EXPECT_EQ(f->require_tensor("blk.0.attn_k.weight").rows(), 192);
  EXPECT_EQ(f->require_tensor("output_norm.weight").type, GgmlType::F32);
  EXPECT_EQ(f->tensor("blk.30.attn_q.weight"), nullptr);
  EXPECT_EQ(f->tensor("output.weight"), nullptr);  // tied embeddings
  EXPECT_EQ(type_names(*f), (std::set<std::string>{"f32", "q4_1", "q8_0"}));
  expect_data_section_is_tight(*f);
}

TEST(GgufModels, Gemma3) {
  if (!std::filesystem::exists(kGemma)) GTEST_SKIP() << kGemma << " missing (scripts/fetch-model.sh)";
  const auto f = GgufFile::open(kGemma);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->tensors().size(), 236u);
  EXPECT_EQ(f->get_string("general.architecture"), "gemma3");
  EXPECT_EQ(f->get_int("gemma3.block_count"), 18);
  EXPECT_EQ(f->get_int("gemma3.embedding_length"), 640);
  EXPECT_EQ(f->get_int("gemma3.feed_forward_length"), 2048);
  EXPECT_EQ(f->get_int("gemma3.attention.head_count"), 4);
  EXPECT_EQ(f->get_int("gemma3.attention.head_count_kv"), 1);
  EXPECT_EQ(f->get_int("gemma3.attention.key_length"), 256);
  EXPECT_EQ(f->get_int("gemma3.attention.sliding_window"), 512);
  EXPECT_EQ(f->get_int("gemma3.context_length"), 32768);
  EXPECT_EQ(f->get_float("gemma3.rope.freq_base"), 1e6);
  EXPECT_EQ(f->find_float("gemma3.rope.freq_base_swa"), std::nullopt);  // loaders fall back to 1e4
  EXPECT_EQ(f->get_string("tokenizer.ggml.model"), "llama");
  const GgufValue& tokens = f->get_array("tokenizer.ggml.tokens");
  EXPECT_EQ(tokens.array_size(), 262144u);
  EXPECT_EQ(tokens.string_at(2), "<bos>");
  EXPECT_EQ(f->get_array("tokenizer.ggml.scores").array_size(), 262144u);
  EXPECT_EQ(f->get_array("tokenizer.ggml.scores").float_at(0), -1000.0);
  EXPECT_EQ(f->get_int("tokenizer.ggml.bos_token_id"), 2);
  EXPECT_EQ(f->find_bool("tokenizer.ggml.add_bos_token"), true);

  const GgufTensor& embd = f->require_tensor("token_embd.weight");
  EXPECT_EQ(embd.type, GgmlType::Q8_0);
  EXPECT_EQ(embd.dims, (std::vector<int64_t>{640, 262144}));
  EXPECT_EQ(f->require_tensor("blk.0.attn_q_norm.weight").dims, (std::vector<int64_t>{256}));
  EXPECT_EQ(f->require_tensor("blk.0.ffn_down.weight").type, GgmlType::Q6_K);
  EXPECT_EQ(f->require_tensor("blk.0.attn_output.weight").type, GgmlType::Q4_K);
  EXPECT_EQ(f->require_tensor("blk.17.post_ffw_norm.weight").type, GgmlType::F32);
  EXPECT_EQ(f->tensor("blk.18.attn_q.weight"), nullptr);
  EXPECT_EQ(type_names(*f), (std::set<std::string>{"f32", "q4_K", "q5_0", "q6_K", "q8_0"}));
  expect_data_section_is_tight(*f);
}

}  // namespace
}  // namespace kvc
