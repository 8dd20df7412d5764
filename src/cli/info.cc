// kvcascade info: what a GGUF model is, what it costs in memory, and its metadata.
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "cache/kv_cache.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "quant/kv_storage.h"
#include "quant/quant.h"

namespace kvc::cli {

namespace {

struct InfoFlags {
  ModelFlags model;
  CacheFlags cache;
  bool json = false;
  size_t max_array = 8;
};

const char* rope_style_name(RopeStyle s) { return s == RopeStyle::Neox ? "neox" : "norm"; }

int run_info(InfoFlags& f) {
  validate(f.cache);
  const auto model = load_model(f.model.model);
  const ModelConfig& c = model->config();
  const GgufFile& file = model->file();
  const SessionOptions options = session_options(f.model, f.cache);

  // Tensor types by count and bytes, in ggml's order.
  std::map<uint32_t, std::pair<int, size_t>> types;
  size_t tensor_bytes = 0;
  int64_t n_params = 0;
  for (const GgufTensor& t : file.tensors()) {
    auto& [count, bytes] = types[static_cast<uint32_t>(t.type)];
    ++count;
    bytes += t.n_bytes;
    tensor_bytes += t.n_bytes;
    n_params += t.n_elements;
  }
  const size_t kv_per_token_all =
      static_cast<size_t>(c.n_layers) * c.n_kv_heads * c.head_dim * 2 * sizeof(float);
  // The same in the storage types the cache flags chose (validated when the model was loaded).
  const KvShape stored = with_storage(KvShape{c.n_kv_heads, c.head_dim}, options.cache);
  const KvType tk = stored.k_type, tv = stored.v_type;
  const size_t kv_row_pair = kv_row_bytes(tk, c.head_dim) + kv_row_bytes(tv, c.head_dim);
  const size_t kv_stored_all = static_cast<size_t>(c.n_layers) * c.n_kv_heads * kv_row_pair;
  const size_t kv_stored_global =
      static_cast<size_t>(c.n_layers - c.n_local_layers()) * c.n_kv_heads * kv_row_pair;
  const size_t kv_policy = model->transformer().kv_bytes(options.cache);

  nlohmann::json j;
  j["file"] = {{"path", f.model.model}, {"gguf_version", file.version()}, {"bytes", file.size()}};
  j["architecture"] = c.arch_name;
  j["name"] = c.name;
  j["hyperparameters"] = {
      {"n_layers", c.n_layers},        {"n_embd", c.n_embd},
      {"n_ff", c.n_ff},                {"n_heads", c.n_heads},
      {"n_kv_heads", c.n_kv_heads},    {"head_dim", c.head_dim},
      {"vocab_size", c.vocab_size},    {"context_length", c.context_length},
      {"rms_eps", as_written(c.rms_eps)},        {"tied_embeddings", c.tied_embeddings},
      {"rope_style", rope_style_name(c.rope_style)},
      {"rope_dims", c.rope_dims},      {"rope_base", c.rope_base},
      {"rope_base_local", c.rope_base_local},
      {"sliding_window", c.sliding_window},
      {"n_local_layers", c.n_local_layers()},
      {"final_softcap", as_written(c.final_softcap)},
  };
  j["tokenizer"] = model->tokenizer().describe();
  j["chat_format"] = chat_format_name(model->chat_format());
  nlohmann::json type_list = nlohmann::json::array();
  for (const auto& [type, cb] : types)
    type_list.push_back({{"type", quant::type_name(type)}, {"count", cb.first}, {"bytes", cb.second}});
  j["tensors"] = {{"count", file.tensors().size()},
                  {"bytes", tensor_bytes},
                  {"params", n_params},
                  {"types", type_list}};
  j["weight_bytes"] = model->weight_bytes();
  j["kv_cache"] = {{"bytes_per_token_all_layers_f32", kv_per_token_all},
                   {"bytes_per_token_global_layers_f32", c.kv_bytes_per_token_global()},
                   {"bytes_per_token_all_layers", kv_stored_all},
                   {"bytes_per_token_global_layers", kv_stored_global},
                   {"policy", options.cache.policy},
                   {"description", describe_cache(options.cache)},
                   {"type_k", options.cache.type_k},
                   {"type_v", options.cache.type_v},
                   {"bytes", kv_policy}};
  nlohmann::json meta = nlohmann::json::object();
  for (const auto& [key, value] : file.metadata()) meta[key] = value.to_display(f.max_array);

  if (f.json) {
    j["metadata"] = meta;
    print_json(j, 2);
    return 0;
  }

  std::printf("file:          %s (GGUF v%u, %s)\n", f.model.model.c_str(), file.version(),
              format_bytes(file.size()).c_str());
  std::printf("architecture:  %s\n", c.arch_name.c_str());
  std::printf("name:          %s\n", c.name.c_str());
  if (c.n_local_layers() > 0)
    std::printf("layers:        %d (%d local, sliding window %d)\n", c.n_layers, c.n_local_layers(),
                c.sliding_window);
  else
    std::printf("layers:        %d\n", c.n_layers);
  std::printf("embedding:     %d, FFN %d\n", c.n_embd, c.n_ff);
  std::printf("heads:         %d query, %d KV, head dim %d\n", c.n_heads, c.n_kv_heads, c.head_dim);
  std::printf("vocabulary:    %d%s\n", c.vocab_size, c.tied_embeddings ? " (tied embeddings)" : "");
  std::printf("context:       %lld (trained)\n", static_cast<long long>(c.context_length));
  std::printf("rope:          %s, %d dims, base %g", rope_style_name(c.rope_style), c.rope_dims,
              c.rope_base);
  if (c.n_local_layers() > 0) std::printf(" (local layers %g)", c.rope_base_local);
  std::printf("\n");
  std::printf("rms eps:       %g\n", c.rms_eps);
  std::printf("tokenizer:     %s\n", model->tokenizer().describe().c_str());
  std::printf("chat format:   %s\n", chat_format_name(model->chat_format()));
  std::printf("tensors:       %zu, %s, %.1fM parameters\n", file.tensors().size(),
              format_bytes(tensor_bytes).c_str(), n_params / 1e6);
  for (const auto& [type, cb] : types)
    std::printf("  %-8s %5d tensors, %s\n", quant::type_name(type), cb.first,
                format_bytes(cb.second).c_str());
  std::printf("weights:       %s (matrices the forward pass reads)\n",
              format_bytes(model->weight_bytes()).c_str());
  std::printf("KV per token:  %zu bytes over all layers (%zu on the global layers), keys %s, "
              "values %s\n",
              kv_stored_all, kv_stored_global, kv_type_name(tk), kv_type_name(tv));
  std::printf("KV cache:      %s of keys and values for %s\n", format_bytes(kv_policy).c_str(),
              describe_cache(options.cache).c_str());
  std::printf("metadata (%zu keys):\n", file.metadata().size());
  for (const auto& [key, value] : file.metadata())
    std::printf("  %s = %s\n", key.c_str(), value.to_display(f.max_array).c_str());
  return 0;
}

}  // namespace

Command add_info(CLI::App& root) {
  auto flags = std::make_shared<InfoFlags>();
  CLI::App* app = root.add_subcommand("info", "describe a GGUF model and its memory needs");
  add_model_flags(*app, flags->model);
  add_cache_flags(*app, flags->cache);
  app->add_flag("--json", flags->json, "print one JSON object");
  app->add_option("--max-array", flags->max_array, "array elements shown per metadata value");
  return {app, [flags] { return run_info(*flags); }};
}

}  // namespace kvc::cli
