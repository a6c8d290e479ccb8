/* CXL test payload for the patched cloud-hypervisor (PVH boot, no OS).
 *
 * From inside the guest it checks what a CXL-aware OS relies on and prints one line per
 * fact on the serial port (0x3f8):
 *   - the CEDT (CHBS + CFMWS) and the ACPI0017 / ACPI0016 objects in the DSDT;
 *   - the CXL device below its CXL root port on the PCI segments of the MCFG (the port's
 *     Port Number is the host-bridge decoder's target), its Register Locator DVSEC, the
 *     component register block in its BAR and, through the VMM's overlay, HDM decoder 0:
 *     committed, locked, at the CFMWS window base;
 *   - the window: reads the simulator's seed at offset 0, writes a pattern at 0x100 and
 *     asks the VMM (test-only port 0xce0) to print what the device memory holds there.
 * Then it powers the VM off (ACPI S5 on port 0x600), or with cmdline "wait" halts
 * forever (to exercise the VMM's API), or with "reboot" resets the VM (i8042). */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

static int failures;

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline u8 r8(u64 a) { return *(volatile u8 *)a; }
static inline u16 r16(u64 a) { return *(volatile u16 *)a; }
static inline u32 r32(u64 a) { return *(volatile u32 *)a; }
static inline u64 r64(u64 a) { return *(volatile u64 *)a; }
static inline void w8(u64 a, u8 v) { *(volatile u8 *)a = v; }

static void putc_(char c) { outb(0x3f8, (u8)c); }
static void puts_(const char *s) { while (*s) putc_(*s++); }
static void hex(u64 v) {
	puts_("0x");
	int started = 0;
	for (int i = 60; i >= 0; i -= 4) {
		int d = (v >> i) & 0xf;
		if (d || started || i == 0) { putc_("0123456789abcdef"[d]); started = 1; }
	}
}
static void kv(const char *k, u64 v) { puts_(k); hex(v); }
static void nl(void) { putc_('\n'); }
static void check(const char *what, int ok) {
	puts_(ok ? "PASS " : "FAIL "); puts_(what); nl();
	if (!ok) failures++;
}
static int memeq(u64 a, const char *s, int n) {
	for (int i = 0; i < n; i++) if (r8(a + i) != (u8)s[i]) return 0;
	return 1;
}

/* ---- paging: map the 1 GiB range holding `addr` with 2 MiB pages ---- */
extern u64 pml4[512], pdpt0[512];
extern u8 pt_pool[];
static int pool_used;
static u64 *alloc_table(void) {
	u64 *t = (u64 *)(pt_pool + 4096 * pool_used++);
	for (int i = 0; i < 512; i++) t[i] = 0;
	return t;
}
static void map_gib(u64 addr, int uncached) {
	u64 l4 = (addr >> 39) & 511, l3 = (addr >> 30) & 511;
	if (!(pml4[l4] & 1)) pml4[l4] = (u64)alloc_table() | 3;
	u64 *pdpt = (u64 *)(pml4[l4] & ~0xfffULL);
	if (pdpt[l3] & 1) return;
	u64 *pd = alloc_table();
	u64 base = addr & ~((1ULL << 30) - 1);
	for (int i = 0; i < 512; i++)
		pd[i] = (base + ((u64)i << 21)) | 0x83 | (uncached ? 0x18 : 0);
	pdpt[l3] = (u64)pd | 3;
	__asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" ::: "rax", "memory");
}

/* ---- ACPI ---- */
static u64 find_table(u64 xsdt, const char *sig) {
	u32 len = r32(xsdt + 4);
	for (u64 p = xsdt + 36; p + 8 <= xsdt + len; p += 8) {
		u64 t = r64(p);
		if (memeq(t, sig, 4)) return t;
	}
	return 0;
}
static int find_bytes(u64 t, const char *s, int n) {
	u32 len = r32(t + 4);
	for (u64 p = t + 36; p + n <= t + len; p++)
		if (memeq(p, s, n)) return 1;
	return 0;
}

/* HDM decoder 0 behind a CXL.cachemem capability array at `cm`; 0 if absent. */
static u64 hdm_block(u64 cm) {
	u32 hdr = r32(cm);
	if ((hdr & 0xffff) != 1) return 0;
	for (int i = 1; i <= (int)(hdr >> 24); i++) {
		u32 c = r32(cm + 4 * i);
		if ((c & 0xffff) == 5) return cm + (c >> 20);
	}
	return 0;
}
static u64 dec_base_of(u64 hdm) { return r32(hdm + 0x10) | ((u64)r32(hdm + 0x14) << 32); }
static u64 dec_size_of(u64 hdm) { return r32(hdm + 0x18) | ((u64)r32(hdm + 0x1c) << 32); }

static int has(const char *hay, const char *needle) {
	for (; *hay; hay++) {
		const char *a = hay, *b = needle;
		while (*a && *b && *a == *b) { a++; b++; }
		if (!*b) return 1;
	}
	return 0;
}

/* ---- PCI ---- */
static u64 ecam(u64 base, int bus, int dev, int off) {
	return base + ((u64)bus << 20) + ((u64)dev << 15) + off;
}

/* The root port (type-1 bridge) above each bus: secondary bus -> PCIe port type and
 * Port Number (Link Capabilities bits 31:24), and its component block. */
#define MAXBR 8
static int br_seg[MAXBR], br_sec[MAXBR], br_type[MAXBR], br_port[MAXBR]; static int nbr;
static u64 br_comp[MAXBR];

/* Offset of the DVSEC `id` (CXL vendor) in the extended config space of bus/dev, or 0. */
static int find_dvsec(u64 base, int bus, int dev, int id) {
	for (int off = 0x100, n = 0; off && n < 64; n++) {
		u32 h = r32(ecam(base, bus, dev, off));
		if (h == 0 || h == 0xffffffff) return 0;
		if ((h & 0xffff) == 0x23 && (r32(ecam(base, bus, dev, off + 4)) & 0xffff) == 0x1e98 &&
		    r16(ecam(base, bus, dev, off + 8)) == id)
			return off;
		off = h >> 20;
	}
	return 0;
}

/* Guest address of the component block named by the Register Locator DVSEC, or 0. */
static u64 component_block(u64 base, int bus, int dev) {
	int off = find_dvsec(base, bus, dev, 8);
	if (!off) return 0;
	u32 dlen = r32(ecam(base, bus, dev, off + 4)) >> 20;
	for (int b = 0xc; b + 8 <= (int)dlen; b += 8) {
		u32 lo = r32(ecam(base, bus, dev, off + b));
		u32 hi = r32(ecam(base, bus, dev, off + b + 4));
		if (((lo >> 8) & 0xff) != 1) continue;
		int bir = lo & 7;
		u64 bar = r32(ecam(base, bus, dev, 0x10 + 4 * bir));
		u64 bar_addr = (bar & ~0xfULL);
		if ((bar & 6) == 4) bar_addr |= (u64)r32(ecam(base, bus, dev, 0x14 + 4 * bir)) << 32;
		return bar_addr + ((lo & 0xffff0000u) | ((u64)hi << 32));
	}
	return 0;
}

static void note_bridge(u64 base, int seg, int bus, int dev) {
	if (nbr >= MAXBR) return;
	int type = -1, port = -1;
	for (int c = r8(ecam(base, bus, dev, 0x34)) & 0xfc, n = 0; c && n < 48; n++) {
		if (r8(ecam(base, bus, dev, c)) == 0x10) {
			type = (r16(ecam(base, bus, dev, c + 2)) >> 4) & 0xf;
			port = r32(ecam(base, bus, dev, c + 0xc)) >> 24;
			break;
		}
		c = r8(ecam(base, bus, dev, c + 1)) & 0xfc;
	}
	br_seg[nbr] = seg; br_sec[nbr] = r8(ecam(base, bus, dev, 0x19));
	br_type[nbr] = type; br_port[nbr] = port; br_comp[nbr] = component_block(base, bus, dev);
	kv("bridge seg=", seg); kv(" bus=", bus); kv(" dev=", dev); kv(" secondary=", br_sec[nbr]);
	kv(" pcie_type=", type); kv(" port=", port); kv(" component=", br_comp[nbr]); nl();
	nbr++;
}

#define MAX 8
static u64 chbs_base[MAX]; static u32 chbs_uid[MAX]; static int nchbs;
static u64 cfmws_base[MAX], cfmws_size[MAX]; static u32 cfmws_target[MAX]; static int ncfmws;

/* Checks one CXL device whose component register block is at `comp`. */
static void check_device(u64 comp, int port) {
	map_gib(comp, 1);
	u64 hdm = hdm_block(comp + 0x1000);
	check("HDM decoder capability found", hdm != 0);
	if (!hdm) return;
	u64 base = dec_base_of(hdm), size = dec_size_of(hdm);
	u32 ctrl = r32(hdm + 0x20);
	kv("HDM cap=", r32(hdm)); kv(" global_ctrl=", r32(hdm + 4)); kv(" decoder0 base=", base);
	kv(" size=", size); kv(" ctrl=", ctrl); nl();
	check("decoder 0 committed", (ctrl >> 10) & 1);
	check("decoder 0 locked (lock on commit)", (ctrl >> 8) & 1);
	int w = -1;
	for (int i = 0; i < ncfmws; i++) if (cfmws_base[i] == base) w = i;
	check("decoder 0 base is a CFMWS base", w >= 0);
	if (w < 0) return;
	check("decoder 0 size <= CFMWS size", size && size <= cfmws_size[w]);
	u64 hb_base = 0, hb_size = 0; int hb_target = -1;
	for (int i = 0; i < nchbs; i++) {
		if (chbs_uid[i] != cfmws_target[w]) continue;
		map_gib(chbs_base[i], 1);
		u64 hb = hdm_block(chbs_base[i] + 0x1000);
		if (hb) { hb_base = dec_base_of(hb); hb_size = dec_size_of(hb); hb_target = r8(hb + 0x24); }
	}
	check("host-bridge decoder (CHBCR of the CFMWS target) agrees with the endpoint decoder",
	      hb_base == base && hb_size == size);
	kv("host-bridge decoder 0 target=", hb_target); kv(" root port=", port); nl();
	check("host-bridge decoder 0 targets the device's root port", port >= 0 && hb_target == port);
	/* the overlay keeps the locked decoder: a guest write to BASE_LO is ignored */
	*(volatile u32 *)(hdm + 0x10) = 0x10000000;
	check("locked decoder ignores guest writes", dec_base_of(hdm) == base);
}

void main(u64 start_info) {
	puts_("cxl-payload: start\n");
	u64 rsdp = r64(start_info + 0x20);
	kv("rsdp ", rsdp); nl();
	if (!memeq(rsdp, "RSD PTR ", 8)) { check("RSDP signature", 0); goto out; }
	u64 xsdt = r64(rsdp + 24);
	puts_("tables:");
	for (u64 p = xsdt + 36; p + 8 <= xsdt + r32(xsdt + 4); p += 8) {
		u64 t = r64(p); putc_(' ');
		for (int i = 0; i < 4; i++) putc_(r8(t + i));
	}
	nl();

	/* CEDT */
	u64 cedt = find_table(xsdt, "CEDT");
	check("CEDT present", cedt != 0);
	if (cedt) {
		u32 len = r32(cedt + 4);
		for (u64 p = cedt + 36; p + 4 <= cedt + len;) {
			u8 type = r8(p); u16 l = r16(p + 2);
			if (l == 0) break;
			if (type == 0 && nchbs < MAX) {
				kv("CHBS uid=", r32(p + 4)); kv(" cxl_version=", r32(p + 8));
				kv(" base=", r64(p + 16)); kv(" length=", r64(p + 24)); nl();
				chbs_uid[nchbs] = r32(p + 4); chbs_base[nchbs++] = r64(p + 16);
			} else if (type == 1 && ncfmws < MAX) {
				kv("CFMWS base=", r64(p + 8)); kv(" size=", r64(p + 16));
				kv(" eniw=", r8(p + 24)); kv(" hbig=", r32(p + 28));
				kv(" restrictions=", r16(p + 32)); kv(" target0=", r32(p + 36)); nl();
				cfmws_base[ncfmws] = r64(p + 8); cfmws_size[ncfmws] = r64(p + 16);
				cfmws_target[ncfmws++] = r32(p + 36);
			}
			p += l;
		}
	}
	check("CFMWS window described", ncfmws > 0);

	/* DSDT */
	u64 facp = find_table(xsdt, "FACP");
	u64 dsdt = facp ? r64(facp + 140) : 0;
	if (facp && !dsdt) dsdt = r32(facp + 40);
	check("ACPI0017 (CXL root) in DSDT", dsdt && find_bytes(dsdt, "ACPI0017", 8));
	check("ACPI0016 (CXL host bridge) in DSDT", dsdt && find_bytes(dsdt, "ACPI0016", 8));

	/* PCI: bridges first, then every function with a CXL Register Locator DVSEC */
	u64 mcfg = find_table(xsdt, "MCFG");
	int ndev = 0;
	for (int pass = 0; pass < 2; pass++)
	for (u64 e = mcfg + 44; mcfg && e + 16 <= mcfg + r32(mcfg + 4); e += 16) {
		u64 base = r64(e); u16 seg = r16(e + 8);
		int bus0 = r8(e + 10), bus1 = r8(e + 11);
		if (pass == 0) { kv("MCFG seg=", seg); kv(" base=", base); kv(" buses=", bus0); kv("-", bus1); nl(); }
		map_gib(base, 1);
		for (int bus = bus0; bus <= bus1 && bus < 4; bus++)
		for (int dev = 0; dev < 32; dev++) {
			u32 id = r32(ecam(base, bus, dev, 0));
			if (id == 0xffffffff || id == 0) continue;
			u32 class = r32(ecam(base, bus, dev, 8)) >> 8;
			if (pass == 0) {
				if (class == 0x060400) note_bridge(base, seg, bus, dev);
				continue;
			}
			u64 comp = class == 0x060400 ? 0 : component_block(base, bus, dev);
			if (!comp) continue;
			kv("CXL device seg=", seg); kv(" bus=", bus); kv(" dev=", dev); kv(" id=", id);
			kv(" component block=", comp); nl();
			int rp = -1;
			for (int i = 0; i < nbr; i++)
				if (br_seg[i] == seg && br_sec[i] == bus && br_type[i] == 4) rp = i;
			check("CXL device sits below a PCIe root port (secondary bus)", bus != 0 && rp >= 0);
			if (rp >= 0) {
				map_gib(br_comp[rp], 1);
				check("root port component block (Register Locator) holds a CXL capability array",
				      br_comp[rp] && (r32(br_comp[rp] + 0x1000) & 0xffff) == 1);
			}
			check_device(comp, rp >= 0 ? br_port[rp] : -1);
			ndev++;
		}
	}
	check("a CXL device (Register Locator DVSEC) per CFMWS", ndev > 0 && ndev == ncfmws);

	/* Each window is its simulated device's memory; CFMWS i belongs to device i, whose
	 * test port is 0xce0 + 4 * i. */
	for (int i = 0; i < ncfmws; i++) {
		u64 win = cfmws_base[i];
		map_gib(win, 0);
		kv("window ", i); puts_(" [0..16] = \"");
		for (int j = 0; j < 16; j++) { u8 c = r8(win + j); putc_(c >= 32 && c < 127 ? c : '.'); }
		puts_("\"\n");
		check("window reads the device memory seed", memeq(win, "CXL-SIM-DPA-SEED", 16));
		char msg[17] = "GUEST-WROTE-WIN0";
		msg[15] = '0' + i;
		for (int j = 0; j < 16; j++) w8(win + 0x100 + j, msg[j]);
		check("window write reads back", memeq(win + 0x100, msg, 16));
		u64 last = win + cfmws_size[i] - 0x1000;
		map_gib(last, 0);
		w8(last, 0x5a);
		check("last page of the device memory is writable", r8(last) == 0x5a);
		outl(0xce0 + 4 * i, 0x100); /* host prints DPA[0x100..] as the VMM sees it */
	}

out:
	kv("cxl-payload: done, failures=", failures); nl();
	/* cmdline "wait": stay up (hlt) so the VMM's API can be exercised */
	u64 cmdline = r64(start_info + 0x18);
	if (cmdline && has((const char *)cmdline, "wait")) {
		puts_("cxl-payload: waiting\n");
		for (;;) __asm__ volatile("hlt");
	}
	/* cmdline "reboot": reset the VM (i8042), the VMM rebuilds and re-locks the device */
	if (cmdline && has((const char *)cmdline, "reboot")) {
		puts_("cxl-payload: rebooting\n");
		outb(0x64, 0xfe);
	}
	outb(0x600, 0x34); /* ACPI S5 */
	for (;;) __asm__ volatile("hlt");
}
