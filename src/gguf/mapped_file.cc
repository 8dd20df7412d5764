#include "gguf/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/error.h"

namespace kvc {

namespace {

// What a path that is not a regular file is, for the message.
const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

[[noreturn]] void fail_errno(const std::string& path, int err) {
  if (err == ELOOP) fail("{}: a symbolic link loop (too many levels of symbolic links)", path);
  fail("{}: {}", path, std::strerror(err));
}

[[noreturn]] void fail_kind(const std::string& path, mode_t mode) {
  fail("{}: is {}, not a GGUF file", path, kind_of(mode));
}

}  // namespace

MappedFile::MappedFile(const std::string& path) {
  // stat first: opening a FIFO would block until a writer comes, a device may never end.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail_errno(path, errno);
  if (!S_ISREG(st.st_mode)) fail_kind(path, st.st_mode);
  // O_NONBLOCK in case the path is swapped for a FIFO between stat and open; it changes
  // nothing for a regular file.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail_errno(path, errno);
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail_errno(path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail_kind(path, st.st_mode);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) {  // mmap rejects a zero length; an empty file is simply too short
    ::close(fd);
    return;
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) fail("{}: mmap failed: {}", path, std::strerror(err));
  data_ = static_cast<const uint8_t*>(p);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace kvc
