/*
 * dmesg: the kernel log of a Linux crash dump through kvm(3), read the way
 * BSD's dmesg(8) reads the message buffer, with only kvm_openfiles,
 * kvm_nlist, kvm_read, kvm_geterr and kvm_close.   dmesg -M core [-N kernel]
 *
 * The output is what `makedumpfile --dump-dmesg` writes, byte for byte:
 * each record as "[%5llu.%06llu] text" (seconds, microseconds); a newline
 * in a record's text goes out as a newline and as many spaces as that
 * "[...] " prefix is wide; a byte neither printable ASCII nor white space
 * as "\x%02x" of the byte taken as a signed char (0xe2: "\xffffffe2"), as
 * makedumpfile built for x86-64 prints it.
 *
 * The layout, from the Linux sources (kernel/printk/printk_ringbuffer.h
 * and .c of 5.10, 5.15, 6.1, 6.6) and checked against the VMCOREINFO of
 * the Debian 6.1 dumps: since 5.10 the log is a lockless ring buffer, and
 * the pointer `prb` names the one in use. On 64-bit kernels, in words:
 *   descriptor ring: 0 count_bits (32 bits), 1 descs (1 << count_bits
 *     descriptors), 2 infos (as many metadata records), 3 head_id,
 *     4 tail_id; after 5.10 (5.15 and 6.1 have it) also 5,
 *     last_finalized_id (last_finalized_seq from 6.10);
 *   text ring, at word 5 or 6: size_bits (32 bits), data (1 << size_bits
 *     bytes), head_lpos, tail_lpos.
 *   descriptor, 24 bytes: state_var (top 2 bits the state: 0 reserved,
 *     1 committed, 2 finalized, 3 reusable; low 62 bits the id it holds),
 *     then the text block's logical positions begin and next.
 *   metadata, 88 bytes: seq (u64), ts_nsec (u64), text_len (u16), ...
 *   text block: the id (8 bytes), then the text. A position's low size_bits
 *     bits are its index in the ring, the bits above count laps; a block
 *     that would run past the ring's end is put at index 0 instead (begin
 *     stays in the lap before). Bit 0 set: no data block.
 * The kernels (x86-64, arm64) and the host are little-endian with 64-bit
 * longs: words are read as the host's.
 */
#define	_POSIX_C_SOURCE	200809L	/* getopt */

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvm.h>

#define	ID_MASK		((UINT64_C(1) << 62) - 1)	/* id bits of state_var */
#define	DESC_SIZE	24	/* struct prb_desc */
#define	INFO_SIZE	88	/* struct printk_info */
#define	TEXT_MAX	65536	/* text_len is 16 bits */

/* What the walk needs of the ring buffer's header. */
struct ring {
	unsigned int	count_bits, size_bits;
	uint64_t	descs, infos, data, head_id, tail_id;
};

/* Reads exactly len bytes at kernel address addr, or says why not. */
static int
kread(kvm_t *kd, uint64_t addr, void *buf, size_t len)
{
	ssize_t n = kvm_read(kd, (unsigned long)addr, buf, len);

	if (n == (ssize_t)len)
		return 0;
	if (n < 0)	/* nothing readable: the library says why */
		fprintf(stderr, "dmesg: %s\n", kvm_geterr(kd));
	else		/* a short read sets no message */
		fprintf(stderr, "dmesg: %#llx: read %zd of %zu bytes\n",
		    (unsigned long long)addr, n, len);
	return -1;
}

/* The 8-byte word at byte offset off of buf. */
static uint64_t
word(const unsigned char *buf, size_t off)
{
	uint64_t v;

	memcpy(&v, buf + off, sizeof(v));
	return v;
}

/*
 * Prints the record with this id if its descriptor holds it (same id,
 * committed or finalized) and its text block is sound; skips it otherwise.
 * Returns -1 only when memory cannot be read.
 */
static int
dump_record(kvm_t *kd, const struct ring *r, uint64_t id, unsigned char *text)
{
	unsigned char desc[DESC_SIZE], info[24];
	uint64_t idx = id & ((UINT64_C(1) << r->count_bits) - 1);
	uint64_t ring = UINT64_C(1) << r->size_bits;
	uint64_t sv, begin, next, size, off, ts;
	unsigned int state, len, i;
	char prefix[64];
	int indent;

	/* The descriptor: its state and id tell whether it holds the record. */
	if (kread(kd, r->descs + idx * DESC_SIZE, desc, sizeof(desc)) == -1)
		return -1;
	sv = word(desc, 0);
	state = (unsigned int)(sv >> 62);
	if ((sv & ID_MASK) != id || (state != 1 && state != 2))
		return 0;
	begin = word(desc, 8);
	next = word(desc, 16);

	/*
	 * The text block, found as the kernel's get_data() finds it.
	 * Data-less records (empty or lost text) print nothing: makedumpfile
	 * skips them. A regular block has begin before next in the same lap
	 * (next - 1, as newer kernels test: a block may end at the ring's
	 * end); a wrapped one lies at index 0 up to next's index. Anything
	 * else, a block not 8-aligned or too small for its id, is unsound.
	 */
	if ((begin & 1) || (next & 1))
		return 0;
	if (begin >> r->size_bits == (next - 1) >> r->size_bits &&
	    begin < next) {
		off = begin & (ring - 1);
		size = next - begin;
	} else if ((begin + ring) >> r->size_bits ==
	    (next - 1) >> r->size_bits) {
		off = 0;
		size = next & (ring - 1);
	} else
		return 0;
	if ((begin & 7) || (next & 7) || size < 8)
		return 0;

	/* The metadata: time stamp, and text length cut to the block. */
	if (kread(kd, r->infos + idx * INFO_SIZE, info, sizeof(info)) == -1)
		return -1;
	ts = word(info, 8);
	len = (unsigned int)info[16] | (unsigned int)info[17] << 8;
	if (len > size - 8)
		len = (unsigned int)(size - 8);
	if (len > 0 && kread(kd, r->data + off + 8, text, len) == -1)
		return -1;

	/* The record, formatted as makedumpfile does (see the top). */
	indent = snprintf(prefix, sizeof(prefix), "[%5llu.%06llu] ",
	    (unsigned long long)(ts / 1000000000),
	    (unsigned long long)(ts % 1000000000 / 1000));
	fputs(prefix, stdout);
	for (i = 0; i < len; i++) {
		if (text[i] == '\n')
			printf("\n%*s", indent, "");
		else if ((text[i] >= ' ' && text[i] < 0x7f) ||
		    (text[i] >= '\t' && text[i] <= '\r'))
			putchar(text[i]);
		else
			printf("\\x%02x", (unsigned int)(signed char)text[i]);
	}
	putchar('\n');
	return 0;
}

int
main(int argc, char *argv[])
{
	char errbuf[_POSIX2_LINE_MAX];
	const char *core = NULL, *kernel = NULL;
	struct nlist nl[] = { { .n_name = "prb" }, { .n_name = NULL } };
	unsigned char hdr[80], *text = NULL;
	uint64_t prb, id, n, count;
	struct ring r;
	kvm_t *kd;
	size_t t;
	int c, rv = 1;

	/* The options: -M (the dump) required, -N (symbols) optional. */
	while ((c = getopt(argc, argv, "M:N:")) == 'M' || c == 'N')
		*(c == 'M' ? &core : &kernel) = optarg;
	if (c != -1 || optind != argc || core == NULL) {
		fprintf(stderr, "usage: dmesg -M core [-N kernel]\n");
		return 2;
	}

	/* Open the dump; symbols come from the dump itself, or from -N. */
	kd = kvm_openfiles(kernel, core, NULL, O_RDONLY, errbuf);
	if (kd == NULL) {
		fprintf(stderr, "dmesg: %s\n", errbuf);
		return 1;
	}

	/* `prb` holds the address of the ring buffer in use. */
	if ((c = kvm_nlist(kd, nl)) == -1) {
		fprintf(stderr, "dmesg: %s\n", kvm_geterr(kd));
		goto out;
	}
	if (c != 0 || nl[0].n_value == 0) {
		fprintf(stderr, "dmesg: prb: no such symbol (a kernel before "
		    "5.10, or no data symbols in the dump: try -N)\n");
		goto out;
	}
	if (kread(kd, nl[0].n_value, &prb, sizeof(prb)) == -1 ||
	    kread(kd, prb, hdr, sizeof(hdr)) == -1)
		goto out;

	/*
	 * The header. The text ring starts at byte 40 (5.10) or 48 (later):
	 * the word at 48 is then the text ring's data pointer (a kernel
	 * address: top bit set) or its size_bits (a small number).
	 */
	t = (word(hdr, 48) >> 63) ? 40 : 48;
	r.count_bits = (unsigned int)word(hdr, 0);
	r.descs = word(hdr, 8);
	r.infos = word(hdr, 16);
	r.head_id = word(hdr, 24) & ID_MASK;
	r.tail_id = word(hdr, 32) & ID_MASK;
	r.size_bits = (unsigned int)word(hdr, t);
	r.data = word(hdr, t + 8);
	/* The kernel caps the text at 2 GiB, with fewer descriptors. */
	if (r.size_bits < 3 || r.size_bits > 31 || r.count_bits > r.size_bits) {
		fprintf(stderr, "dmesg: damaged ring buffer at %#llx "
		    "(count_bits %u, size_bits %u)\n", (unsigned long long)prb,
		    r.count_bits, r.size_bits);
		goto out;
	}
	if ((text = malloc(TEXT_MAX)) == NULL) {
		perror("dmesg");
		goto out;
	}

	/* Walk the ids from the oldest (tail) to the newest (head). */
	count = UINT64_C(1) << r.count_bits;
	for (id = r.tail_id, n = 0; n < count; n++) {
		if (dump_record(kd, &r, id, text) == -1)
			goto out;
		if (id == r.head_id)
			break;
		id = (id + 1) & ID_MASK;
	}
	if (n == count)
		fprintf(stderr, "dmesg: damaged ring buffer: head id not within "
		    "%llu ids of the tail\n", (unsigned long long)count);
	else if (fflush(stdout) == EOF || ferror(stdout))
		perror("dmesg: stdout");
	else
		rv = 0;
out:
	free(text);
	kvm_close(kd);
	return rv;
}
