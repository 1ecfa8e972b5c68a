/*
 * hv_image.h - linked clones: qcow2 overlays on a golden image.
 *
 * A desktop's disk is a qcow2 overlay whose backing file is the golden
 * image, with the backing format given explicitly (QEMU then never probes
 * it, and never writes it). Creating one takes milliseconds whatever the
 * golden image's size. Work goes through qemu-img, run with an argv array,
 * or copies a blank overlay made that way.
 */
#ifndef HV_IMAGE_H
#define HV_IMAGE_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Checks that golden is a readable qcow2 image. Returns 0, -ENOENT (with
 * err saying which file), or -EINVAL when it is not qcow2.
 */
int hv_image_check_golden(const char *golden, char *err, size_t err_size);

/*
 * Creates overlay as a fresh linked clone of golden, atomically: it is
 * built under a temporary name and renamed, so a crash leaves either the
 * old file, the new one, or a "*.tmp" that hv_image_clean_tmp() removes.
 * An existing overlay is replaced (that is "refresh": the guest's writes
 * are gone). Returns 0 or a negative errno with qemu-img's message in err.
 */
int hv_image_create_overlay(const char *golden, const char *overlay, char *err,
                            size_t err_size);

/*
 * Makes overlay a byte copy of blank: an overlay hv_image_create_overlay()
 * made on the same backing file, which nothing ever opens. The result is
 * what qemu-img would make (a qcow2 overlay holds nothing of its own but
 * the backing file's name and size), without qemu-img's start-up: ~40 ms
 * of CPU, most of an instant clone's work before its QEMU starts.
 * Atomic like hv_image_create_overlay(). Returns 0 or a negative errno
 * with the reason in err.
 */
int hv_image_copy_overlay(const char *blank, const char *overlay, char *err,
                          size_t err_size);

/*
 * Copies src to dst with the given mode, atomically (a temporary file
 * renamed over dst). Returns 0 or a negative errno.
 */
int hv_image_copy_file(const char *src, const char *dst, mode_t mode);

/* Removes overlay; a missing file is not an error. */
int hv_image_delete(const char *overlay);

/* Removes a leftover "<overlay>.tmp" from an interrupted create. */
void hv_image_clean_tmp(const char *overlay);

#endif
