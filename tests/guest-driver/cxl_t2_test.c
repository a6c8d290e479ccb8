// SPDX-License-Identifier: GPL-2.0-only
/*
 * cxl_t2_test - a minimal CXL Type-2 accelerator driver for the nested end-to-end test
 * of cxl-passthrough (tests/tests/nested_e2e.rs).
 *
 * It binds the simulated CXL device that cloud-hypervisor's test-only "cxl-sim" feature
 * puts behind the emulated CXL root port, registers it with the kernel's CXL core
 * through the Type-2 accelerator API (Linux 7.3), lets the core assemble the region
 * from the committed and locked decoders, maps that region and does I/O through it:
 *
 *   /sys/bus/pci/devices/<bdf>/t2_region  read: "start=0x... size=0x..." (the region's
 *                                         HPA range; the memdev is the device's memN child)
 *   /sys/bus/pci/devices/<bdf>/t2_io      write "OFFSET TAG NONCE": writes the dwords
 *                                         NONCE, ~NONCE, "T2DR", TAG at region + OFFSET
 *                                         through the driver's mapping and reads them back;
 *                                         read: "seed=<4 dwords at 0> io=<OFFSET>:<4 dwords>"
 *   /sys/bus/pci/devices/<bdf>/t2_mem     write "OFFSET" or "OFFSET VALUE" (decimal; a dword
 *                                         write); read: the dword at OFFSET. The window
 *                                         checks use it once the region is the driver's
 *                                         (Linux then refuses /dev/mem there).
 *
 * GPL-2.0-only because the CXL core's Type-2 API is exported GPL-only (namespace "CXL").
 */
#include <linux/io.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/range.h>
#include <cxl/cxl.h>
#include <cxl/pci.h>

#define T2_IO_DWORDS 4
#define T2_IO_MAGIC 0x52443254 /* "T2DR" */

struct t2_dev {
	struct cxl_dev_state cxlds; /* first: devm_cxl_dev_state_create() requires it */
	struct cxl_memdev *cxlmd;
	struct range hpa;
	u32 *mem;
	struct mutex lock; /* serialises t2_io */
	u64 last_off;
	u32 last[T2_IO_DWORDS];
	bool done;
	u64 cursor; /* t2_mem */
};

/* The device memory size the device advertises in DVSEC Range 1. */
static u64 t2_range1_size(struct pci_dev *pdev, u16 dvsec)
{
	u32 hi = 0, lo = 0;

	pci_read_config_dword(pdev, dvsec + PCI_DVSEC_CXL_RANGE_SIZE_HIGH(0), &hi);
	pci_read_config_dword(pdev, dvsec + PCI_DVSEC_CXL_RANGE_SIZE_LOW(0), &lo);
	return ((u64)hi << 32) | (lo & 0xf0000000);
}

static ssize_t t2_region_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct t2_dev *t2 = dev_get_drvdata(dev);

	return sysfs_emit(buf, "start=%#llx size=%#llx\n", t2->hpa.start, range_len(&t2->hpa));
}
static DEVICE_ATTR_RO(t2_region);

static ssize_t t2_io_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct t2_dev *t2 = dev_get_drvdata(dev);
	u32 seed[T2_IO_DWORDS];
	ssize_t n;
	int i;

	guard(mutex)(&t2->lock);
	for (i = 0; i < T2_IO_DWORDS; i++)
		seed[i] = READ_ONCE(t2->mem[i]);
	n = sysfs_emit(buf, "seed=%#x %#x %#x %#x", seed[0], seed[1], seed[2], seed[3]);
	if (t2->done)
		n += sysfs_emit_at(buf, n, " io=%#llx:%#x %#x %#x %#x", t2->last_off, t2->last[0],
				   t2->last[1], t2->last[2], t2->last[3]);
	return n + sysfs_emit_at(buf, n, "\n");
}

static ssize_t t2_io_store(struct device *dev, struct device_attribute *attr, const char *buf,
			   size_t count)
{
	struct t2_dev *t2 = dev_get_drvdata(dev);
	u32 want[T2_IO_DWORDS];
	unsigned long long off;
	u32 tag, nonce;
	int i;

	if (sscanf(buf, "%llu %u %u", &off, &tag, &nonce) != 3)
		return -EINVAL;
	if (off % 4 || off > range_len(&t2->hpa) - sizeof(want))
		return -ERANGE;
	want[0] = nonce;
	want[1] = ~nonce;
	want[2] = T2_IO_MAGIC;
	want[3] = tag;
	guard(mutex)(&t2->lock);
	for (i = 0; i < T2_IO_DWORDS; i++)
		WRITE_ONCE(t2->mem[off / 4 + i], want[i]);
	for (i = 0; i < T2_IO_DWORDS; i++)
		t2->last[i] = READ_ONCE(t2->mem[off / 4 + i]);
	t2->last_off = off;
	t2->done = true;
	return count;
}
static DEVICE_ATTR_RW(t2_io);

/* One dword of the region at the cursor, through the driver's mapping. */
static ssize_t t2_mem_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct t2_dev *t2 = dev_get_drvdata(dev);

	guard(mutex)(&t2->lock);
	return sysfs_emit(buf, "%#x\n", READ_ONCE(t2->mem[t2->cursor / 4]));
}

/* "OFFSET" moves the cursor; "OFFSET VALUE" also writes the dword there. */
static ssize_t t2_mem_store(struct device *dev, struct device_attribute *attr, const char *buf,
			    size_t count)
{
	struct t2_dev *t2 = dev_get_drvdata(dev);
	unsigned long long off;
	u32 val;
	int n;

	n = sscanf(buf, "%llu %u", &off, &val);
	if (n < 1)
		return -EINVAL;
	if (off % 4 || off > range_len(&t2->hpa) - 4)
		return -ERANGE;
	guard(mutex)(&t2->lock);
	t2->cursor = off;
	if (n == 2)
		WRITE_ONCE(t2->mem[off / 4], val);
	return count;
}
static DEVICE_ATTR_RW(t2_mem);

static struct attribute *t2_attrs[] = {
	&dev_attr_t2_region.attr,
	&dev_attr_t2_io.attr,
	&dev_attr_t2_mem.attr,
	NULL,
};
ATTRIBUTE_GROUPS(t2);

static int t2_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct t2_dev *t2;
	void *mem;
	u16 dvsec;
	u64 size;
	int rc;

	rc = pcim_enable_device(pdev);
	if (rc)
		return dev_err_probe(dev, rc, "enabling the device\n");
	dvsec = pci_find_dvsec_capability(pdev, PCI_VENDOR_ID_CXL, PCI_DVSEC_CXL_DEVICE);
	if (!dvsec)
		return dev_err_probe(dev, -ENODEV, "no CXL Device DVSEC\n");
	t2 = devm_cxl_dev_state_create(dev, CXL_DEVTYPE_DEVMEM, pci_get_dsn(pdev), dvsec,
				       struct t2_dev, cxlds, false);
	if (IS_ERR(t2))
		return dev_err_probe(dev, PTR_ERR(t2), "creating the CXL device state\n");
	rc = devm_mutex_init(dev, &t2->lock);
	if (rc)
		return rc;
	/* The component registers stay the CXL core's: the BAR is not requested here. */
	rc = cxl_pci_setup_regs(pdev, CXL_REGLOC_RBI_COMPONENT, &t2->cxlds.reg_map);
	if (rc)
		return dev_err_probe(dev, rc, "locating the component registers\n");
	if (!t2->cxlds.reg_map.component_map.hdm_decoder.valid)
		return dev_err_probe(dev, -ENXIO, "no HDM decoder capability\n");
	size = t2_range1_size(pdev, dvsec);
	if (!size)
		return dev_err_probe(dev, -ENXIO, "DVSEC Range 1 reports no memory\n");
	t2->cxlds.media_ready = true;
	rc = cxl_set_capacity(&t2->cxlds, size);
	if (rc)
		return dev_err_probe(dev, rc, "setting the capacity to %#llx\n", size);
	t2->cxlmd = devm_cxl_probe_mem(&t2->cxlds, &t2->hpa);
	if (IS_ERR(t2->cxlmd))
		return dev_err_probe(dev, PTR_ERR(t2->cxlmd), "memdev/region\n");
	if (range_len(&t2->hpa) < size)
		return dev_err_probe(dev, -ENXIO, "region %#llx-%#llx smaller than %#llx\n",
				     t2->hpa.start, t2->hpa.end, size);
	mem = devm_memremap(dev, t2->hpa.start, range_len(&t2->hpa), MEMREMAP_WB);
	if (IS_ERR(mem))
		return dev_err_probe(dev, PTR_ERR(mem), "mapping the region\n");
	t2->mem = mem;
	pci_set_drvdata(pdev, t2);
	dev_info(dev, "cxl_t2_test: region %#llx-%#llx\n", t2->hpa.start, t2->hpa.end);
	return 0;
}

/* The simulated device of cxl-passthrough's simulator (backend::sim, SimConfig). */
static const struct pci_device_id t2_ids[] = {
	{ PCI_DEVICE(0x1b36, 0x00c2) },
	{}
};
MODULE_DEVICE_TABLE(pci, t2_ids);

static struct pci_driver t2_driver = {
	.name = "cxl_t2_test",
	.id_table = t2_ids,
	.probe = t2_probe,
	.dev_groups = t2_groups,
};
module_pci_driver(t2_driver);

MODULE_DESCRIPTION("cxl-passthrough nested test: CXL Type-2 driver building a region");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS("CXL");
