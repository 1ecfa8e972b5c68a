# The test desktop guest: Debian's kernel, a busybox initrd and an ext4 root
# disk running testdesk. Included by the top-level GNUmakefile, which defines
#   GUEST          output directory (build/guest)
#   GUEST_TESTDESK the static testdesk binary, and the rule that builds it
#   GUEST_AGENT    the static deskpool-agent binary, likewise
#
# Outputs: $(GUEST)/vmlinuz, $(GUEST)/initrd.img, $(GUEST)/root.qcow2.
# The kernel package is resolved and downloaded once and then kept in
# $(GUEST_KERNEL_DIR); `rm -rf build/guest/kernel` moves to Debian's current
# kernel on the next build. Every recipe writes a temporary file and renames
# it, so an interrupted build never leaves a stale-but-new-looking output.

GUEST_IMAGE_SRC   := hypervisor-glue/guest-image
GUEST_KERNEL_DIR  := $(GUEST)/kernel
GUEST_MODULES_DIR := $(GUEST)/modules
# Static busybox (Debian package busybox-static) copied into both images.
GUEST_BUSYBOX     ?= /bin/busybox

# Stamp-like files inside the directories above: each is written last by the
# script that fills its directory.
GUEST_KERNEL_PACKAGE := $(GUEST_KERNEL_DIR)/package
GUEST_KERNEL_RELEASE := $(GUEST_KERNEL_DIR)/release
GUEST_MODULES_ORDER  := $(GUEST_MODULES_DIR)/lib/modules/load-order

.PHONY: guest-image
guest-image: $(GUEST)/vmlinuz $(GUEST)/initrd.img $(GUEST)/root.qcow2

# Name of the versioned kernel package (e.g. linux-image-6.1.0-56-amd64),
# asked from apt once, not on every make run. (lib.sh is left out of these two
# rules' prerequisites on purpose: editing it must not re-download 70 MB.)
$(GUEST_KERNEL_PACKAGE): $(GUEST_IMAGE_SRC)/resolve-kernel.sh
	bash $(GUEST_IMAGE_SRC)/resolve-kernel.sh $@

# Download and unpack the package; the file holds the kernel release.
$(GUEST_KERNEL_RELEASE): $(GUEST_KERNEL_PACKAGE) $(GUEST_IMAGE_SRC)/fetch-kernel.sh
	bash $(GUEST_IMAGE_SRC)/fetch-kernel.sh $< $(GUEST_KERNEL_DIR) $@

$(GUEST)/vmlinuz: $(GUEST_KERNEL_RELEASE)
	install -m 0644 "$(GUEST_KERNEL_DIR)/root/boot/vmlinuz-$$(cat $<)" $@.tmp
	mv -f $@.tmp $@

# The modules both images carry, with their load order.
$(GUEST_MODULES_ORDER): $(GUEST_KERNEL_RELEASE) $(GUEST_IMAGE_SRC)/modules.list \
		$(GUEST_IMAGE_SRC)/collect-modules.sh $(GUEST_IMAGE_SRC)/lib.sh
	bash $(GUEST_IMAGE_SRC)/collect-modules.sh $(GUEST_KERNEL_DIR)/root "$$(cat $<)" \
		$(GUEST_IMAGE_SRC)/modules.list $(GUEST_MODULES_DIR)

$(GUEST)/initrd.img: $(GUEST_MODULES_ORDER) $(GUEST_IMAGE_SRC)/initrd-init \
		$(GUEST_IMAGE_SRC)/build-initrd.sh $(GUEST_IMAGE_SRC)/lib.sh $(wildcard $(GUEST_BUSYBOX))
	bash $(GUEST_IMAGE_SRC)/build-initrd.sh $(GUEST_BUSYBOX) $(GUEST_MODULES_DIR) \
		$(GUEST_IMAGE_SRC)/initrd-init $@

$(GUEST)/root.qcow2: $(GUEST_TESTDESK) $(GUEST_AGENT) $(GUEST_MODULES_ORDER) $(GUEST_IMAGE_SRC)/root-init \
		$(GUEST_IMAGE_SRC)/build-root.sh $(GUEST_IMAGE_SRC)/lib.sh $(wildcard $(GUEST_BUSYBOX))
	bash $(GUEST_IMAGE_SRC)/build-root.sh $(GUEST_BUSYBOX) $(GUEST_MODULES_DIR) \
		$(GUEST_IMAGE_SRC)/root-init $(GUEST_TESTDESK) $(GUEST_AGENT) $@
