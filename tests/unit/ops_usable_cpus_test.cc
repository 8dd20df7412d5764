// usable_cpus() counts the CPUs this process may run on: the affinity mask and the cgroup quota.
#include <sched.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "ops/usable_cpus.h"

namespace kvc {
namespace {

// Runs fn on a new thread whose affinity mask holds the first `k` CPUs of the current mask;
// returns false if the mask has fewer than k CPUs.
template <typename Fn>
bool on_narrowed_thread(int k, Fn fn) {
  cpu_set_t mine;
  CPU_ZERO(&mine);
  if (sched_getaffinity(0, sizeof(mine), &mine) != 0 || CPU_COUNT(&mine) < k) return false;
  cpu_set_t narrow;
  CPU_ZERO(&narrow);
  for (int cpu = 0, taken = 0; cpu < CPU_SETSIZE && taken < k; ++cpu)
    if (CPU_ISSET(cpu, &mine)) {
      CPU_SET(cpu, &narrow);
      ++taken;
    }
  std::thread t([&] {
    // A thread's mask is its own: narrowing it leaves the test process as it was.
    ASSERT_EQ(sched_setaffinity(0, sizeof(narrow), &narrow), 0);
    fn();
  });
  t.join();
  return true;
}

TEST(UsableCpus, CountsANarrowedAffinityMask) {
  ASSERT_TRUE(on_narrowed_thread(1, [] {
    EXPECT_EQ(affinity_cpus(), 1);
    EXPECT_EQ(usable_cpus(), 1);
  }));
  const int quota = cgroup_cpu_limit().value_or(1 << 20);
  if (!on_narrowed_thread(2, [&] {
        EXPECT_EQ(affinity_cpus(), 2);
        EXPECT_EQ(usable_cpus(), std::min(2, quota));
      }))
    GTEST_SKIP() << "one CPU only: no mask of two to narrow to";
}

TEST(UsableCpus, NeverMoreThanTheMaskOrZero) {
  const int n = usable_cpus();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, affinity_cpus().value_or(n));
}

TEST(UsableCpus, QuotaRoundsUpToWholeCpus) {
  EXPECT_EQ(cpus_from_quota(100000, 100000), 1);
  EXPECT_EQ(cpus_from_quota(150000, 100000), 2);
  EXPECT_EQ(cpus_from_quota(20000, 100000), 1);
  EXPECT_EQ(cpus_from_quota(-1, 100000), std::nullopt);  // v1: no limit
  EXPECT_EQ(cpus_from_quota(50000, 0), std::nullopt);
}

// A fake /sys/fs/cgroup under a temporary directory.
class FakeCgroups : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("kvc_cgroups_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) {
    const auto p = root_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  std::string fs() const { return root_.string(); }
  std::filesystem::path root_;
};

constexpr const char* kV2Mount = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
constexpr const char* kV1Mount =
    "31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
    "32 25 0:28 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n";

TEST_F(FakeCgroups, V2CpuMax) {
  write("sys/fs/cgroup/app/cpu.max", "250000 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(kV2Mount, "0::/app\n", fs()), 3);
}

TEST_F(FakeCgroups, V2NoLimit) {
  write("sys/fs/cgroup/app/cpu.max", "max 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(kV2Mount, "0::/app\n", fs()), std::nullopt);
}

TEST_F(FakeCgroups, V2TightestAncestorWins) {
  write("sys/fs/cgroup/a/cpu.max", "100000 100000\n");
  write("sys/fs/cgroup/a/b/cpu.max", "max 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(kV2Mount, "0::/a/b\n", fs()), 1);
}

TEST_F(FakeCgroups, V1Quota) {
  write("sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_quota_us", "200000\n");
  write("sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_limit(kV1Mount, "4:memory:/docker/x\n3:cpu,cpuacct:/docker/x\n", fs()), 2);
}

TEST_F(FakeCgroups, V1NoQuota) {
  write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroup_cpu_limit(kV1Mount, "3:cpu,cpuacct:/\n", fs()), std::nullopt);
}

TEST_F(FakeCgroups, ContainerMountShowsItsOwnCgroupAsRoot) {
  // Without a cgroup namespace, /proc/self/cgroup names the host path and the mount's root is
  // that same path: the limit is read at the mount point itself.
  const std::string mountinfo = "30 24 0:26 /docker/x /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n";
  write("sys/fs/cgroup/cpu.max", "50000 100000\n");
  EXPECT_EQ(cgroup_cpu_limit(mountinfo, "0::/docker/x\n", fs()), 1);
}

TEST_F(FakeCgroups, NoCgroupFilesNoLimit) {
  EXPECT_EQ(cgroup_cpu_limit(kV2Mount, "0::/\n", fs()), std::nullopt);
  EXPECT_EQ(cgroup_cpu_limit("", "", fs()), std::nullopt);
}

}  // namespace
}  // namespace kvc
