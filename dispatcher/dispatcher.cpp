/*
 * libsimpler_aicpu_dispatcher.so -- the runtime-agnostic AICPU dispatcher.
 *
 * The extend-kernels loader calls DynTileFwkBackendKernelServerInit once with
 * the inner runtime SO's bytes; the dispatcher fingerprints them (XXH3-64,
 * the same value the host computes in Python) and preinstalls them as
 * <preinstall_dir>/simpler_inner_<fp>_<device_id>.so (upstream #890: the two
 * dies of an a2a3 chip share one filesystem, so the name carries the die).
 * The file appears atomically (temp file + fsync + rename + directory fsync),
 * so any number of processes may bootstrap at once and none ever sees a torn
 * file.
 *
 * The legacy flag reproduces the writer #890 replaced, for its regression test
 * only: the content-only name simpler_inner_<fp>.so, rewritten in place
 * (truncate + write) at every Init, under whoever has it mapped.
 *
 * DynTileFwkBackendKernelServer is also the device-side probe
 * (docs/architecture.md "The preinstall protocol"): with the probe flag it
 * answers in DeviceArgs.probe_answer whether the named file is installed and
 * intact.  Both non-Init entry points otherwise keep their upstream contract
 * and return 0.
 *
 * Only the three entry points are exported (version script + hidden
 * visibility); everything else stays local.
 */
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "device_args.h"

#define SIMPLER_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr int kOk = 0;
constexpr int kFail = 1;
constexpr size_t kPathMax = 4096;

/* "simpler_inner_" + 16 hex digits + "_" + device id + ".so" (legacy: no device id) */
int inner_path(char *out, size_t cap, const char *dir, uint64_t fp, uint64_t device_id,
               bool legacy) {
    const auto hex = static_cast<unsigned long long>(fp);
    int n = legacy ? std::snprintf(out, cap, "%s/simpler_inner_%016llx.so", dir, hex)
                   : std::snprintf(out, cap, "%s/simpler_inner_%016llx_%llu.so", dir, hex,
                                   static_cast<unsigned long long>(device_id));
    return (n > 0 && static_cast<size_t>(n) < cap) ? kOk : kFail;
}

bool write_all(int fd, const uint8_t *data, size_t len) {
    while (len > 0) {
        ssize_t w = ::write(fd, data, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data += w;
        len -= static_cast<size_t>(w);
    }
    return true;
}

/* True when `path` is a regular file holding exactly `len` bytes hashing to `fp`. */
bool already_installed(const char *path, uint64_t fp, size_t len) {
    int fd = ::open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st;
    bool same = false;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<size_t>(st.st_size) == len) {
        XXH3_state_t *state = XXH3_createState();
        if (state != nullptr && XXH3_64bits_reset(state) == XXH_OK) {
            uint8_t buf[1 << 16];
            ssize_t r;
            bool ok = true;
            while ((r = ::read(fd, buf, sizeof buf)) != 0) {
                if (r < 0) {
                    if (errno == EINTR) continue;
                    ok = false;
                    break;
                }
                XXH3_64bits_update(state, buf, static_cast<size_t>(r));
            }
            same = ok && XXH3_64bits_digest(state) == fp;
        }
        XXH3_freeState(state);
    }
    ::close(fd);
    return same;
}

int fsync_dir(const char *dir) {
    int dfd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return kFail;
    int rc = ::fsync(dfd);
    ::close(dfd);
    return rc == 0 ? kOk : kFail;
}

/* Publish `data` at `final_path` atomically; the temp file never outlives a failure. */
int atomic_install(const char *dir, const char *final_path, const uint8_t *data, size_t len) {
    char tmp[kPathMax];
    int n = std::snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", final_path);
    if (n <= 0 || static_cast<size_t>(n) >= sizeof tmp) return kFail;
    int fd = ::mkstemp(tmp);
    if (fd < 0) return kFail;
    bool ok = write_all(fd, data, len) && ::fsync(fd) == 0 && ::fchmod(fd, 0755) == 0;
    ok = (::close(fd) == 0) && ok;
    if (!ok || ::rename(tmp, final_path) != 0) {
        ::unlink(tmp);
        return kFail;
    }
    return fsync_dir(dir);
}

/* The pre-#890 write: in place, so a reader that has the file mapped sees it torn. */
int legacy_install(const char *final_path, const uint8_t *data, size_t len) {
    int fd = ::open(final_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0755);
    if (fd < 0) return kFail;
    bool ok = write_all(fd, data, len);
    ok = (::close(fd) == 0) && ok;
    return ok ? kOk : kFail;
}

simpler::DeviceArgs *device_args_of(void *kernel_args) {
    if (kernel_args == nullptr) return nullptr;
    const auto *ka = static_cast<const simpler::KernelArgs *>(kernel_args);
    return reinterpret_cast<simpler::DeviceArgs *>(static_cast<uintptr_t>(ka->device_args));
}

/* Validates the bundle and yields its bytes, length, fingerprint and directory. */
int read_bundle(void *kernel_args, const uint8_t **data, size_t *len, uint64_t *fp,
                const char **dir) {
    const simpler::DeviceArgs *da = device_args_of(kernel_args);
    if (da == nullptr || da->inner_so_bin == 0 || da->inner_so_len == 0 || da->preinstall_dir == 0)
        return kFail;
    *data = reinterpret_cast<const uint8_t *>(static_cast<uintptr_t>(da->inner_so_bin));
    *len = static_cast<size_t>(da->inner_so_len);
    *dir = reinterpret_cast<const char *>(static_cast<uintptr_t>(da->preinstall_dir));
    if ((*dir)[0] == '\0') return kFail;
    *fp = XXH3_64bits(*data, *len);
    return kOk;
}

/*
 * The kernel servers' upstream contract is to return 0.  A probe request (the
 * probe flag, a fingerprint, a length and a directory, no bytes) is answered in
 * probe_answer: installed and intact, or missing.  Anything else is left alone.
 */
int serve(void *kernel_args) {
    simpler::DeviceArgs *da = device_args_of(kernel_args);
    if (da == nullptr || (da->flags & simpler::kFlagProbe) == 0) return kOk;
    const auto *dir = reinterpret_cast<const char *>(static_cast<uintptr_t>(da->preinstall_dir));
    char path[kPathMax];
    bool installed = dir != nullptr && dir[0] != '\0' && da->inner_so_len != 0 &&
                     inner_path(path, sizeof path, dir, da->inner_so_fp, da->device_id,
                                (da->flags & simpler::kFlagLegacyName) != 0) == kOk &&
                     already_installed(path, da->inner_so_fp, da->inner_so_len);
    da->probe_answer = installed ? simpler::kProbeInstalled : simpler::kProbeMissing;
    return kOk;
}

}  // namespace

/*
 * Preinstalls the inner SO.  Returns 0 on success; 1 on null args, an empty
 * bundle or a failed write.
 */
SIMPLER_EXPORT int DynTileFwkBackendKernelServerInit(void *kernel_args) {
    const uint8_t *data;
    size_t len;
    uint64_t fp;
    const char *dir;
    if (read_bundle(kernel_args, &data, &len, &fp, &dir) != kOk) return kFail;
    if (::mkdir(dir, 0755) != 0 && errno != EEXIST) return kFail;
    const simpler::DeviceArgs *da = device_args_of(kernel_args);
    const bool legacy = (da->flags & simpler::kFlagLegacyName) != 0;
    char path[kPathMax];
    if (inner_path(path, sizeof path, dir, fp, da->device_id, legacy) != kOk) return kFail;
    if (legacy) return legacy_install(path, data, len);
    if (already_installed(path, fp, len)) return kOk;
    return atomic_install(dir, path, data, len);
}

SIMPLER_EXPORT int DynTileFwkBackendKernelServer(void *kernel_args) { return serve(kernel_args); }

SIMPLER_EXPORT int StaticTileFwkBackendKernelServer(void *kernel_args) {
    return serve(kernel_args);
}
