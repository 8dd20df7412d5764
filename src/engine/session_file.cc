#include "engine/session_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <xxhash.h>

#include "base/error.h"

namespace kvc {

namespace {

constexpr char kMagic[8] = {'K', 'V', 'C', 'S', 'E', 'S', 'S', '\0'};
// Far above any real file's count (a header, the stream, a few hundred layers, the caller's).
constexpr uint32_t kMaxSections = 4096;

template <typename T>
void append(std::string& out, T x) {
  out.append(reinterpret_cast<const char*>(&x), sizeof x);
}

std::string layer_section(int l) { return fmt::format("layer {}", l); }

// The first line where two configuration texts differ, as "saved X, this session Y".
std::string first_difference(const std::string& saved, const std::string& mine) {
  std::istringstream a(saved), b(mine);
  std::string x, y;
  while (true) {
    const bool more_a = static_cast<bool>(std::getline(a, x));
    const bool more_b = static_cast<bool>(std::getline(b, y));
    if (!more_a && !more_b) return "";
    if (!more_a) x = "(nothing)";
    if (!more_b) y = "(nothing)";
    if (x != y) return fmt::format("saved with {}, this one runs {}", x, y);
  }
}

}  // namespace

uint64_t model_fingerprint(const Model& model) {
  return XXH3_64bits(model.file().bytes(), model.file().size());
}

std::string session_config_text(const SessionOptions& o) {
  const CacheConfig& c = o.cache;
  std::string t;
  const auto line = [&](std::string_view name, const auto& value) {
    t += fmt::format("{}={}\n", name, value);
  };
  line("cache", c.policy);
  line("type_k", c.type_k);
  line("type_v", c.type_v);
  if (c.policy == "full") {
    line("context", c.context);
  } else {
    line("sinks", c.sinks);
    line("size", c.size);
  }
  if (c.policy == "cascade") {
    line("cascades", c.cascades);
    line("beta", c.beta);
    line("head_reduction_max", c.head_reduction_max);
    line("select_by_score", c.select_by_score);
    line("unit", c.unit);
    line("unit_max", c.unit_max);
    line("unit_score", c.unit_score);
    line("unit_share", c.unit_share);
    line("share_reduce", c.share_reduce);
    line("unit_compete", c.unit_compete);
    line("value_norm_weight", c.value_norm_weight);
    line("level_sizes", fmt::format("{}", fmt::join(c.level_sizes, ",")));
  }
  if (c.policy == "h2o") line("head_reduction_max", c.head_reduction_max);
  if (c.policy == "oracle") line("pinned", fmt::format("{}", fmt::join(c.pinned, ",")));
  line("attention", o.sparse_attention ? "sparse" : "dense");
  if (o.sparse_attention) {
    const SparseAttentionConfig& s = o.sparse;
    line("sparse", fmt::format("sinks {} recent {} top_chunks {} chunk {} refresh {} min_keys {}",
                               s.sinks, s.recent, s.top_chunks, s.chunk, s.refresh, s.min_keys));
  }
  return t;
}

SessionFileWriter::SessionFileWriter(std::string buffer) : out_(std::move(buffer)) {
  out_.assign(kMagic, sizeof kMagic);
  append(out_, kSessionFileVersion);
  append(out_, n_sections_);  // patched by finish()
}

void SessionFileWriter::section(std::string_view name,
                                const std::function<void(StateFields&)>& visit) {
  append(out_, static_cast<uint8_t>(name.size()));
  out_.append(name);
  const size_t length_at = out_.size();
  append(out_, uint64_t{0});  // patched below
  const size_t begin = out_.size();
  StateWriter w(out_);
  visit(w);
  const uint64_t size = out_.size() - begin;
  std::memcpy(out_.data() + length_at, &size, sizeof size);
  append(out_, static_cast<uint64_t>(XXH3_64bits(out_.data() + begin, size)));
  ++n_sections_;
}

std::string SessionFileWriter::finish() {
  std::memcpy(out_.data() + sizeof kMagic + 4, &n_sections_, 4);
  std::string out = std::move(out_);
  out_.clear();
  n_sections_ = 0;
  return out;
}

SessionFileReader::SessionFileReader(std::string bytes, std::string what)
    : bytes_(std::move(bytes)), what_(std::move(what)) {
  size_t at = 0;
  const auto take = [&](size_t n, const char* part) {
    if (bytes_.size() - at < n) fail("{}: truncated (ends inside {})", what_, part);
    const char* p = bytes_.data() + at;
    at += n;
    return p;
  };
  if (bytes_.size() < sizeof kMagic || std::memcmp(bytes_.data(), kMagic, sizeof kMagic) != 0)
    fail("{}: not a kvcascade session file", what_);
  at = sizeof kMagic;
  uint32_t version, n;
  std::memcpy(&version, take(4, "the header"), 4);
  if (version != kSessionFileVersion)
    fail("{}: session file version {}, this build reads version {}", what_, version,
         kSessionFileVersion);
  std::memcpy(&n, take(4, "the header"), 4);
  if (n > kMaxSections) fail("{}: {} sections is not a session file's count (corrupt)", what_, n);
  for (uint32_t i = 0; i < n; ++i) {
    Section s;
    const auto name_len = static_cast<uint8_t>(*take(1, "a section name"));
    s.name.assign(take(name_len, "a section name"), name_len);
    uint64_t size;
    std::memcpy(&size, take(8, "a section length"), 8);
    if (size > bytes_.size() - at)
      fail("{}: truncated (section '{}' needs {} bytes, {} are left)", what_, s.name, size,
           bytes_.size() - at);
    s.begin = at, s.size = static_cast<size_t>(size);
    take(s.size, "a section");
    uint64_t sum;
    std::memcpy(&sum, take(8, "a checksum"), 8);
    if (sum != XXH3_64bits(bytes_.data() + s.begin, s.size))
      fail("{}: section '{}' fails its checksum (the file is corrupt)", what_, s.name);
    sections_.push_back(std::move(s));
  }
  if (at != bytes_.size()) fail("{}: {} bytes after the last section (corrupt)", what_, bytes_.size() - at);
}

SessionFileReader SessionFileReader::read_leading_sections(const std::string& path, uint32_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open: {}", path, std::strerror(errno));
  std::string bytes;
  // Copies k more bytes of the file into `bytes`; false at the end of the file.
  const auto copy = [&](size_t k) {
    const size_t at = bytes.size();
    bytes.resize(at + k);
    in.read(bytes.data() + at, static_cast<std::streamsize>(k));
    bytes.resize(at + static_cast<size_t>(in.gcount()));
    return bytes.size() == at + k;
  };
  in.seekg(0, std::ios::end);
  const auto file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  if (copy(16)) {
    uint32_t count;
    std::memcpy(&count, bytes.data() + 12, 4);
    n = std::min(n, count);
    for (uint32_t i = 0; i < n; ++i) {
      if (!copy(1) || !copy(static_cast<uint8_t>(bytes.back())) || !copy(8)) break;
      uint64_t size;
      std::memcpy(&size, bytes.data() + bytes.size() - 8, 8);
      if (size > file_size || !copy(static_cast<size_t>(size) + 8)) break;
    }
    std::memcpy(bytes.data() + 12, &n, 4);  // the sections read (the reader checks they are whole)
  }
  return SessionFileReader(std::move(bytes), path);
}

bool SessionFileReader::has_section(std::string_view name) const {
  for (const Section& s : sections_)
    if (s.name == name) return true;
  return false;
}

void SessionFileReader::section(std::string_view name,
                                const std::function<void(StateFields&)>& visit) const {
  for (const Section& s : sections_)
    if (s.name == name) {
      StateReader r(std::string_view(bytes_).substr(s.begin, s.size),
                    fmt::format("{}, section '{}'", what_, name));
      try {
        visit(r);
      } catch (const Error& e) {
        // The reader's messages name the file; a check in `visit` (StateFields::expect) does not.
        const std::string m = e.what();
        if (m.rfind(what_, 0) == 0) throw;
        fail("{}, section '{}': {}", what_, name, m);
      }
      r.finish();
      return;
    }
  fail("{}: has no section '{}'", what_, name);
}

SessionFileHeader read_session_header(const SessionFileReader& in) {
  SessionFileHeader h;
  in.section("header", [&](StateFields& f) {
    f.value("model", h.model);
    f.text("config", h.config, 1 << 16);
  });
  return h;
}

void save_session(Session& session, uint64_t fingerprint, SessionFileWriter& out) {
  save_session_header(session, fingerprint, out);
  save_session_state(session, out);
}

void save_session_header(const Session& session, uint64_t fingerprint, SessionFileWriter& out) {
  std::string config = session_config_text(session.options());
  out.section("header", [&](StateFields& f) {
    f.value("model", fingerprint);
    f.text("config", config, 1 << 16);
  });
}

void save_session_state(Session& session, SessionFileWriter& out) {
  out.section("stream", [&](StateFields& f) { session.visit_stream_state(f); });
  for (int l = 0; l < session.n_cache_layers(); ++l)
    out.section(layer_section(l), [&](StateFields& f) { session.visit_layer_state(l, f); });
}

void load_session(Session& session, uint64_t fingerprint, const SessionFileReader& in) {
  const SessionFileHeader h = read_session_header(in);
  if (h.model != fingerprint)
    fail("{}: saved by another model file (fingerprint {:016x}, this model's is {:016x})",
         in.what(), h.model, fingerprint);
  const std::string mine = session_config_text(session.options());
  if (h.config != mine)
    fail("{}: saved with another cache configuration ({})", in.what(),
         first_difference(h.config, mine));
  // Layers first: the stream section reads the layers' views (sparse selections).
  for (int l = 0; l < session.n_cache_layers(); ++l)
    in.section(layer_section(l), [&](StateFields& f) { session.visit_layer_state(l, f); });
  in.section("stream", [&](StateFields& f) { session.visit_stream_state(f); });
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail("{}: cannot create: {}", tmp, std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail("{}: write failed: {}", tmp, std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  int err = errno;
  const bool closed = ::close(fd) == 0;
  if (!closed && synced) err = errno;
  if (!synced || !closed) {
    ::unlink(tmp.c_str());
    fail("{}: fsync failed: {}", tmp, std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail("{}: cannot rename to {}: {}", tmp, path, std::strerror(err));
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // the rename itself; a directory that cannot be synced loses nothing written
    ::close(dfd);
  }
}

std::string read_whole_file(const std::string& path, std::string buffer) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  std::string out = std::move(buffer);
  out.clear();
  const off_t size = ::lseek(fd, 0, SEEK_END);
  if (size > 0) out.resize(static_cast<size_t>(size));  // read straight into it: one copy
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      fail("{}: read failed: {}", path, std::strerror(err));
    }
    if (n == 0) break;  // shorter than it was a moment ago
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(done);
  return out;
}

}  // namespace kvc
