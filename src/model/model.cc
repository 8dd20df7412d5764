#include "model/model.h"

#include "base/error.h"
#include "quant/quant.h"
#include "tokenizer/vocab.h"

namespace kvc {

std::unique_ptr<Model> Model::load(const std::string& path) {
  std::unique_ptr<Model> m(new Model());
  m->file_ = GgufFile::open(path);
  try {
    m->config_ = read_config(*m->file_);
    m->weights_ = bind_weights(*m->file_, m->config_);
    m->tokenizer_ = std::make_unique<Tokenizer>(load_vocab(*m->file_));
    if (m->tokenizer_->vocab_size() < m->config_.vocab_size)
      fail("the vocabulary has {} tokens but the embedding has {} rows",
           m->tokenizer_->vocab_size(), m->config_.vocab_size);
    m->chat_format_ = detect_chat_format(*m->file_);
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
  m->transformer_ = std::make_unique<Transformer>(m->config_, m->weights_);
  return m;
}

}  // namespace kvc
