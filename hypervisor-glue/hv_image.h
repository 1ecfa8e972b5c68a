/*
 * hv_image.h - linked clones: qcow2 overlays on a golden image.
 *
 * A desktop's disk is a qcow2 overlay whose backing file is the golden
 * image, with the backing format given explicitly (QEMU then never probes
 * it, and never writes it). Creating one takes milliseconds whatever the
 * golden image's size. Work goes through qemu-img, run with an argv array.
 */
#ifndef HV_IMAGE_H
#define HV_IMAGE_H

#include <stddef.h>

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

/* Removes overlay; a missing file is not an error. */
int hv_image_delete(const char *overlay);

/* Removes a leftover "<overlay>.tmp" from an interrupted create. */
void hv_image_clean_tmp(const char *overlay);

#endif
