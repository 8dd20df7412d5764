// A loaded model: the mapped file, its hyper-parameters, its weights, its tokenizer, and the
// forward pass over them. Immutable once loaded, so sessions can share it.
#pragma once

#include <memory>
#include <string>

#include "gguf/gguf_file.h"
#include "model/config.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace kvc {

class Model {
 public:
  // Maps the file and checks everything the forward pass will touch; throws kvc::Error.
  static std::unique_ptr<Model> load(const std::string& path);

  const ModelConfig& config() const { return config_; }
  const GgufFile& file() const { return *file_; }
  const ModelWeights& weights() const { return weights_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const Transformer& transformer() const { return *transformer_; }
  ChatFormat chat_format() const { return chat_format_; }
  size_t weight_bytes() const { return weights_.matrix_bytes(); }

 private:
  Model() = default;
  std::unique_ptr<GgufFile> file_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Transformer> transformer_;
  ChatFormat chat_format_ = ChatFormat::ChatML;
};

}  // namespace kvc
