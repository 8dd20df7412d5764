// A session as bytes (a file under `serve --session-dir`, or a fork in memory): constant in
// size whatever the stream's length, since every cache is saved as allocated.
//
//   "KVCSESS\0", u32 version, u32 section count, then per section:
//   u8 name length, name, u64 payload length, payload, u64 XXH3-64 of the payload.
//
// The sections, in order: "header" (the model file's fingerprint and the configuration the
// state depends on, as text), "stream" (Session::visit_stream_state), "layer 0".."layer L-1",
// then whatever sections the caller adds (the server's conversation). Each payload is a list of
// fields (base/state_fields.h). Reading checks the magic, the version and every checksum before
// anything is loaded, then the header against the loading session's, so a truncated, corrupt,
// other-model or other-configuration file fails with a message that says which, and the session
// it was to be loaded into can be thrown away unchanged in meaning.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/state_fields.h"
#include "engine/session.h"

namespace kvc {

inline constexpr uint32_t kSessionFileVersion = 1;

// XXH3-64 of the whole model file: a session continues only on the weights that made it.
uint64_t model_fingerprint(const Model& model);

// What a session's state depends on besides the model, one "name=value" line per setting: the
// cache policy and every parameter of it, the KV storage types, the attention kind and its
// budget. Threads and stride are left out: they do not change what a continuation computes from
// a saved state.
std::string session_config_text(const SessionOptions& options);

// Sections being written, straight into the file's bytes (a session is tens of megabytes: no
// copy per section).
class SessionFileWriter {
 public:
  // `buffer`: a string whose memory to reuse (what finish() returned last time), so that saving
  // every turn does not fault in tens of megabytes of fresh pages each time.
  explicit SessionFileWriter(std::string buffer = {});
  // Appends a section holding the fields `visit` lists.
  void section(std::string_view name, const std::function<void(StateFields&)>& visit);
  // The file's bytes; the writer is empty afterwards.
  std::string finish();

 private:
  std::string out_;
  uint32_t n_sections_ = 0;
};

// The sections of a file, checked whole on construction (magic, version, lengths, checksums).
// `what` names the file in messages.
class SessionFileReader {
 public:
  SessionFileReader(std::string bytes, std::string what);
  // The first `n` sections of the file at `path` (fewer if it has fewer), read without the rest.
  static SessionFileReader read_leading_sections(const std::string& path, uint32_t n);
  // Loads the fields of section `name` (kvc::Error when there is none, or they do not fit).
  void section(std::string_view name, const std::function<void(StateFields&)>& visit) const;
  bool has_section(std::string_view name) const;
  const std::string& what() const { return what_; }
  // The bytes, for reuse as the next read's buffer; the reader is empty afterwards.
  std::string release() { sections_.clear(); return std::move(bytes_); }

 private:
  struct Section {
    std::string name;
    size_t begin = 0, size = 0;
  };
  std::string bytes_;
  std::string what_;
  std::vector<Section> sections_;
};

// Writes the header, stream and layer sections of `session`; `fingerprint` is
// model_fingerprint(session.model()), which the caller computes once. The two halves apart, for a
// caller whose own sections go between them (read_leading_sections can then read those alone).
void save_session(Session& session, uint64_t fingerprint, SessionFileWriter& out);
void save_session_header(const Session& session, uint64_t fingerprint, SessionFileWriter& out);
void save_session_state(Session& session, SessionFileWriter& out);
// Loads what save_session wrote into `session`, made with the same model and options. Throws
// kvc::Error naming the difference when the file is another model's or configuration's; after a
// throw the session's state is undefined (reset() it or drop it).
void load_session(Session& session, uint64_t fingerprint, const SessionFileReader& in);

// Reads the fingerprint and configuration text of a file's header.
struct SessionFileHeader {
  uint64_t model = 0;
  std::string config;
};
SessionFileHeader read_session_header(const SessionFileReader& in);

// Writes `bytes` to `path` so that a crash leaves either the old file or the new one: a
// temporary file in the same directory, fsync'd, renamed over `path`, and the directory fsync'd.
void write_file_atomically(const std::string& path, std::string_view bytes);
// The whole file; kvc::Error "PATH: reason" when it cannot be read. `buffer`: memory to reuse.
std::string read_whole_file(const std::string& path, std::string buffer = {});

}  // namespace kvc
