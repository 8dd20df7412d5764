// The KV cache policy interface: what attention reads, and how a policy learns which keys mattered.
//
// One LayerKvCache per transformer layer holds every KV head of that layer. A forward pass over a
// chunk of n tokens does, per layer:
//   1. positions: the chunk's tokens sit at cache positions next_position() + j, j in [0, n).
//   2. view(): the slots attention reads, as segments per KV head. Keys in a segment are stored
//      already rotated (RoPE) at a virtual position v; the key's real position is
//      v + segment.pos_offset, so attention rotates the query at (query_pos - pos_offset) once
//      per segment and gets exact relative distances without re-rotating the cache.
//   3. attention adds into segment.mass[slot] the EMA-weighted attention mass each slot received
//      from the chunk's queries (max over the query heads sharing the KV head), and writes the
//      same for the chunk's own tokens into chunk_mass -- only if wants_mass().
//   4. commit(): the policy updates its scores from the masses and inserts the chunk's tokens.
// The forward pass never branches on the policy; the policy never sees a matrix.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/state_fields.h"
#include "quant/kv_storage.h"

namespace kvc {

// What attention reads of one KV head: a run of slots [0, n) stored contiguously, each key and
// value a row of head_dim elements in its storage type (kv_row_bytes(type, head_dim) bytes).
struct KvSegment {
  const uint8_t* k = nullptr;   // [n] key rows, rotated at virtual positions
  const uint8_t* v = nullptr;   // [n] value rows
  int n = 0;                    // valid slots
  int64_t pos_offset = 0;       // real position = virtual position + pos_offset
  const int64_t* pos = nullptr; // real position per slot, or null; used to mask a sliding window
  float* mass = nullptr;        // [n] attention adds mass here when the policy wants it
  KvType k_type = KvType::kF32, v_type = KvType::kF32;
};

// All segments of one layer: segment s of KV head h is segments[h * n_segments + s].
// Every head has the same number of segments (some may be empty).
struct KvView {
  int n_heads = 0;
  int n_segments = 0;
  std::vector<KvSegment> segments;
  const KvSegment& at(int head, int s) const { return segments[head * n_segments + s]; }
};

class LayerKvCache {
 public:
  virtual ~LayerKvCache() = default;

  // Cache position of the next token to be inserted.
  virtual int64_t next_position() const = 0;
  // Tokens that can still be committed; bounded policies never run out.
  virtual int64_t room() const = 0;
  // Fills `out` with the segments attention should read. Zeroes the mass buffers.
  virtual void view(KvView& out) = 0;
  // True if attention must compute masses (scoring policies); false saves the work.
  virtual bool wants_mass() const = 0;
  // EMA weights: query j of an n-token chunk weighs (1 - beta) * beta^(n - 1 - j); an existing
  // score decays by beta^n. beta = 1 means a plain sum (H2O's accumulated attention).
  virtual float beta() const = 0;
  // Inserts n tokens. k and v are [n][n_heads][head_dim]; k is rotated at positions
  // next_position() + j. chunk_mass is [n_heads][n] (null unless wants_mass()). ids are the
  // chunk's token ids (null if unknown), for policies whose structure follows the text.
  virtual void commit(const float* k, const float* v, int n, const float* chunk_mass,
                      const int32_t* ids) = 0;
  // Forgets everything (a new stream). Memory stays allocated.
  virtual void clear() = 0;
  // Bytes held for keys, values and bookkeeping.
  virtual size_t bytes() const = 0;
  // Lists the state a continuation needs, for saving and loading a session between forward
  // passes (cache/state_fields.h); the cache must have been made with the same config and shape.
  virtual void visit_state(StateFields& f) = 0;

  // For tests and diagnostics: the live slots of one KV head, sorted by cache position.
  struct SlotInfo {
    int64_t index = 0;     // original stream index of the token
    int64_t position = 0;  // cache position its key is rotated at (virtual + pos_offset)
    float score = 0.0f;    // importance score (0 for policies that do not score)
  };
  virtual std::vector<SlotInfo> slots(int head) const = 0;
};

// What a token is to a policy that cuts the stream into spans (the span cascade).
enum TokenKind : uint8_t {
  kPlainToken = 0,
  kSeparatorToken = 1,  // punctuation or a newline: a span ends after it
  kDigitToken = 2,      // all digits: a run of them stays in one span
};

// The user-facing choice of policy, the same for every layer it governs.
struct CacheConfig {
  std::string policy = "cascade";  // full | window | cascade | h2o | oracle
  int sinks = 64;                  // NS
  int size = 2048;                 // S (window/cascade/h2o); ignored by full
  int cascades = 4;                // C
  float beta = 0.9999f;
  bool head_reduction_max = true;  // false: mean over the query heads of a group
  // cascade: a closed sub-cache's competition is won by the higher score (the method); false
  // keeps the newer token regardless, the paper's "no score selection" ablation.
  bool select_by_score = true;
  // cascade: "token" (the paper's) or "span" (whole runs of tokens move and compete; see
  // span_cascade_cache.cc), the longest span, and how a span's score is formed.
  std::string unit = "token";
  int unit_max = 16;
  std::string unit_score = "sum";  // sum | mean | peak
  // Whose scores decide a competition: each KV head its own (`head`, the paper's), the KV heads
  // of a layer together (`layer`), or every head of every layer (`model`: a span survives
  // everywhere or nowhere).
  std::string unit_share = "head";
  std::string share_reduce = "sum";  // sum | max: how a shared cascade combines its lanes' masses
  // Whom an arriving unit competes with in a closed sub-cache: the `newest` units there (its
  // neighbours in the stream, the cascade's rule), the `lowest`-scored ones wherever they sit,
  // or the lowest in the last sub-cache only (`lowest-last`); `pool`: `lowest`, and the last
  // sub-cache never opens once full (its units leave only by losing, never by age).
  std::string unit_compete = "newest";
  bool value_norm_weight = false;  // scale each token's score by its value vector's mean |v|
  // cascade: sizes of the sub-caches, newest first (empty: C equal ones of size / C); their sum
  // is the size.
  std::vector<int> level_sizes;
  // TokenKind per vocabulary id; the span cascade needs it (set by the session).
  std::shared_ptr<const std::vector<uint8_t>> token_kinds;
  // oracle: stream indices kept like sinks (a passkey's key tokens); the rest is the window.
  std::vector<int64_t> pinned;
  int64_t context = 4096;          // capacity of `full`
  // How keys and values are stored (quant/kv_storage.h: f32, f16 or q8_0), as llama.cpp's
  // -ctk/-ctv; f16 is llama.cpp's default too. Attention reads them as stored.
  std::string type_k = "f16", type_v = "f16";
};

// True when `config` asks for the span cascade (span units, or sub-caches of unequal sizes).
bool uses_span_cascade(const CacheConfig& config);

// The most slots a cache config may ask for per layer (sinks + size, or the full context):
// 16M, far beyond any run, and small enough that no slot count or index arithmetic overflows.
inline constexpr int64_t kMaxCacheSlots = int64_t{1} << 24;
// The cascade's sub-cache i accepts one arrival in 2^i: 30 keeps 2^i in an int.
inline constexpr int kMaxCascades = 30;

// What messages call each field of a CacheConfig: the CLI names its flags, a server its fields.
struct CacheFieldNames {
  std::string policy = "policy", sinks = "sinks", size = "size", cascades = "cascades",
              beta = "beta", context = "context", unit = "unit", unit_max = "unit_max",
              unit_score = "unit_score", unit_share = "unit_share",
              share_reduce = "share_reduce", unit_compete = "unit_compete",
              level_sizes = "level_sizes", type_k = "type_k", type_v = "type_v";
};

// The one check of a cache config, for every front end and the factory: empty when the policy
// can be built from `config`, else what is wrong, naming the fields as `names` does.
std::string cache_config_error(const CacheConfig& config, const CacheFieldNames& names = {});

// Shape of one layer's cache: what each slot holds.
struct KvShape {
  int n_heads = 0;   // KV heads
  int head_dim = 0;
  KvType k_type = KvType::kF32, v_type = KvType::kF32;
};

// `shape` with the storage types `config` asks for (cache_config_error has checked the names).
KvShape with_storage(KvShape shape, const CacheConfig& config);
// Empty when a cache of `shape` can store its rows as asked, else why not (q8_0 needs head_dim
// a multiple of 32).
std::string kv_shape_error(const KvShape& shape);

// Rotates one rotated key from virtual position `from` to virtual position `to` (delta only).
// Provided by the model (RoPE frequencies differ per model and layer); policies that move keys
// between segments call it.
class KeyRotator {
 public:
  virtual ~KeyRotator() = default;
  virtual void rotate(float* key, int64_t delta) const = 0;
  // For a policy that rotates un-rotated keys to small positions every step (H2O): a table of
  // the rotations to positions [0, n), so that rotate_to costs no sin/cos. A rotator without
  // one returns an empty table and rotate_to falls back to rotate.
  virtual std::vector<float> position_table(int64_t n) const {
    (void)n;
    return {};
  }
  // Rotates an un-rotated key to `pos` (below the n `table` was made for); the same floats as
  // rotate(key, pos).
  virtual void rotate_to(float* key, int64_t pos, const std::vector<float>& table) const {
    (void)table;
    rotate(key, pos);
  }
};

// Slots per KV head that a layer cache of `config` holds: the context of `full`, sinks + size
// for the bounded policies. In 64 bits, so that no choice of values overflows it.
int64_t cache_slots(const CacheConfig& config);

// Makes the layer cache that `config` asks for; throws kvc::Error on a bad config
// (cache_config_error).
std::unique_ptr<LayerKvCache> make_layer_cache(const CacheConfig& config, const KvShape& shape,
                                               const KeyRotator& rotator);

// The caches of the layers a policy governs, rotators[l] for the l-th of them, in the order the
// forward pass runs them; like make_layer_cache per layer, except that layers may share state
// (the span cascade's `unit_share` model).
std::vector<std::unique_ptr<LayerKvCache>> make_layer_caches(
    const CacheConfig& config, const KvShape& shape, std::span<const KeyRotator* const> rotators);

// Native sliding-window attention (Gemma 3's local layers): the last `window` tokens at their
// stream positions, with KvSegment::pos set so attention masks keys at distance >= window.
// Stores keys and values in the types of `shape`.
std::unique_ptr<LayerKvCache> make_native_window_cache(int window, const KvShape& shape,
                                                       const KeyRotator& rotator);

}  // namespace kvc
