// How many CPUs this process may actually run on: the default thread count.
// hardware_concurrency() counts the machine's CPUs and ignores both the affinity mask
// (taskset, cpusets) and a container's CPU quota; more threads than that only preempt each other.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kvc {

// min(CPUs in this thread's affinity mask, the cgroup CPU quota rounded up), at least 1.
int usable_cpus();

// CPUs in the calling thread's affinity mask (sched_getaffinity), or nullopt if unknown.
std::optional<int> affinity_cpus();

// The CPU limit of the cgroup(s) this process is in, rounded up to whole CPUs, or nullopt when
// there is none. Reads cgroup v2 cpu.max and v1 cpu.cfs_quota_us / cpu.cfs_period_us of the
// process's cgroup and its ancestors (the tightest wins), located through /proc/self/mountinfo.
std::optional<int> cgroup_cpu_limit();

// The same, from given file contents; `fs_root` is prefixed to every mount point (tests point it
// at a fake tree).
std::optional<int> cgroup_cpu_limit(std::string_view mountinfo, std::string_view proc_cgroup,
                                     const std::string& fs_root);

// Whole CPUs a quota allows: ceil(quota / period); nullopt for no limit (quota <= 0, "max").
std::optional<int> cpus_from_quota(long long quota, long long period);

}  // namespace kvc
