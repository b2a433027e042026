/*
 * device_args.h -- the host <-> dispatcher protocol (docs/architecture.md).
 *
 * The host copies the dispatcher and inner SO bytes into device memory, fills a
 * 160-byte DeviceArgs block and launches the extend-kernels loader with a
 * KernelArgs whose device_args (offset 40) points at it.  Fields the
 * simulation does not use are kept as reserved words so that every offset
 * matches the protocol; static_asserts pin them.
 */
#ifndef SIMPLER_DEVICE_ARGS_H
#define SIMPLER_DEVICE_ARGS_H

#include <cstddef>
#include <cstdint>

namespace simpler {

/* DeviceArgs.flags (simulation extension). */
constexpr uint64_t kFlagLegacyName = 1;  /* pre-#890: content-only name, rewritten in place */
constexpr uint64_t kFlagProbe = 2;       /* a probe: answer in probe_answer, write nothing  */
/* DeviceArgs.probe_answer values; 0 means "not answered". */
constexpr uint64_t kProbeInstalled = 1;
constexpr uint64_t kProbeMissing = 2;

struct DeviceArgs {
    uint64_t reserved_head[11];  /*   0: fields the simulation does not read      */
    uint64_t inner_so_fp;        /*  88: probe: the fingerprint asked about       */
    uint64_t aicpu_so_bin;       /*  96: device address of the dispatcher bytes   */
    uint64_t aicpu_so_len;       /* 104 */
    uint64_t device_id;          /* 112 */
    uint64_t inner_so_bin;       /* 120: device address of the inner SO bytes     */
    uint64_t inner_so_len;       /* 128 */
    uint64_t preinstall_dir;     /* 136: simulation extension: char* directory   */
    uint64_t flags;              /* 144: simulation extension: kFlag* bits        */
    uint64_t probe_answer;       /* 152: written by a probe: kProbe*              */
};

struct KernelArgs {
    uint64_t reserved_head[5];   /*   0 */
    uint64_t device_args;        /*  40: DeviceArgs*                              */
    uint64_t reserved_tail[2];   /*  48 */
};

static_assert(sizeof(DeviceArgs) == 160, "DeviceArgs is a 160-byte block");
static_assert(offsetof(DeviceArgs, aicpu_so_bin) == 96, "DeviceArgs.aicpu_so_bin");
static_assert(offsetof(DeviceArgs, aicpu_so_len) == 104, "DeviceArgs.aicpu_so_len");
static_assert(offsetof(DeviceArgs, device_id) == 112, "DeviceArgs.device_id");
static_assert(offsetof(DeviceArgs, inner_so_bin) == 120, "DeviceArgs.inner_so_bin");
static_assert(offsetof(DeviceArgs, inner_so_len) == 128, "DeviceArgs.inner_so_len");
static_assert(offsetof(DeviceArgs, preinstall_dir) == 136, "DeviceArgs.preinstall_dir");
static_assert(offsetof(DeviceArgs, inner_so_fp) == 88, "DeviceArgs.inner_so_fp");
static_assert(offsetof(DeviceArgs, flags) == 144, "DeviceArgs.flags");
static_assert(offsetof(DeviceArgs, probe_answer) == 152, "DeviceArgs.probe_answer");
static_assert(offsetof(KernelArgs, device_args) == 40, "KernelArgs.device_args");
static_assert(sizeof(KernelArgs) == 64, "KernelArgs is 64 bytes");

}  // namespace simpler

#endif  // SIMPLER_DEVICE_ARGS_H
