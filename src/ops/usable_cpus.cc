#include "ops/usable_cpus.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace kvc {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (size_t b = 0;;) {
    const size_t e = s.find(sep, b);
    parts.push_back(s.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
    if (e == std::string_view::npos) return parts;
    b = e + 1;
  }
}

std::optional<long long> parse_ll(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  try {
    size_t used = 0;
    const long long v = std::stoll(std::string(s), &used);
    if (used != s.size()) return std::nullopt;
    return v;
  } catch (...) {
    return std::nullopt;
  }
}

// One cgroup hierarchy mounted somewhere: which cgroup directory the mount shows (`root`).
struct CgroupMount {
  std::string root;
  std::string mount_point;
};

// The limit set in one cgroup directory, if any.
std::optional<int> limit_in(const std::string& dir, bool v2) {
  if (v2) {
    // "max 100000" or "150000 100000"
    const std::string text = read_file(dir + "/cpu.max");
    const auto fields = split(text, ' ');
    if (fields.size() != 2 || fields[0] == "max") return std::nullopt;
    const auto quota = parse_ll(fields[0]), period = parse_ll(fields[1]);
    if (!quota || !period) return std::nullopt;
    return cpus_from_quota(*quota, *period);
  }
  const auto quota = parse_ll(read_file(dir + "/cpu.cfs_quota_us"));
  const auto period = parse_ll(read_file(dir + "/cpu.cfs_period_us"));
  if (!quota || !period) return std::nullopt;
  return cpus_from_quota(*quota, *period);
}

// The tightest limit on the cgroup at `path` (as /proc/self/cgroup names it) and its ancestors
// that the mount can see.
std::optional<int> limit_along(const CgroupMount& m, std::string path, bool v2,
                               const std::string& fs_root) {
  // Inside a container the mount usually shows the process's own cgroup as its root.
  if (m.root != "/") {
    const bool inside = path.starts_with(m.root) &&
                        (path.size() == m.root.size() || path[m.root.size()] == '/');
    path = inside && path.size() > m.root.size() ? path.substr(m.root.size()) : "/";
  }
  std::optional<int> best;
  for (;;) {
    const std::string dir = fs_root + m.mount_point + (path == "/" ? "" : path);
    if (const auto l = limit_in(dir, v2)) best = best ? std::min(*best, *l) : *l;
    if (path.empty() || path == "/") return best;
    const size_t slash = path.rfind('/');
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
}

}  // namespace

std::optional<int> cpus_from_quota(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return std::nullopt;
  return static_cast<int>(std::max<long long>(1, (quota + period - 1) / period));
}

std::optional<int> cgroup_cpu_limit(std::string_view mountinfo, std::string_view proc_cgroup,
                                    const std::string& fs_root) {
  // mountinfo: "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS"
  std::optional<CgroupMount> v2_mount, v1_mount;
  for (std::string_view line : split(mountinfo, '\n')) {
    const size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    const auto left = split(line.substr(0, dash), ' ');
    const auto right = split(line.substr(dash + 3), ' ');
    if (left.size() < 5 || right.size() < 3) continue;
    const CgroupMount m{std::string(left[3]), std::string(left[4])};
    if (right[0] == "cgroup2" && !v2_mount) v2_mount = m;
    if (right[0] == "cgroup" && !v1_mount) {
      for (std::string_view opt : split(right[2], ','))
        if (opt == "cpu") v1_mount = m;
    }
  }
  // /proc/self/cgroup: "0::/path" (v2) and "N:cpu,cpuacct:/path" (v1).
  std::optional<int> best;
  auto take = [&](std::optional<int> l) {
    if (l) best = best ? std::min(*best, *l) : *l;
  };
  for (std::string_view line : split(proc_cgroup, '\n')) {
    const size_t c1 = line.find(':');
    const size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    const std::string_view controllers = line.substr(c1 + 1, c2 - c1 - 1);
    const std::string path(line.substr(c2 + 1));
    if (controllers.empty()) {
      if (v2_mount) take(limit_along(*v2_mount, path, true, fs_root));
      continue;
    }
    for (std::string_view c : split(controllers, ','))
      if (c == "cpu" && v1_mount) take(limit_along(*v1_mount, path, false, fs_root));
  }
  return best;
}

std::optional<int> cgroup_cpu_limit() {
  return cgroup_cpu_limit(read_file("/proc/self/mountinfo"), read_file("/proc/self/cgroup"), "");
}

std::optional<int> affinity_cpus() {
  // Sized for machines beyond CPU_SETSIZE (1024) too.
  for (int n_cpus = 1024; n_cpus <= (1 << 16); n_cpus *= 4) {
    cpu_set_t* set = CPU_ALLOC(n_cpus);
    const size_t bytes = CPU_ALLOC_SIZE(n_cpus);
    const int rc = sched_getaffinity(0, bytes, set);
    const int count = rc == 0 ? CPU_COUNT_S(bytes, set) : 0;
    CPU_FREE(set);
    if (rc == 0) return count > 0 ? std::optional<int>(count) : std::nullopt;
    if (errno != EINVAL) return std::nullopt;
  }
  return std::nullopt;
}

int usable_cpus() {
  int n = 0;
  if (const auto a = affinity_cpus()) n = *a;
  if (n == 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (const auto q = cgroup_cpu_limit()) n = n > 0 ? std::min(n, *q) : *q;
  return std::max(1, n);
}

}  // namespace kvc
