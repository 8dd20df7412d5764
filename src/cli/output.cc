#include "cli/output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "base/error.h"

namespace kvc::cli {

std::string json_text(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

void print_json(const nlohmann::json& j, int indent) {
  const std::string text = json_text(j, indent);
  std::printf("%s\n", text.c_str());
}

void check_output_file(const std::string& flag, const std::string& path) {
  if (path.empty()) fail("{}: the file name is empty", flag);
  struct stat st{};
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail("{} '{}' is a directory", flag, path);
    // Opening a FIFO (or >(cmd)) to try it would hand its reader an end of file.
    if (!S_ISREG(st.st_mode)) return;
    if (access(path.c_str(), W_OK) != 0)
      fail("{}: cannot write '{}': {}", flag, path, std::strerror(errno));
    return;
  }
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0666);
  if (fd < 0) fail("{}: cannot create '{}': {}", flag, path, std::strerror(errno));
  close(fd);
  unlink(path.c_str());
}

void write_output_file(const std::string& flag, const std::string& path, const std::string& text) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (!file) fail("{}: cannot write '{}': {}", flag, path, std::strerror(errno));
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  const int write_errno = errno;
  // Buffered bytes meet the disk at close: its result counts as much as fwrite's.
  const bool closed = std::fclose(file) == 0;
  if (!written || !closed)
    fail("{}: error writing '{}': {}", flag, path, std::strerror(written ? errno : write_errno));
}

bool stdout_written(std::string& why) {
  std::cout.flush();
  errno = 0;
  const bool flushed = std::fflush(stdout) == 0;
  const int flush_errno = errno;
  if (flushed && !std::ferror(stdout) && std::cout.good()) return true;
  why = flush_errno != 0 ? std::strerror(flush_errno) : "a write failed";
  return false;
}

}  // namespace kvc::cli
