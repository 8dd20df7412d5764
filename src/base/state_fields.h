// The persistent state of a cache policy or a session, listed once. Each class that can be
// saved has one visit_state(StateFields&) naming every field that a continuation needs, in a
// fixed order; the same list serves saving, loading and the round-trip tests (gemma.cpp's
// VisitFields, llama.cpp's state_write_data). Scratch that a commit fills and empties stays
// out, and each class says which of its members are scratch.
//
// A field is a run of bytes whose length the configuration fixes (the caches are allocated up
// front, so a session file has the same size however long the stream ran), or a counted list
// whose length the state decides (`list`). Saving records name, length and bytes; loading
// checks that the saved field has the same name and length before overwriting anything of the
// caller's, so a file of another configuration fails with a message instead of a misread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>


namespace kvc {

class StateFields {
 public:
  virtual ~StateFields() = default;
  virtual bool loading() const = 0;
  // Saving: records n bytes at `data`. Loading: overwrites them with the saved field `name`,
  // which must hold exactly n bytes (kvc::Error otherwise).
  virtual void bytes(std::string_view name, void* data, size_t n) = 0;

  template <typename T>
  void value(std::string_view name, T& x) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes(name, &x, sizeof x);
  }
  // A vector whose length the configuration fixed when it was allocated.
  template <typename T>
  void array(std::string_view name, std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes(name, v.data(), v.size() * sizeof(T));
  }
  // Rows of a cache (KvRows): every row allocated, used or not.
  template <typename Rows>
  void rows(std::string_view name, Rows& r) {
    bytes(name, r.data(), r.bytes());
  }
  // A bool saved as one byte, which loading checks is 0 or 1.
  void value(std::string_view name, bool& b) {
    uint8_t x = b ? 1 : 0;
    bytes(name, &x, 1);
    expect(x <= 1, name);
    b = x == 1;
  }
  // A string whose length is part of the state, at most max_n bytes.
  void text(std::string_view name, std::string& s, size_t max_n) {
    uint64_t n = s.size();
    value(name, n);
    if (loading()) s.resize(checked_length(name, n, max_n));
    bytes(name, s.data(), s.size());
  }
  // A vector whose length is part of the state: loading resizes it to the saved length, which
  // must not exceed max_n (a corrupt count must not allocate without bound).
  template <typename T>
  void list(std::string_view name, std::vector<T>& v, size_t max_n) {
    static_assert(std::is_trivially_copyable_v<T>);
    uint64_t n = v.size();
    value(name, n);
    if (loading()) v.resize(checked_length(name, n, max_n));
    bytes(name, v.data(), v.size() * sizeof(T));
  }
  // After loading: kvc::Error naming `field` unless `ok` (a value the structure cannot hold,
  // so that a crafted file fails here instead of indexing out of bounds later).
  void expect(bool ok, std::string_view field) const;

 protected:
  // n, or kvc::Error when it exceeds max_n.
  static size_t checked_length(std::string_view name, uint64_t n, size_t max_n);
};

// Saves fields to the end of a byte string: per field its name, its length and its bytes.
class StateWriter final : public StateFields {
 public:
  explicit StateWriter(std::string& out) : out_(out) {}
  bool loading() const override { return false; }
  void bytes(std::string_view name, void* data, size_t n) override;

 private:
  std::string& out_;
};

// Loads fields from what a StateWriter wrote, in the same order. `what` names the state in
// messages ("layer 3 of session file x").
class StateReader final : public StateFields {
 public:
  StateReader(std::string_view in, std::string what) : in_(in), what_(std::move(what)) {}
  bool loading() const override { return true; }
  void bytes(std::string_view name, void* data, size_t n) override;
  // kvc::Error unless every saved field was read.
  void finish() const;

 private:
  std::string_view in_;
  size_t at_ = 0;
  std::string what_;
};

}  // namespace kvc
