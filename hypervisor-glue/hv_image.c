/*
 * hv_image.c - qcow2 linked clones through qemu-img or copies of a blank
 * overlay (see hv_image.h).
 */
#include "hv_image.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hv_proc.h"

#define HV_IMAGE_TIMEOUT_MS 30000

int hv_image_check_golden(const char *golden, char *err, size_t err_size)
{
    static const char qcow2_magic[4] = {'Q', 'F', 'I', 0xfb};
    char magic[4];
    int fd = open(golden, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        int rc = -errno;
        snprintf(err, err_size, "golden image %s: %s", golden, strerror(-rc));
        return rc;
    }
    n = read(fd, magic, sizeof(magic));
    close(fd);
    if (n != (ssize_t)sizeof(magic) || memcmp(magic, qcow2_magic, 4) != 0) {
        snprintf(err, err_size, "golden image %s: not a qcow2 image", golden);
        return -EINVAL;
    }
    return 0;
}

int hv_image_create_overlay(const char *golden, const char *overlay, char *err,
                            size_t err_size)
{
    char tmp[4096], out[1024];
    int rc = hv_image_check_golden(golden, err, err_size);

    if (rc < 0)
        return rc;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", overlay) >= sizeof(tmp))
        return -ENAMETOOLONG;
    char *const argv[] = {"qemu-img",     "create", "-q",    "-f",
                          "qcow2",        "-F",     "qcow2", "-b",
                          (char *)golden, tmp,      NULL};
    unlink(tmp);
    rc = hv_proc_run(argv, HV_IMAGE_TIMEOUT_MS, out, sizeof(out));
    if (rc < 0) {
        snprintf(err, err_size, "qemu-img create %s: %s", overlay,
                 out[0] ? out : strerror(-rc));
        unlink(tmp);
        return rc == -ECHILD ? -EIO : rc;
    }
    if (rename(tmp, overlay) < 0) {
        rc = -errno;
        snprintf(err, err_size, "%s: %s", overlay, strerror(-rc));
        unlink(tmp);
        return rc;
    }
    return 0;
}

int hv_image_copy_file(const char *src, const char *dst, mode_t mode)
{
    char tmp[PATH_MAX + 8], buf[65536];
    int in = open(src, O_RDONLY | O_CLOEXEC), out, rc = 0;
    ssize_t n;

    if (in < 0)
        return -errno;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", dst) >= sizeof(tmp)) {
        close(in);
        return -ENAMETOOLONG;
    }
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (out < 0) {
        rc = -errno;
        close(in);
        return rc;
    }
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n) {
            rc = -EIO;
            break;
        }
    if (n < 0)
        rc = -errno;
    close(in);
    if (close(out) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, dst) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int hv_image_copy_overlay(const char *blank, const char *overlay, char *err,
                          size_t err_size)
{
    int rc = hv_image_check_golden(blank, err, err_size);

    if (rc < 0)
        return rc;
    rc = hv_image_copy_file(blank, overlay, 0600);
    if (rc < 0)
        snprintf(err, err_size, "%s from %s: %s", overlay, blank,
                 strerror(-rc));
    return rc;
}

int hv_image_delete(const char *overlay)
{
    if (unlink(overlay) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

void hv_image_clean_tmp(const char *overlay)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", overlay) < sizeof(tmp))
        unlink(tmp);
}
