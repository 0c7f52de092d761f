/*
 * The C interface on a running kernel: the live cases of kvm(3)'s rules.
 *
 * Built for each lab guest (xtask/src/fixtures/capibin.rs: linked
 * statically with libkvm.a made for the guest's architecture) and run
 * inside it by xtask/guest/capture.sh, right after the guest's ground
 * truth is read from /proc. It prints one JSON object per line on stdout;
 * kvm/tests/lab/in_guest_c.rs meets them with that truth:
 *
 *   {"case":NAME,"ok":BOOL,"why":TEXT}
 *       a rule checked here, on its own terms; `why` says what was seen
 *       (kvm_geterr's message where the rule is about one)
 *   {"nlist":NAME,"type":N,"value":"0x..."}
 *       kvm_nlist of the running kernel ("0x0": not found)
 *   {"read":NAME,"addr":"0x...","bytes":HEX}
 *       what kvm_read read at a symbol: linux_banner where kvm_nlist
 *       finds it (arm64's kallsyms has no data symbols), else the text
 *       of schedule
 *   {"loadavg":[L1,L5,L15],"proc_before":TEXT,"proc_after":TEXT}
 *       kvm_getloadavg, between two readings of /proc/loadavg
 *   {"self":PID}
 *   {"source":"kcore"|"procfs","proc":{...}}
 *       each process kvm_getprocs(KERN_PROC_KTHREAD) listed, through
 *       /proc/kcore (corefile NULL) or through /proc (KVM_NO_FILES);
 *       strings (comm, argv, environment) as hex of their bytes
 *
 * No ATF here: the guest has no C library nor ATF besides what is linked
 * in. The exit status is 0 when every case held.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvm.h>

static int failures;

/* TEXT as a JSON string: quotes, backslashes and every byte outside
   printable ASCII escaped (messages are ASCII; anything else shows as
   its code). */
static void
json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* The N bytes at P as a JSON string of hex digits. */
static void
json_hex(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	putchar('"');
	for (i = 0; i < n; i++)
		printf("%02x", b[i]);
	putchar('"');
}

/* A NULL-terminated string vector as a JSON array of hex strings;
   null for NULL (kvm could not read it). */
static void
json_strings(char **v)
{
	int i;

	if (v == NULL) {
		fputs("null", stdout);
		return;
	}
	putchar('[');
	for (i = 0; v[i] != NULL; i++) {
		if (i > 0)
			putchar(',');
		json_hex(v[i], strlen(v[i]));
	}
	putchar(']');
}

static void
report(const char *name, int ok, const char *why)
{
	fputs("{\"case\":", stdout);
	json_str(name);
	printf(",\"ok\":%s,\"why\":", ok ? "true" : "false");
	json_str(why);
	puts("}");
	if (!ok)
		failures++;
}

/* report() with a formatted `why`. */
static void
reportf(const char *name, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
reportf(const char *name, int ok, const char *fmt, ...)
{
	char why[_POSIX2_LINE_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	report(name, ok, why);
}

/* The symbols looked up, as the host's nlist run does, plus one BSD
   spelling (one leading '_' stripped when the name is not found). */
static const char *const NAMES[] = {
	"_stext", "schedule", "start_kernel", "init_task", "init_uts_ns",
	"jiffies", "avenrun", "linux_banner", "_start_kernel",
};
#define NNAMES (sizeof(NAMES) / sizeof(NAMES[0]))

/* kvm_nlist of NAMES on KD, each printed; returns the address of the
   symbol to read (linux_banner, else schedule, else 0) and its name in
   *NAME. */
static unsigned long
symbols(kvm_t *kd, const char **name)
{
	struct nlist nl[NNAMES + 1];
	unsigned long banner = 0, sched = 0, start = 0, bsd = 0;
	size_t i;
	int missing;

	memset(nl, 0, sizeof(nl));
	for (i = 0; i < NNAMES; i++)
		nl[i].n_name = (char *)NAMES[i];
	missing = kvm_nlist(kd, nl);
	for (i = 0; i < NNAMES; i++) {
		fputs("{\"nlist\":", stdout);
		json_str(NAMES[i]);
		printf(",\"type\":%u,\"value\":\"0x%lx\"}\n",
		    (unsigned)nl[i].n_type, nl[i].n_value);
		if (strcmp(NAMES[i], "linux_banner") == 0)
			banner = nl[i].n_value;
		if (strcmp(NAMES[i], "schedule") == 0)
			sched = nl[i].n_value;
		if (strcmp(NAMES[i], "start_kernel") == 0)
			start = nl[i].n_value;
		if (strcmp(NAMES[i], "_start_kernel") == 0)
			bsd = nl[i].n_value;
	}
	reportf("nlist_on_the_running_kernel_finds_its_text", missing >= 0 &&
	    start != 0 && nl[0].n_value != 0 && (nl[0].n_type & N_TYPE) == N_TEXT,
	    "kvm_nlist returned %d (names not found), start_kernel %#lx, "
	    "_stext %#lx type %#x%s%s", missing, start, nl[0].n_value,
	    (unsigned)nl[0].n_type, missing < 0 ? ": " : "",
	    missing < 0 ? kvm_geterr(kd) : "");
	reportf("nlist_strips_one_leading_underscore", bsd != 0 && bsd == start,
	    "_start_kernel %#lx, start_kernel %#lx", bsd, start);
	*name = banner != 0 ? "linux_banner" : "schedule";
	return banner != 0 ? banner : sched;
}

/* The bytes read and compared at the probe symbol. */
#define PROBE	256

static void
print_proc(const char *source, kvm_t *kd, const struct kinfo_proc *p)
{
	printf("{\"source\":\"%s\",\"proc\":{\"pid\":%d,\"ppid\":%d,"
	    "\"uid\":%u,\"ruid\":%u,\"gid\":%u,\"rgid\":%u,\"state\":\"%c\","
	    "\"flag\":%d,\"valid\":%u,\"ustart_sec\":%llu,\"ustart_usec\":%u,"
	    "\"comm\":", source, p->p_pid, p->p_ppid, p->p_uid, p->p_ruid,
	    p->p_gid, p->p_rgid, p->p_kvm_state, p->p_flag, p->p_kvm_valid,
	    (unsigned long long)p->p_ustart_sec, p->p_ustart_usec);
	json_hex(p->p_comm, strnlen(p->p_comm, sizeof(p->p_comm)));
	fputs(",\"argv\":", stdout);
	json_strings(kvm_getargv(kd, p, 0));
	fputs(",\"envv\":", stdout);
	json_strings(kvm_getenvv(kd, p, 0));
	puts("}}");
}

/* Every process KD lists (kernel threads too), printed; checks this
   process is among them as it is. */
static void
processes(const char *source, const char *rule, kvm_t *kd, char **argv)
{
	struct kinfo_proc *kp, *self = NULL;
	char **av;
	int i, n = -1, same;

	kp = kvm_getprocs(kd, KERN_PROC_KTHREAD, 0, sizeof(*kp), &n);
	if (kp == NULL) {
		reportf(rule, 0, "kvm_getprocs: %s", kvm_geterr(kd));
		return;
	}
	for (i = 0; i < n; i++) {
		print_proc(source, kd, &kp[i]);
		if (kp[i].p_pid == getpid())
			self = &kp[i];
	}
	if (self == NULL) {
		reportf(rule, 0, "%d processes, this one (pid %d) not among "
		    "them", n, (int)getpid());
		return;
	}
	/* kvm_getargv's vector is the handle's until the next call. */
	av = kvm_getargv(kd, self, 0);
	same = av != NULL;
	for (i = 0; same && argv[i] != NULL; i++)
		same = av[i] != NULL && strcmp(av[i], argv[i]) == 0;
	same = same && av[i] == NULL;
	reportf(rule, self->p_ppid == getppid() && self->p_uid == geteuid() &&
	    self->p_ruid == getuid() && same,
	    "%d processes; this one: pid %d ppid %d (want %d) uid %u (want "
	    "%u) argv %s", n, self->p_pid, self->p_ppid, (int)getppid(),
	    self->p_uid, (unsigned)geteuid(),
	    same ? "as given" : "differs");
}

/* The first line of /proc/loadavg in BUF (N bytes), "" if unreadable. */
static void
proc_loadavg(char *buf, size_t n)
{
	FILE *f = fopen("/proc/loadavg", "r");

	buf[0] = '\0';
	if (f == NULL)
		return;
	if (fgets(buf, (int)n, f) == NULL)
		buf[0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

int
main(int argc, char **argv)
{
	char errbuf[_POSIX2_LINE_MAX], probe[PROBE], other[PROBE];
	char before[128], after[128];
	unsigned long addr;
	const char *what;
	double la[3] = { -1, -1, -1 };
	struct kinfo_proc *kp;
	kvm_t *kd, *kd2;
	ssize_t got, got2;
	char byte;
	int n;

	(void)argc;
	printf("{\"self\":%d}\n", (int)getpid());

	/* corefile NULL: the running kernel. */
	errbuf[0] = '\0';
	kd = kvm_openfiles(NULL, NULL, NULL, O_RDONLY, errbuf);
	reportf("null_core_means_the_running_kernel", kd != NULL,
	    "kvm_openfiles(NULL, NULL, NULL, O_RDONLY): %s",
	    kd != NULL ? "a handle" : errbuf);
	if (kd == NULL)
		return 1;

	addr = symbols(kd, &what);
	got = addr != 0 ? kvm_read(kd, addr, probe, PROBE) : -1;
	reportf("read_reads_the_running_kernel", got == PROBE &&
	    (strcmp(what, "linux_banner") != 0 ||
	    strncmp(probe, "Linux version ", 14) == 0),
	    "kvm_read(%s at %#lx, %d bytes) returned %zd%s%s", what, addr,
	    PROBE, got, got < 0 ? ": " : "", got < 0 ? kvm_geterr(kd) : "");
	if (got == PROBE) {
		fputs("{\"read\":", stdout);
		json_str(what);
		printf(",\"addr\":\"0x%lx\",\"bytes\":", addr);
		json_hex(probe, PROBE);
		puts("}");
	}

	/* The other two ways to open the running kernel read the same. */
	kd2 = kvm_open(NULL, NULL, NULL, O_RDONLY, "in_guest");
	got2 = kd2 != NULL && addr != 0 ? kvm_read(kd2, addr, other, PROBE) :
	    -1;
	reportf("kvm_open_with_a_null_core_means_the_running_kernel",
	    got2 == PROBE && got == PROBE && memcmp(probe, other, PROBE) == 0,
	    "kvm_open(NULL, NULL, NULL, O_RDONLY): %s; kvm_read returned %zd, "
	    "%s", kd2 != NULL ? "a handle" : "NULL (see stderr)", got2,
	    got2 == PROBE && memcmp(probe, other, PROBE) == 0 ?
	    "the bytes read through kvm_openfiles" : "other bytes");
	if (kd2 != NULL)
		kvm_close(kd2);
	errbuf[0] = '\0';
	kd2 = kvm_open2(NULL, NULL, O_RDONLY, errbuf, NULL);
	got2 = kd2 != NULL && addr != 0 ? kvm_read2(kd2, addr, other, PROBE) :
	    -1;
	reportf("kvm_open2_with_a_null_core_means_the_running_kernel",
	    got2 == PROBE && got == PROBE && memcmp(probe, other, PROBE) == 0,
	    "kvm_open2(NULL, NULL, O_RDONLY): %s; kvm_read2 returned %zd, %s",
	    kd2 != NULL ? "a handle" : errbuf, got2,
	    got2 == PROBE && memcmp(probe, other, PROBE) == 0 ?
	    "the bytes read through kvm_openfiles" : "other bytes");
	if (kd2 != NULL)
		kvm_close(kd2);

	/* Writes on a read-only handle: refused, zero bytes too. */
	n = (int)kvm_write(kd, addr, probe, 0);
	reportf("zero_length_write_is_refused_on_a_read_only_handle",
	    n == -1 && *kvm_geterr(kd) != '\0',
	    "kvm_write(0 bytes) returned %d: %s", n, kvm_geterr(kd));
	n = (int)kvm_write(kd, addr, probe, 1);
	reportf("write_is_refused_on_a_read_only_handle",
	    n == -1 && *kvm_geterr(kd) != '\0',
	    "kvm_write(1 byte) returned %d: %s", n, kvm_geterr(kd));

	/* O_RDWR on /proc/kcore: the door takes no writes, and says so.
	   The byte offered is the one already there. */
	errbuf[0] = '\0';
	kd2 = kvm_openfiles(NULL, NULL, NULL, O_RDWR, errbuf);
	if (kd2 == NULL) {
		reportf("a_write_the_running_kernel_cannot_take_fails_clearly",
		    errbuf[0] != '\0', "kvm_openfiles(O_RDWR): NULL: %s",
		    errbuf);
	} else {
		byte = probe[0];
		n = (int)kvm_write(kd2, addr, &byte, 1);
		reportf("a_write_the_running_kernel_cannot_take_fails_clearly",
		    n == -1 && *kvm_geterr(kd2) != '\0',
		    "kvm_write(1 byte) on an O_RDWR handle returned %d: %s", n,
		    kvm_geterr(kd2));
		kvm_close(kd2);
	}

	/* /proc/loadavg just before and after: kvm's must be one of the
	   two (they differ when the kernel updated it meanwhile). */
	proc_loadavg(before, sizeof(before));
	n = kvm_getloadavg(kd, la, 3);
	proc_loadavg(after, sizeof(after));
	reportf("getloadavg_reads_the_running_kernel", n == 3,
	    "kvm_getloadavg returned %d%s%s", n, n < 0 ? ": " : "",
	    n < 0 ? kvm_geterr(kd) : "");
	printf("{\"loadavg\":[%.4f,%.4f,%.4f],\"proc_before\":", la[0],
	    la[1], la[2]);
	json_str(before);
	fputs(",\"proc_after\":", stdout);
	json_str(after);
	puts("}");

	processes("kcore", "getprocs_lists_the_running_kernels_processes",
	    kd, argv);
	n = -1;
	kp = kvm_getprocs(kd, KERN_PROC_PID, (int)getpid(), sizeof(*kp), &n);
	reportf("getprocs_by_pid_finds_this_process",
	    kp != NULL && n == 1 && kp[0].p_pid == getpid(),
	    "KERN_PROC_PID %d: %d entries%s%s", (int)getpid(), n,
	    kp == NULL ? ": " : "", kp == NULL ? kvm_geterr(kd) : "");
	kvm_close(kd);

	/* KVM_NO_FILES: no memory, the process list from /proc. */
	errbuf[0] = '\0';
	kd = kvm_openfiles(NULL, NULL, NULL, O_RDONLY | KVM_NO_FILES, errbuf);
	if (kd == NULL) {
		reportf("no_files_lists_the_processes_the_os_lists", 0,
		    "kvm_openfiles(KVM_NO_FILES): %s", errbuf);
	} else {
		processes("procfs", "no_files_lists_the_processes_the_os_lists",
		    kd, argv);
		got = kvm_read(kd, addr, probe, 16);
		reportf("no_files_reads_no_memory",
		    got == -1 && *kvm_geterr(kd) != '\0',
		    "kvm_read returned %zd: %s", got, kvm_geterr(kd));
		kvm_close(kd);
	}

	fflush(stdout);
	return failures == 0 ? 0 : 1;
}
