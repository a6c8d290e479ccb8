// A tiny KVM guest for an arm64 L1 (scripts/guest/arm64-nested-probe.sh): can /dev/kvm
// run a vCPU at all, how long does one MMIO exit take, how fast does guest code run.
// Static aarch64 build: aarch64-linux-gnu-gcc -static -O2 -o kvm-probe arm64-kvm-probe.c
// Prints "@@ KVM <key>=<value>" lines; exits non-zero at the first failing step.
#include <fcntl.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RAM_BASE 0x40000000ULL
#define MMIO_ADDR 0x20000000ULL // outside the one memory slot: every store exits

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int fail(const char *step)
{
	printf("@@ KVM fail=%s (%m)\n", step);
	return 1;
}

// One VM with one vCPU running `code` from RAM_BASE (MMU off, EL1); returns the vCPU fd.
static int vcpu_with(int kvm, const uint32_t *code, size_t len, struct kvm_run **run)
{
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM"), -1;
	void *mem = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return fail("mmap"), -1;
	memcpy(mem, code, len);
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = RAM_BASE,
		.memory_size = 0x10000,
		.userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return fail("KVM_SET_USER_MEMORY_REGION"), -1;
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return fail("KVM_CREATE_VCPU"), -1;
	struct kvm_vcpu_init init;
	if (ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init) < 0)
		return fail("KVM_ARM_PREFERRED_TARGET"), -1;
	if (ioctl(vcpu, KVM_ARM_VCPU_INIT, &init) < 0)
		return fail("KVM_ARM_VCPU_INIT"), -1;
	uint64_t pc = RAM_BASE;
	struct kvm_one_reg reg = {
		.id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
		      KVM_REG_ARM_CORE_REG(regs.pc),
		.addr = (uintptr_t)&pc,
	};
	if (ioctl(vcpu, KVM_SET_ONE_REG, &reg) < 0)
		return fail("KVM_SET_ONE_REG(pc)"), -1;
	int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	*run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (*run == MAP_FAILED)
		return fail("mmap(kvm_run)"), -1;
	return vcpu;
}

// Runs until the next MMIO exit; 0 when it was the expected store of 42.
static int run_to_mmio(int vcpu, struct kvm_run *run)
{
	if (ioctl(vcpu, KVM_RUN, 0) < 0)
		return fail("KVM_RUN");
	if (run->exit_reason != KVM_EXIT_MMIO || run->mmio.phys_addr != MMIO_ADDR ||
	    !run->mmio.is_write || run->mmio.data[0] != 42) {
		printf("@@ KVM fail=unexpected exit reason=%u addr=%#llx\n", run->exit_reason,
		       (unsigned long long)run->mmio.phys_addr);
		return 1;
	}
	return 0;
}

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR);
	if (kvm < 0)
		return fail("open /dev/kvm");
	printf("@@ KVM api=%d\n", ioctl(kvm, KVM_GET_API_VERSION, 0));
	// KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED (Linux 6.17 UAPI): what the VMM facade
	// requires on arm64 before it maps device memory cacheable (vmm/stage2.rs).
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	int fds[2] = {kvm, vm};
	for (int i = 0; i < 2; i++) {
		int cap = fds[i] < 0 ? -1 : ioctl(fds[i], KVM_CHECK_EXTENSION, 243);
		const char *on = i ? "vm" : "dev";
		if (cap < 0)
			printf("@@ KVM cap_arm_cacheable_pfnmap.%s=error (%m)\n", on);
		else
			printf("@@ KVM cap_arm_cacheable_pfnmap.%s=%d\n", on, cap);
	}

	// x0 = MMIO_ADDR, x1 = 42; loop: str x1, [x0]; b loop
	static const uint32_t exits[] = {0xd2a40000, 0xd2800541, 0xf9000001, 0x17ffffff};
	struct kvm_run *run;
	int vcpu = vcpu_with(kvm, exits, sizeof(exits), &run);
	if (vcpu < 0)
		return 1;
	double t0 = now();
	if (run_to_mmio(vcpu, run))
		return 1;
	printf("@@ KVM first_exit_ms=%.1f\n", (now() - t0) * 1e3);
	const int n = 1000;
	t0 = now();
	for (int i = 0; i < n; i++)
		if (run_to_mmio(vcpu, run))
			return 1;
	printf("@@ KVM mmio_exit_us=%.1f (mean of %d)\n", (now() - t0) * 1e6 / n, n);

	// x0 = MMIO_ADDR, x1 = 42, x3 = 100,000,000; loop: subs x3, x3, #1; b.ne loop;
	// str x1, [x0]; b .
	static const uint32_t spin[] = {0xd2a40000, 0xd2800541, 0xd29c2003, 0xf2a0bea3,
					0xf1000463, 0x54ffffe1, 0xf9000001, 0x14000000};
	vcpu = vcpu_with(kvm, spin, sizeof(spin), &run);
	if (vcpu < 0)
		return 1;
	t0 = now();
	if (run_to_mmio(vcpu, run))
		return 1;
	double s = now() - t0;
	uint64_t x3 = 1;
	struct kvm_one_reg counter = {
		.id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
		      KVM_REG_ARM_CORE_REG(regs.regs[3]),
		.addr = (uintptr_t)&x3,
	};
	if (ioctl(vcpu, KVM_GET_ONE_REG, &counter) < 0 || x3 != 0)
		return fail("the loop counter x3 did not reach 0");
	printf("@@ KVM spin_100M_s=%.2f (%.0f M guest loop iterations/s)\n", s, 100 / s);
	printf("@@ KVM ok\n");
	return 0;
}
