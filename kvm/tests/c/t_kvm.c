/*
 * The C interface against BSD's rules (kvm(3), kvm_geterr(3),
 * kvm_nlist(3), kvm_getprocs(3), kvm_read(3)) and against the committed
 * real-kernel fixtures' truth. ATF test program, run by kyua
 * (`cargo xtask capi`), built with AddressSanitizer and UBSan.
 *
 * Configuration variables:
 *   data   the fixtures directory (kvm/tests/data: SET/vmcore.kdump.xz)
 *   truth  a directory of SET.tsv files made from SET/truth.json: one line
 *          per process, tab-separated: pid ppid uid gid state kthread comm
 *          argv env (argv and env elements separated by \037, with '%',
 *          tab, newline and \037 inside them as %XX), and a
 *          first line "loadavg L1 L5 L15".
 */
#define _GNU_SOURCE
#include <atf-c.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvm.h>

static const char *const SETS[] = { "amd64-kaslr", "arm64-kaslr" };
#define NSETS (sizeof(SETS) / sizeof(SETS[0]))

/* The fixture dump of SET. */
static char *
core_of(const atf_tc_t *tc, const char *set)
{
	char *p;

	ATF_REQUIRE(asprintf(&p, "%s/%s/vmcore.kdump.xz",
	    atf_tc_get_config_var(tc, "data"), set) > 0);
	return p;
}

static kvm_t *
open_set(const atf_tc_t *tc, const char *set, int flags)
{
	char errbuf[_POSIX2_LINE_MAX];
	char *core = core_of(tc, set);
	kvm_t *kd;

	kd = kvm_openfiles(NULL, core, NULL, flags, errbuf);
	ATF_REQUIRE_MSG(kd != NULL, "%s: %s", core, errbuf);
	free(core);
	return kd;
}

/* A file in the test's own directory holding TEXT. */
static const char *
text_file(const char *name, const char *text)
{
	FILE *f = fopen(name, "w");

	ATF_REQUIRE(f != NULL);
	ATF_REQUIRE(fputs(text, f) >= 0);
	ATF_REQUIRE(fclose(f) == 0);
	return name;
}

/* Opening with kvm_openfiles is expected to fail: the message it left. */
static void
open_fails(const char *exec, const char *core, int flags, const char *want)
{
	char errbuf[_POSIX2_LINE_MAX];

	memset(errbuf, 'x', sizeof(errbuf));
	ATF_REQUIRE(kvm_openfiles(exec, core, NULL, flags, errbuf) == NULL);
	ATF_REQUIRE(memchr(errbuf, '\0', sizeof(errbuf)) != NULL);
	ATF_REQUIRE_MSG(strstr(errbuf, want) != NULL,
	    "errbuf \"%s\" lacks \"%s\"", errbuf, want);
}

#define CONFIG(tc) do {							\
	atf_tc_set_md_var(tc, "require.config", "data truth");		\
} while (0)

/* --- open and errbuf ------------------------------------------------ */

ATF_TC(failed_open_leaves_message_in_errbuf);
ATF_TC_HEAD(failed_open_leaves_message_in_errbuf, tc)
{
	atf_tc_set_md_var(tc, "descr", "a failed kvm_openfiles returns "
	    "NULL with the message, naming the file, in errbuf");
}
ATF_TC_BODY(failed_open_leaves_message_in_errbuf, tc)
{
	open_fails(NULL, "/nonexistent/vmcore", O_RDONLY,
	    "/nonexistent/vmcore: No such file or directory");
}

ATF_TC(errbuf_is_posix2_line_max);
ATF_TC_HEAD(errbuf_is_posix2_line_max, tc)
{
	atf_tc_set_md_var(tc, "descr", "a message longer than "
	    "_POSIX2_LINE_MAX is cut to fit, NUL-terminated, nothing past it");
}
ATF_TC_BODY(errbuf_is_posix2_line_max, tc)
{
	char path[4096], buf[_POSIX2_LINE_MAX + 64];
	size_t i;

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	memset(buf, 'x', sizeof(buf));
	ATF_REQUIRE(kvm_openfiles(NULL, path, NULL, O_RDONLY, buf) == NULL);
	ATF_REQUIRE_EQ(strlen(buf), _POSIX2_LINE_MAX - 1);
	for (i = _POSIX2_LINE_MAX; i < sizeof(buf); i++)
		ATF_REQUIRE_EQ(buf[i], 'x');
}

/* Runs FN(ARG) with stderr going to a file: what it printed. */
static char *
captured_stderr(void (*fn)(void *), void *arg)
{
	int saved = dup(2), fd;
	char *text;
	FILE *f;
	long n;

	fd = open("stderr.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ATF_REQUIRE(fd >= 0 && saved >= 0);
	ATF_REQUIRE(dup2(fd, 2) == 2);
	fn(arg);
	ATF_REQUIRE(dup2(saved, 2) == 2);
	close(fd);
	close(saved);
	f = fopen("stderr.txt", "r");
	ATF_REQUIRE(f != NULL);
	ATF_REQUIRE(fseek(f, 0, SEEK_END) == 0);
	n = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	ATF_REQUIRE(text != NULL);
	ATF_REQUIRE(fread(text, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	return text;
}

static void
open_with_null_errbufs(void *arg)
{
	(void)arg;
	ATF_REQUIRE(kvm_openfiles(NULL, "/nonexistent/vmcore", NULL,
	    O_RDONLY, NULL) == NULL);
	ATF_REQUIRE(kvm_open2(NULL, "/nonexistent/vmcore", O_RDONLY, NULL,
	    NULL) == NULL);
	ATF_REQUIRE(kvm_openfiles(NULL, "/dev/zero", NULL, O_RDONLY, NULL)
	    == NULL);
}

ATF_TC(null_errbuf_writes_nothing);
ATF_TC_HEAD(null_errbuf_writes_nothing, tc)
{
	atf_tc_set_md_var(tc, "descr", "with a NULL errbuf a failed open "
	    "writes nothing anywhere (stderr stays empty; ASan watches "
	    "memory)");
}
ATF_TC_BODY(null_errbuf_writes_nothing, tc)
{
	char *text = captured_stderr(open_with_null_errbufs, NULL);

	ATF_REQUIRE_STREQ(text, "");
	free(text);
}

struct sun_open { const char *core, *errstr; kvm_t *kd; };

static void
sun_open(void *arg)
{
	struct sun_open *o = arg;

	o->kd = kvm_open(NULL, o->core, NULL, O_RDONLY, o->errstr);
}

/* Runs kvm_open with ERRSTR on CORE: what it printed on stderr. */
static char *
kvm_open_stderr(const char *core, const char *errstr, kvm_t **kdp)
{
	struct sun_open o = { core, errstr, NULL };
	char *text = captured_stderr(sun_open, &o);

	*kdp = o.kd;
	return text;
}

ATF_TC(kvm_open_prints_errstr_and_message);
ATF_TC_HEAD(kvm_open_prints_errstr_and_message, tc)
{
	atf_tc_set_md_var(tc, "descr", "kvm_open (Sun style) prints "
	    "\"errstr: message\" on stderr, and nothing with errstr NULL");
}
ATF_TC_BODY(kvm_open_prints_errstr_and_message, tc)
{
	kvm_t *kd;
	char *text;

	text = kvm_open_stderr("/nonexistent/vmcore", "myprog", &kd);
	ATF_REQUIRE(kd == NULL);
	ATF_REQUIRE_STREQ(text, "myprog: /nonexistent/vmcore: No such file "
	    "or directory\n");
	free(text);
	text = kvm_open_stderr("/nonexistent/vmcore", NULL, &kd);
	ATF_REQUIRE(kd == NULL);
	ATF_REQUIRE_STREQ(text, "");
	free(text);
}

ATF_TC(open_refusals);
ATF_TC_HEAD(open_refusals, tc)
{
	atf_tc_set_md_var(tc, "descr", "a missing core or execfile, a text "
	    "file as core or execfile, a character device, bad flags: each "
	    "NULL with a message");
	CONFIG(tc);
}
ATF_TC_BODY(open_refusals, tc)
{
	char *core = core_of(tc, "amd64-kaslr");
	const char *text = text_file("text.txt", "just some text\n");

	open_fails(NULL, "/nonexistent/vmcore", O_RDONLY, "No such file");
	open_fails("/nonexistent/vmlinux", core, O_RDONLY,
	    "/nonexistent/vmlinux: No such file");
	open_fails(NULL, text, O_RDONLY, "text.txt: ");
	open_fails(text, core, O_RDONLY, "text.txt: ");
	open_fails(NULL, "/dev/zero", O_RDONLY, "character device");
	open_fails(NULL, core, 0x1000, "bad flags arg");
	open_fails(NULL, core, O_WRONLY, "bad flags arg");
	free(core);
}

ATF_TC(dev_null_and_no_files_mean_no_memory);
ATF_TC_HEAD(dev_null_and_no_files_mean_no_memory, tc)
{
	atf_tc_set_md_var(tc, "descr", "corefile /dev/null or KVM_NO_FILES "
	    "opens without memory access: reads fail with a message");
	CONFIG(tc);
}
ATF_TC_BODY(dev_null_and_no_files_mean_no_memory, tc)
{
	char errbuf[_POSIX2_LINE_MAX], b[8];
	char *core = core_of(tc, "amd64-kaslr");
	kvm_t *kds[2];
	size_t i;

	kds[0] = kvm_openfiles(NULL, "/dev/null", NULL, O_RDONLY, errbuf);
	kds[1] = kvm_openfiles(NULL, core, NULL, O_RDONLY | KVM_NO_FILES,
	    errbuf);
	for (i = 0; i < 2; i++) {
		struct nlist nl[2] = { { .n_name = "init_task" }, { 0 } };

		ATF_REQUIRE(kds[i] != NULL);
		ATF_REQUIRE_EQ(kvm_read(kds[i], 0xffffffff81000000UL, b, 8),
		    -1);
		ATF_REQUIRE(strstr(kvm_geterr(kds[i]), "no kernel memory"));
		ATF_REQUIRE_EQ(kvm_nlist(kds[i], nl), -1);
		ATF_REQUIRE_EQ(kvm_close(kds[i]), 0);
	}
	free(core);
}

ATF_TC(no_files_lists_the_processes_the_os_lists);
ATF_TC_HEAD(no_files_lists_the_processes_the_os_lists, tc)
{
	atf_tc_set_md_var(tc, "descr", "a KVM_NO_FILES or /dev/null handle "
	    "lists the running system's processes as the OS does (/proc): "
	    "this process with its parent, ids and argv, and init");
	CONFIG(tc);
}
ATF_TC_BODY(no_files_lists_the_processes_the_os_lists, tc)
{
	char errbuf[_POSIX2_LINE_MAX], self[4096];
	kvm_t *kds[2];
	struct kinfo_proc *kp;
	char **argv;
	size_t i;
	ssize_t n;
	int cnt, fd;

	/* argv[0] as the kernel keeps it: /proc/self/cmdline up to its NUL. */
	fd = open("/proc/self/cmdline", O_RDONLY);
	ATF_REQUIRE(fd >= 0);
	n = read(fd, self, sizeof(self) - 1);
	ATF_REQUIRE(n > 0);
	self[n] = '\0';
	close(fd);

	kds[0] = kvm_openfiles(NULL, NULL, NULL, O_RDONLY | KVM_NO_FILES,
	    errbuf);
	kds[1] = kvm_openfiles(NULL, "/dev/null", NULL, O_RDONLY, errbuf);
	for (i = 0; i < 2; i++) {
		ATF_REQUIRE(kds[i] != NULL);
		kp = kvm_getprocs(kds[i], KERN_PROC_PID, getpid(),
		    sizeof(*kp), &cnt);
		ATF_REQUIRE_MSG(kp != NULL, "%s", kvm_geterr(kds[i]));
		ATF_REQUIRE_EQ(cnt, 1);
		ATF_REQUIRE_EQ(kp[0].p_pid, getpid());
		ATF_REQUIRE_EQ(kp[0].p_ppid, getppid());
		ATF_REQUIRE_EQ(kp[0].p_ruid, getuid());
		ATF_REQUIRE_EQ(kp[0].p_uid, geteuid());
		ATF_REQUIRE(kp[0].p_kvm_valid & KVM_KI_PPID);
		argv = kvm_getargv(kds[i], &kp[0], 0);
		ATF_REQUIRE_MSG(argv != NULL, "%s", kvm_geterr(kds[i]));
		ATF_REQUIRE_STREQ(argv[0], self);
		/* init is there too. */
		kp = kvm_getprocs(kds[i], KERN_PROC_PID, 1, sizeof(*kp),
		    &cnt);
		ATF_REQUIRE(kp != NULL);
		ATF_REQUIRE_EQ(cnt, 1);
		ATF_REQUIRE_EQ(kp[0].p_ppid, 0);
	}
	/*
	 * An argument that is not UTF-8 ("caf\xe9", Latin-1) comes back as
	 * the bytes the process holds. The shell waits for its sleep (a
	 * second command keeps it from exec'ing it).
	 */
	pid_t child = fork();
	ATF_REQUIRE(child >= 0);
	if (child == 0) {
		execl("/bin/sh", "sh", "-c", "sleep 10; :", "caf\xe9",
		    (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100; i++) {
		kp = kvm_getprocs(kds[0], KERN_PROC_PID, child, sizeof(*kp),
		    &cnt);
		ATF_REQUIRE(kp != NULL && cnt == 1);
		argv = kvm_getargv(kds[0], &kp[0], 0);
		if (argv != NULL && argv[0] != NULL && argv[3] != NULL &&
		    strcmp(argv[0], "sh") == 0)
			break;
		usleep(10000); /* until the child has exec'd */
	}
	ATF_REQUIRE(argv != NULL && argv[3] != NULL);
	ATF_REQUIRE_STREQ(argv[3], "caf\xe9");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	for (i = 0; i < 2; i++)
		ATF_REQUIRE_EQ(kvm_close(kds[i]), 0);
}

ATF_TC(null_core_means_the_live_kernel);
ATF_TC_HEAD(null_core_means_the_live_kernel, tc)
{
	atf_tc_set_md_var(tc, "descr", "corefile NULL opens the live "
	    "kernel's file: /proc/kcore, or $KVM_KCORE (here a missing file, "
	    "then a fixture standing in for it: live reads are not cached)");
	CONFIG(tc);
}
ATF_TC_BODY(null_core_means_the_live_kernel, tc)
{
	char *core = core_of(tc, "amd64-kaslr");
	struct nlist nl[] = { { .n_name = "linux_banner" }, { 0 } };
	char b[13];
	kvm_t *kd;

	ATF_REQUIRE(setenv("KVM_KCORE", "/nonexistent/kcore", 1) == 0);
	open_fails(NULL, NULL, O_RDONLY, "/nonexistent/kcore: ");
	ATF_REQUIRE(setenv("KVM_KCORE", core, 1) == 0);
	kd = kvm_openfiles(NULL, NULL, NULL, O_RDONLY, NULL);
	ATF_REQUIRE(kd != NULL);
	ATF_REQUIRE_EQ(kvm_nlist(kd, nl), 0);
	ATF_REQUIRE_EQ(kvm_read(kd, nl[0].n_value, b, 13), 13);
	ATF_REQUIRE(memcmp(b, "Linux version", 13) == 0);
	/* Zero bytes on a read-only live handle: refused too. */
	ATF_REQUIRE_EQ(kvm_write(kd, nl[0].n_value, b, 0), -1);
	kvm_close(kd);
	free(core);
}

/* --- kvm_geterr, kvm_close ------------------------------------------ */

ATF_TC(geterr_null_and_no_error_yet_are_empty);
ATF_TC_HEAD(geterr_null_and_no_error_yet_are_empty, tc)
{
	atf_tc_set_md_var(tc, "descr", "kvm_geterr(NULL) and kvm_geterr "
	    "before any error return \"\"");
	CONFIG(tc);
}
ATF_TC_BODY(geterr_null_and_no_error_yet_are_empty, tc)
{
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);

	ATF_REQUIRE_STREQ(kvm_geterr(NULL), "");
	ATF_REQUIRE_STREQ(kvm_geterr(kd), "");
	kvm_close(kd);
}

ATF_TC(errors_are_sticky);
ATF_TC_HEAD(errors_are_sticky, tc)
{
	atf_tc_set_md_var(tc, "descr", "a later success does not clear "
	    "the last error");
	CONFIG(tc);
}
ATF_TC_BODY(errors_are_sticky, tc)
{
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);
	struct nlist nl[] = { { .n_name = "linux_banner" }, { 0 } };
	char b[16], *msg;

	ATF_REQUIRE_EQ(kvm_read(kd, 0x1000, b, sizeof(b)), -1);
	msg = strdup(kvm_geterr(kd));
	ATF_REQUIRE(msg[0] != '\0');
	ATF_REQUIRE_EQ(kvm_nlist(kd, nl), 0);
	ATF_REQUIRE_EQ(kvm_read(kd, nl[0].n_value, b, 13), 13);
	ATF_REQUIRE_STREQ(kvm_geterr(kd), msg);
	free(msg);
	kvm_close(kd);
}

ATF_TC(geterr_buffer_lives_until_close);
ATF_TC_HEAD(geterr_buffer_lives_until_close, tc)
{
	atf_tc_set_md_var(tc, "descr", "kvm_geterr's pointer is the "
	    "handle's one buffer: a later error rewrites it, never frees it "
	    "(ASan watches)");
	CONFIG(tc);
}
ATF_TC_BODY(geterr_buffer_lives_until_close, tc)
{
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);
	struct nlist nl[] = { { .n_name = "x" }, { 0 } };
	const char *first;
	char b[8];

	ATF_REQUIRE_EQ(kvm_read(kd, 0x1000, b, 8), -1);
	first = kvm_geterr(kd);
	ATF_REQUIRE_EQ(kvm_getprocs(kd, 99, 0, sizeof(struct kinfo_proc),
	    NULL), NULL);
	ATF_REQUIRE(first == kvm_geterr(kd));
	ATF_REQUIRE(strstr(first, "invalid op") != NULL);
	/* The BSD idiom: the message as an argument of the failing call's
	   report, whatever the evaluation order. */
	ATF_REQUIRE(snprintf(b, sizeof(b), "%d%s", kvm_nlist(kd, nl),
	    kvm_geterr(kd)) > 0);
	kvm_close(kd);
}

ATF_TC(close_null_is_einval);
ATF_TC_HEAD(close_null_is_einval, tc)
{
	atf_tc_set_md_var(tc, "descr", "kvm_close(NULL) returns -1 with "
	    "errno EINVAL");
}
ATF_TC_BODY(close_null_is_einval, tc)
{
	errno = 0;
	ATF_REQUIRE_EQ(kvm_close(NULL), -1);
	ATF_REQUIRE_EQ(errno, EINVAL);
}

/* --- kvm_nlist ------------------------------------------------------ */

/* The kallsyms-subset.txt lines of SET: address, type letter, name. */
struct ksym {
	unsigned long addr;
	char type;
	char name[64];
};

static int
ksyms(const atf_tc_t *tc, const char *set, struct ksym *out, int max)
{
	char *path, line[256];
	FILE *f;
	int n = 0;

	ATF_REQUIRE(asprintf(&path, "%s/%s/kallsyms-subset.txt",
	    atf_tc_get_config_var(tc, "data"), set) > 0);
	f = fopen(path, "r");
	ATF_REQUIRE_MSG(f != NULL, "%s", path);
	while (n < max && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%lx %c %63s", &out[n].addr, &out[n].type,
		    out[n].name) == 3)
			n++;
	fclose(f);
	free(path);
	return n;
}

ATF_TC(nlist_values_and_types_equal_kallsyms);
ATF_TC_HEAD(nlist_values_and_types_equal_kallsyms, tc)
{
	atf_tc_set_md_var(tc, "descr", "n_value is the guest's "
	    "/proc/kallsyms address, n_type its type | N_EXT, on both arches");
	CONFIG(tc);
}
ATF_TC_BODY(nlist_values_and_types_equal_kallsyms, tc)
{
	for (size_t s = 0; s < NSETS; s++) {
		struct ksym k[16];
		struct nlist nl[17];
		kvm_t *kd = open_set(tc, SETS[s], O_RDONLY);
		int n = ksyms(tc, SETS[s], k, 16);

		ATF_REQUIRE(n >= 3);
		memset(nl, 0, sizeof(nl));
		for (int i = 0; i < n; i++)
			nl[i].n_name = k[i].name;
		ATF_REQUIRE_EQ_MSG(kvm_nlist(kd, nl), 0, "%s: %s", SETS[s],
		    kvm_geterr(kd));
		for (int i = 0; i < n; i++) {
			unsigned char want = k[i].type == 'T' ? N_TEXT :
			    k[i].type == 'B' ? N_BSS : N_DATA;

			ATF_CHECK_EQ_MSG(nl[i].n_value, k[i].addr, "%s %s",
			    SETS[s], k[i].name);
			ATF_CHECK_EQ_MSG(nl[i].n_type, want | N_EXT,
			    "%s %s: %#x", SETS[s], k[i].name, nl[i].n_type);
		}
		kvm_close(kd);
	}
}

ATF_TC(nlist_strips_one_leading_underscore);
ATF_TC_HEAD(nlist_strips_one_leading_underscore, tc)
{
	atf_tc_set_md_var(tc, "descr", "a name not found as given is "
	    "found without one leading '_' (BSD's \"_msgbufp\" style)");
	CONFIG(tc);
}
ATF_TC_BODY(nlist_strips_one_leading_underscore, tc)
{
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);
	struct nlist nl[] = { { .n_name = "_init_task" },
	    { .n_name = "init_task" }, { .n_name = "__init_task" }, { 0 } };

	ATF_REQUIRE_EQ(kvm_nlist(kd, nl), 1);
	ATF_REQUIRE(nl[0].n_value != 0);
	ATF_REQUIRE_EQ(nl[0].n_value, nl[1].n_value);
	ATF_REQUIRE_EQ(nl[2].n_value, 0);
	kvm_close(kd);
}

ATF_TC(nlist_counts_and_zeroes_the_missing);
ATF_TC_HEAD(nlist_counts_and_zeroes_the_missing, tc)
{
	atf_tc_set_md_var(tc, "descr", "kvm_nlist returns the number not "
	    "found and leaves their n_type and n_value 0");
	CONFIG(tc);
}
ATF_TC_BODY(nlist_counts_and_zeroes_the_missing, tc)
{
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);
	struct nlist nl[] = { { .n_name = "no_such_symbol_a" },
	    { .n_name = "init_task" }, { .n_name = "no_such_symbol_b" },
	    { 0 } };

	nl[0].n_type = nl[2].n_type = 0x55;
	nl[0].n_value = nl[2].n_value = 0x1234;
	ATF_REQUIRE_EQ(kvm_nlist(kd, nl), 2);
	ATF_REQUIRE_EQ(nl[0].n_type, 0);
	ATF_REQUIRE_EQ(nl[0].n_value, 0);
	ATF_REQUIRE_EQ(nl[2].n_type, 0);
	ATF_REQUIRE_EQ(nl[2].n_value, 0);
	ATF_REQUIRE_EQ(nl[1].n_type, N_DATA | N_EXT);
	kvm_close(kd);
}

ATF_TC(nlist_ends_at_null_or_empty_name);
ATF_TC_HEAD(nlist_ends_at_null_or_empty_name, tc)
{
	atf_tc_set_md_var(tc, "descr", "the list ends at a NULL or empty "
	    "name; entries after it are not touched");
	CONFIG(tc);
}
ATF_TC_BODY(nlist_ends_at_null_or_empty_name, tc)
{
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);
	struct nlist nl[] = { { .n_name = "init_task" }, { .n_name = "" },
	    { .n_name = "linux_banner", .n_value = 7 }, { 0 } };
	struct nlist none[] = { { .n_name = NULL } };

	ATF_REQUIRE_EQ(kvm_nlist(kd, nl), 0);
	ATF_REQUIRE(nl[0].n_value != 0);
	ATF_REQUIRE_EQ(nl[2].n_value, 7);
	ATF_REQUIRE_EQ(nl[2].n_type, 0);
	ATF_REQUIRE_EQ(kvm_nlist(kd, none), 0);
	kvm_close(kd);
}

static int resolver_calls;
static int
resolver(const char *name, kvaddr_t *addr)
{
	resolver_calls++;
	if (strcmp(name, "from_the_resolver") != 0)
		return 1;
	*addr = 0xfeedface;
	return 0;
}

ATF_TC(nlist2_and_open2_resolver);
ATF_TC_HEAD(nlist2_and_open2_resolver, tc)
{
	atf_tc_set_md_var(tc, "descr", "kvm_nlist2 gives 64-bit values; "
	    "kvm_open2's resolver answers for names the kernel lacks");
	CONFIG(tc);
}
ATF_TC_BODY(nlist2_and_open2_resolver, tc)
{
	char errbuf[_POSIX2_LINE_MAX], *core = core_of(tc, "arm64-kaslr");
	struct ksym k[16];
	kvm_t *kd = kvm_open2(NULL, core, O_RDONLY, errbuf, resolver);
	struct kvm_nlist nl[] = { { .n_name = "_stext" },
	    { .n_name = "from_the_resolver" }, { .n_name = "nowhere_at_all" },
	    { .n_name = NULL } };
	int n = ksyms(tc, "arm64-kaslr", k, 16);

	ATF_REQUIRE_MSG(kd != NULL, "%s", errbuf);
	ATF_REQUIRE(n > 0 && strcmp(k[0].name, "_stext") == 0);
	ATF_REQUIRE_EQ(kvm_nlist2(kd, nl), 1);
	ATF_REQUIRE_EQ(nl[0].n_value, (kvaddr_t)k[0].addr);
	ATF_REQUIRE_EQ(nl[0].n_type, N_TEXT | N_EXT);
	ATF_REQUIRE_EQ(nl[1].n_value, 0xfeedface);
	ATF_REQUIRE_EQ(nl[2].n_value, 0);
	ATF_REQUIRE_EQ(resolver_calls, 2);
	kvm_close(kd);
	free(core);
}

/* --- kvm_read, kvm_write -------------------------------------------- */

ATF_TC(read_returns_bytes_read_or_minus_one);
ATF_TC_HEAD(read_returns_bytes_read_or_minus_one, tc)
{
	atf_tc_set_md_var(tc, "descr", "kvm_read/kvm_read2 return the bytes "
	    "read, fewer at a page the dump lacks, -1 before any byte, 0 for "
	    "0 bytes");
	CONFIG(tc);
}
ATF_TC_BODY(read_returns_bytes_read_or_minus_one, tc)
{
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);
	struct nlist nl[] = { { .n_name = "linux_banner" }, { 0 } };
	char b[13], *big;
	unsigned long end;
	ssize_t n;

	ATF_REQUIRE_EQ(kvm_nlist(kd, nl), 0);
	ATF_REQUIRE_EQ(kvm_read(kd, nl[0].n_value, b, 13), 13);
	ATF_REQUIRE(memcmp(b, "Linux version", 13) == 0);
	memset(b, 0, sizeof(b));
	ATF_REQUIRE_EQ(kvm_read2(kd, nl[0].n_value, b, 13), 13);
	ATF_REQUIRE(memcmp(b, "Linux version", 13) == 0);
	ATF_REQUIRE_EQ(kvm_read(kd, nl[0].n_value, b, 0), 0);
	/* The cut-down fixture holds the banner's page and not the pages
	   16 MiB on: a read that runs into them stops at the last page it
	   holds. */
	big = malloc(16 << 20);
	ATF_REQUIRE(big != NULL);
	n = kvm_read(kd, nl[0].n_value, big, 16 << 20);
	end = (nl[0].n_value | 0xfff) + 1;
	ATF_REQUIRE_MSG(n >= (ssize_t)(end - nl[0].n_value) &&
	    n < (16 << 20), "%zd", n);
	ATF_REQUIRE_EQ(n % 4096, (ssize_t)((end - nl[0].n_value) % 4096));
	ATF_REQUIRE_EQ(kvm_read(kd, 8 << 20, b, 13), -1);
	ATF_REQUIRE(kvm_geterr(kd)[0] != '\0');
	free(big);
	kvm_close(kd);
}

ATF_TC(read_a_task_on_both_arches);
ATF_TC_HEAD(read_a_task_on_both_arches, tc)
{
	atf_tc_set_md_var(tc, "descr", "kvm_read of init's task structure "
	    "(p_paddr) holds its comm, on both arches");
	CONFIG(tc);
}
ATF_TC_BODY(read_a_task_on_both_arches, tc)
{
	for (size_t s = 0; s < NSETS; s++) {
		kvm_t *kd = open_set(tc, SETS[s], O_RDONLY);
		struct kinfo_proc *kp;
		char page[4096];
		int cnt, found = 0, read = 0;

		kp = kvm_getprocs(kd, KERN_PROC_PID, 1, sizeof(*kp), &cnt);
		ATF_REQUIRE(kp != NULL && cnt == 1);
		/* task_struct spans about 9 KiB; the cut-down fixture holds
		   the pages of it kvm ps read, the comm's among them. */
		for (uint64_t a = kp->p_paddr & ~0xfffULL;
		    a < kp->p_paddr + 16384; a += 4096) {
			ssize_t n = kvm_read(kd, a, page, sizeof(page));

			if (n < 0)
				continue;
			ATF_REQUIRE_EQ(n, (ssize_t)sizeof(page));
			read++;
			found |= memmem(page, sizeof(page), "init\0", 5) !=
			    NULL;
		}
		ATF_REQUIRE_MSG(read >= 1 && found, "%s: %d pages read, comm "
		    "%sfound", SETS[s], read, found ? "" : "not ");
		kvm_close(kd);
	}
}

ATF_TC(write_to_a_dump_fails_clearly);
ATF_TC_HEAD(write_to_a_dump_fails_clearly, tc)
{
	atf_tc_set_md_var(tc, "descr", "kvm_write on a dump fails with "
	    "\"read-only\", also opened O_RDWR, also for 0 bytes read-only");
	CONFIG(tc);
}
ATF_TC_BODY(write_to_a_dump_fails_clearly, tc)
{
	struct nlist nl[] = { { .n_name = "linux_banner" }, { 0 } };
	kvm_t *ro = open_set(tc, "amd64-kaslr", O_RDONLY);
	kvm_t *rw = open_set(tc, "amd64-kaslr", O_RDWR);

	ATF_REQUIRE_EQ(kvm_nlist(rw, nl), 0);
	ATF_REQUIRE_EQ(kvm_write(rw, nl[0].n_value, "X", 1), -1);
	ATF_REQUIRE_MSG(strstr(kvm_geterr(rw), "read-only") != NULL, "%s",
	    kvm_geterr(rw));
	ATF_REQUIRE_EQ(kvm_write(ro, nl[0].n_value, "", 0), -1);
	ATF_REQUIRE(strstr(kvm_geterr(ro), "read-only") != NULL);
	kvm_close(ro);
	kvm_close(rw);
}

/* --- processes ------------------------------------------------------ */

struct tproc {
	int pid, ppid, kthread;
	unsigned uid, gid;
	char state;
	char comm[32];
	char argv[1024], env[1024];
};

/* The truth of SET: processes and load averages. */
static int
truth(const atf_tc_t *tc, const char *set, struct tproc *out, int max,
    double load[3])
{
	char *path, *line = NULL;
	size_t cap = 0;
	FILE *f;
	int n = 0;

	ATF_REQUIRE(asprintf(&path, "%s/%s.tsv",
	    atf_tc_get_config_var(tc, "truth"), set) > 0);
	f = fopen(path, "r");
	ATF_REQUIRE_MSG(f != NULL, "%s", path);
	ATF_REQUIRE(getline(&line, &cap, f) > 0);
	ATF_REQUIRE(sscanf(line, "loadavg %lf %lf %lf", &load[0], &load[1],
	    &load[2]) == 3);
	while (n < max && getline(&line, &cap, f) > 0) {
		struct tproc *p = &out[n];
		char *f0 = line, *fld[9];
		int i;

		line[strcspn(line, "\n")] = '\0';
		for (i = 0; i < 9; i++)
			fld[i] = strsep(&f0, "\t");
		ATF_REQUIRE_MSG(fld[8] != NULL, "%s: short line", path);
		p->pid = atoi(fld[0]);
		p->ppid = atoi(fld[1]);
		p->uid = (unsigned)atoi(fld[2]);
		p->gid = (unsigned)atoi(fld[3]);
		p->state = fld[4][0];
		p->kthread = atoi(fld[5]);
		snprintf(p->comm, sizeof(p->comm), "%s", fld[6]);
		snprintf(p->argv, sizeof(p->argv), "%s", fld[7]);
		snprintf(p->env, sizeof(p->env), "%s", fld[8]);
		n++;
	}
	free(line);
	fclose(f);
	free(path);
	return n;
}

/*
 * `in` as the truth files hold text (JSON, made with Rust's
 * String::from_utf8_lossy): each maximal invalid UTF-8 subpart becomes
 * U+FFFD. kvm_getargv returns the bytes the process holds, as BSD does.
 */
static char *
lossy(const char *in)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n = strlen(in), i = 0, o = 0;
	char *out = malloc(3 * n + 1);

	ATF_REQUIRE(out != NULL);
	while (i < n) {
		unsigned char c = s[i], lo = 0x80, hi = 0xbf;
		size_t need = 0, k = 1;

		if (c < 0x80) {
			out[o++] = (char)c;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1;
		else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			lo = c == 0xe0 ? 0xa0 : 0x80;
			hi = c == 0xed ? 0x9f : 0xbf;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			lo = c == 0xf0 ? 0x90 : 0x80;
			hi = c == 0xf4 ? 0x8f : 0xbf;
		}
		for (; need && k <= need && i + k < n; k++) {
			unsigned char d = s[i + k];

			if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xbf))
				break;
		}
		if (need && k == need + 1) {
			memcpy(out + o, s + i, k);
			o += k;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
		}
		i += k;
	}
	out[o] = '\0';
	return out;
}

/* The strings of a NULL-terminated array, each as the truth files hold
   it (lossy()) with '%', tab, newline and \037 as %XX, joined by \037. */
static void
joined(char **v, char *out, size_t len)
{
	size_t at = 0;

	out[0] = '\0';
	for (int i = 0; v[i] != NULL && at < len; i++) {
		char *text = lossy(v[i]);

		if (i)
			at += (size_t)snprintf(out + at, len - at, "\037");
		for (const char *c = text; *c != '\0' && at < len; c++)
			at += (size_t)snprintf(out + at, len - at,
			    strchr("%\t\n\037", *c) ? "%%%02x" : "%c",
			    (unsigned char)*c);
		free(text);
	}
}

/*
 * Whether the kernel's 15-byte comm is what /proc printed: /proc shows
 * kernel threads by their full name (rcu_tasks_kthread for the stored
 * rcu_tasks_kthre) and workqueue workers with their work appended
 * (kworker/0:1-events for kworker/0:1).
 */
static int
comm_matches(const char *proc, const char *kernel)
{
	size_t n = strlen(kernel);

	if (strcmp(proc, kernel) == 0)
		return 1;
	if (n == 15 && strncmp(proc, kernel, 15) == 0)
		return 1;
	return strncmp(kernel, "kworker/", 8) == 0 &&
	    strncmp(proc, kernel, n) == 0 && proc[n] == '-';
}

static const struct tproc *
find(const struct tproc *t, int n, int pid)
{
	for (int i = 0; i < n; i++)
		if (t[i].pid == pid)
			return &t[i];
	return NULL;
}

ATF_TC(getprocs_argv_env_equal_truth);
ATF_TC_HEAD(getprocs_argv_env_equal_truth, tc)
{
	atf_tc_set_md_var(tc, "descr", "kvm_getprocs, kvm_getargv and "
	    "kvm_getenvv give every process of the guest's /proc, with its "
	    "pid, ppid, uids, gids, state, comm, argv and env, on both arches");
	CONFIG(tc);
}
ATF_TC_BODY(getprocs_argv_env_equal_truth, tc)
{
	static struct tproc t[512];

	for (size_t s = 0; s < NSETS; s++) {
		kvm_t *kd = open_set(tc, SETS[s], O_RDONLY);
		double load[3];
		int nt = truth(tc, SETS[s], t, 512, load), n, users = 0;
		struct kinfo_proc *kp = kvm_getprocs(kd, KERN_PROC_KTHREAD, 0,
		    sizeof(*kp), &n);

		ATF_REQUIRE_MSG(kp != NULL, "%s", kvm_geterr(kd));
		ATF_REQUIRE_EQ_MSG(n, nt, "%s", SETS[s]);
		for (int i = 0; i < n; i++) {
			const struct tproc *w = find(t, nt, kp[i].p_pid);
			char got[1024];
			char **v;

			ATF_REQUIRE_MSG(w != NULL, "%s: pid %d", SETS[s],
			    kp[i].p_pid);
			ATF_CHECK_EQ(kp[i].p_ppid, w->ppid);
			ATF_CHECK_EQ(kp[i].p_ruid, w->uid);
			ATF_CHECK_EQ(kp[i].p_rgid, w->gid);
			ATF_CHECK_MSG(comm_matches(w->comm, kp[i].p_comm),
			    "%s pid %d: comm %s, /proc %s", SETS[s], w->pid,
			    kp[i].p_comm, w->comm);
			/* Kernel threads may change state between the
			   capture and the stop. */
			if (!w->kthread)
				ATF_CHECK_EQ(kp[i].p_kvm_state, w->state);
			ATF_CHECK_EQ(!!(kp[i].p_flag & P_SYSTEM), w->kthread);
			ATF_CHECK_EQ(kp[i].p_tid, -1);
			ATF_CHECK((kp[i].p_kvm_valid & (KVM_KI_PPID |
			    KVM_KI_UID | KVM_KI_GID | KVM_KI_STAT)) ==
			    (KVM_KI_PPID | KVM_KI_UID | KVM_KI_GID |
			    KVM_KI_STAT));
			if (w->kthread)
				continue;
			users++;
			v = kvm_getargv(kd, &kp[i], 0);
			ATF_REQUIRE_MSG(v != NULL, "%s", kvm_geterr(kd));
			joined(v, got, sizeof(got));
			ATF_CHECK_STREQ_MSG(got, w->argv, "%s pid %d argv",
			    SETS[s], w->pid);
			v = kvm_getenvv(kd, &kp[i], 0);
			ATF_REQUIRE_MSG(v != NULL, "%s", kvm_geterr(kd));
			joined(v, got, sizeof(got));
			ATF_CHECK_STREQ_MSG(got, w->env, "%s pid %d env",
			    SETS[s], w->pid);
		}
		ATF_REQUIRE(users > 3);
		kvm_close(kd);
	}
}

ATF_TC(getprocs_ops_select);
ATF_TC_HEAD(getprocs_ops_select, tc)
{
	atf_tc_set_md_var(tc, "descr", "KERN_PROC_PID, UID, RUID, PGRP, "
	    "SESSION, KTHREAD select as the truth says; SHOW_THREADS adds "
	    "one entry per thread after its process; bad ops are refused");
	CONFIG(tc);
}
ATF_TC_BODY(getprocs_ops_select, tc)
{
	static struct tproc t[512];
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);
	struct kinfo_proc *kp;
	double load[3];
	int nt = truth(tc, "amd64-kaslr", t, 512, load), n, want, i;

	kp = kvm_getprocs(kd, KERN_PROC_PID, 1, sizeof(*kp), &n);
	ATF_REQUIRE(kp != NULL);
	ATF_REQUIRE_EQ(n, 1);
	ATF_REQUIRE_EQ(kp[0].p_pid, 1);
	ATF_REQUIRE_STREQ(kp[0].p_comm, "init");
	for (want = 0, i = 0; i < nt; i++)
		want += t[i].uid == 1000;
	ATF_REQUIRE_EQ(want, 1);
	ATF_REQUIRE(kvm_getprocs(kd, KERN_PROC_UID, 1000, sizeof(*kp), &n));
	ATF_REQUIRE_EQ(n, want);
	ATF_REQUIRE(kvm_getprocs(kd, KERN_PROC_RUID, 1000, sizeof(*kp), &n));
	ATF_REQUIRE_EQ(n, want);
	/* As OpenBSD: ALL leaves kernel threads out, KTHREAD adds them. */
	for (want = 0, i = 0; i < nt; i++)
		want += !t[i].kthread;
	kp = kvm_getprocs(kd, KERN_PROC_ALL, 0, sizeof(*kp), &n);
	ATF_REQUIRE(kp != NULL);
	ATF_REQUIRE_EQ(n, want);
	for (i = 0; i < n; i++)
		ATF_REQUIRE_EQ(kp[i].p_flag & P_SYSTEM, 0);
	ATF_REQUIRE(kvm_getprocs(kd, KERN_PROC_KTHREAD, 0, sizeof(*kp), &n));
	ATF_REQUIRE_EQ(n, nt);
	/* No process here has a terminal: KI_NODEV selects them all. */
	ATF_REQUIRE(kvm_getprocs(kd, KERN_PROC_TTY, (int)KI_NODEV,
	    sizeof(*kp), &n));
	ATF_REQUIRE_EQ(n, want);
	kp = kvm_getprocs(kd, KERN_PROC_PGRP, 0, sizeof(*kp), &n);
	ATF_REQUIRE(kp != NULL && n >= 1);
	for (i = 0; i < n; i++)
		ATF_REQUIRE_EQ(kp[i].p__pgid, 0);
	kp = kvm_getprocs(kd, KERN_PROC_SESSION, 0, sizeof(*kp), &n);
	ATF_REQUIRE(kp != NULL);
	for (i = 0; i < n; i++)
		ATF_REQUIRE_EQ(kp[i].p_sid, 0);
	/* Threads: each process entry (p_tid -1) is followed by its
	   p_kvm_nthreads threads, the leader's tid its pid. */
	kp = kvm_getprocs(kd, KERN_PROC_ALL | KERN_PROC_SHOW_THREADS, 0,
	    sizeof(*kp), &n);
	ATF_REQUIRE(kp != NULL);
	for (i = 0; i < n; ) {
		int pid = kp[i].p_pid, nth = kp[i].p_kvm_nthreads;

		ATF_REQUIRE_EQ(kp[i].p_tid, -1);
		ATF_REQUIRE(nth >= 1 && i + nth < n + 1);
		ATF_REQUIRE_EQ(kp[i + 1].p_tid, pid);
		for (int j = 1; j <= nth; j++)
			ATF_REQUIRE_EQ(kp[i + j].p_pid, pid);
		i += nth + 1;
	}
	ATF_REQUIRE(kvm_getprocs(kd, 99, 0, sizeof(*kp), &n) == NULL);
	ATF_REQUIRE(strstr(kvm_geterr(kd), "invalid op") != NULL);
	kvm_close(kd);
}

ATF_TC(getprocs_checks_elemsize);
ATF_TC_HEAD(getprocs_checks_elemsize, tc)
{
	atf_tc_set_md_var(tc, "descr", "an elemsize other than "
	    "sizeof(struct kinfo_proc) is refused with a message");
	CONFIG(tc);
}
ATF_TC_BODY(getprocs_checks_elemsize, tc)
{
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);
	int n = -7;

	ATF_REQUIRE(kvm_getprocs(kd, KERN_PROC_ALL, 0,
	    sizeof(struct kinfo_proc) - 8, &n) == NULL);
	ATF_REQUIRE_EQ(n, -7);
	ATF_REQUIRE(strstr(kvm_geterr(kd), "elemsize") != NULL);
	kvm_close(kd);
}

ATF_TC(getprocs_and_argv_arrays_belong_to_the_handle);
ATF_TC_HEAD(getprocs_and_argv_arrays_belong_to_the_handle, tc)
{
	atf_tc_set_md_var(tc, "descr", "the arrays stay valid until the "
	    "next call of the same function (argv and env each their own) "
	    "and are freed by kvm_close (ASan checks)");
	CONFIG(tc);
}
ATF_TC_BODY(getprocs_and_argv_arrays_belong_to_the_handle, tc)
{
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);
	struct kinfo_proc *kp;
	char **av, **ev;
	int n;

	kp = kvm_getprocs(kd, KERN_PROC_PID, 1, sizeof(*kp), &n);
	ATF_REQUIRE(kp != NULL && n == 1);
	av = kvm_getargv(kd, kp, 0);
	ev = kvm_getenvv(kd, kp, 0);
	ATF_REQUIRE(av != NULL && ev != NULL);
	/* The env call did not disturb argv. */
	ATF_REQUIRE_STREQ(av[0], "/bin/sh");
	ATF_REQUIRE_STREQ(av[1], "/init");
	ATF_REQUIRE(av[2] == NULL);
	ATF_REQUIRE_STREQ(ev[0], "HOME=/");
	kvm_close(kd);
}

ATF_TC(getargv_honours_nchr);
ATF_TC_HEAD(getargv_honours_nchr, tc)
{
	atf_tc_set_md_var(tc, "descr", "nchr bounds the bytes returned, "
	    "NULs included; the string that crosses it is cut");
	CONFIG(tc);
}
ATF_TC_BODY(getargv_honours_nchr, tc)
{
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);
	struct kinfo_proc *kp;
	char **av;
	int n;

	kp = kvm_getprocs(kd, KERN_PROC_PID, 1, sizeof(*kp), &n);
	ATF_REQUIRE(kp != NULL && n == 1);
	/* argv is "/bin/sh" "/init": 8 + 6 bytes. */
	av = kvm_getargv(kd, kp, 5);
	ATF_REQUIRE(av != NULL);
	ATF_REQUIRE_STREQ(av[0], "/bin");
	ATF_REQUIRE(av[1] == NULL);
	av = kvm_getargv(kd, kp, 10);
	ATF_REQUIRE_STREQ(av[0], "/bin/sh");
	ATF_REQUIRE_STREQ(av[1], "/");
	ATF_REQUIRE(av[2] == NULL);
	av = kvm_getargv(kd, kp, 14);
	ATF_REQUIRE_STREQ(av[1], "/init");
	ATF_REQUIRE(av[2] == NULL);
	ATF_REQUIRE(kvm_getargv(kd, kp, -1) == NULL);
	ATF_REQUIRE(kvm_getargv(kd, NULL, 0) == NULL);
	/* A kernel thread (kthreadd, pid 2) has none: NULL, as BSD. */
	kp = kvm_getprocs(kd, KERN_PROC_KTHREAD, 0, sizeof(*kp), &n);
	ATF_REQUIRE(kp != NULL && n > 2 && kp[1].p_pid == 2);
	ATF_REQUIRE(kvm_getargv(kd, &kp[1], 0) == NULL);
	ATF_REQUIRE(strstr(kvm_geterr(kd), "kernel thread") != NULL);
	kvm_close(kd);
}

/* --- load, pages, savecore ------------------------------------------ */

ATF_TC(loadavg_equals_truth);
ATF_TC_HEAD(loadavg_equals_truth, tc)
{
	atf_tc_set_md_var(tc, "descr", "kvm_getloadavg gives /proc/loadavg's "
	    "three values on both arches, at most nelem of them");
	CONFIG(tc);
}
ATF_TC_BODY(loadavg_equals_truth, tc)
{
	static struct tproc t[512];

	for (size_t s = 0; s < NSETS; s++) {
		kvm_t *kd = open_set(tc, SETS[s], O_RDONLY);
		double want[3], got[3] = { -1, -1, -1 };

		truth(tc, SETS[s], t, 512, want);
		ATF_REQUIRE_EQ(kvm_getloadavg(kd, got, 3), 3);
		for (int i = 0; i < 3; i++)
			ATF_CHECK_MSG(got[i] > want[i] - 0.005 &&
			    got[i] < want[i] + 0.005, "%s: %f != %f", SETS[s],
			    got[i], want[i]);
		got[1] = -1;
		ATF_REQUIRE_EQ(kvm_getloadavg(kd, got, 1), 1);
		ATF_REQUIRE_EQ(got[1], -1);
		ATF_REQUIRE_EQ(kvm_getloadavg(kd, got, 10), 3);
		kvm_close(kd);
	}
}

struct walk { int pages, stop_at; kvaddr_t last; int ordered; };

static int
count_page(struct kvm_page *p, void *arg)
{
	struct walk *w = arg;

	if (p->kp_version != LIBKVM_WALK_PAGES_VERSION ||
	    (p->kp_prot & VM_PROT_READ) == 0 || p->kp_len < 4096 ||
	    (w->pages > 0 && p->kp_kmap_vaddr <= w->last))
		w->ordered = 0;
	w->last = p->kp_kmap_vaddr;
	return ++w->pages != w->stop_at;
}

ATF_TC(walk_pages_visits_and_stops);
ATF_TC_HEAD(walk_pages_visits_and_stops, tc)
{
	atf_tc_set_md_var(tc, "descr", "kvm_walk_pages visits mapped pages "
	    "in address order (1) and stops when the callback returns 0 (0)");
	CONFIG(tc);
}
ATF_TC_BODY(walk_pages_visits_and_stops, tc)
{
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);
	struct walk w = { 0, 1000, 0, 1 };

	ATF_REQUIRE_EQ(kvm_walk_pages(kd, count_page, &w), 0);
	ATF_REQUIRE_EQ(w.pages, 1000);
	ATF_REQUIRE(w.ordered);
	ATF_REQUIRE_EQ(kvm_walk_pages(kd, NULL, &w), 0);
	kvm_close(kd);
}

struct reentry { kvm_t *kd; int pages, reads; kvaddr_t va[50]; };

static int
read_each_page(struct kvm_page *p, void *arg)
{
	struct reentry *r = arg;
	char b[8];

	/* Back into the library, on the same handle, from the callback. */
	if (kvm_read(r->kd, p->kp_kmap_vaddr, b, sizeof(b)) == sizeof(b))
		r->reads++;
	r->va[r->pages] = p->kp_kmap_vaddr;
	return ++r->pages < 50;
}

ATF_TC(walk_pages_callback_may_call_the_library);
ATF_TC_HEAD(walk_pages_callback_may_call_the_library, tc)
{
	atf_tc_set_md_var(tc, "descr", "a kvm_walk_pages callback may call "
	    "kvm_read on the walked handle");
	CONFIG(tc);
}
ATF_TC_BODY(walk_pages_callback_may_call_the_library, tc)
{
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);
	struct reentry r = { kd, 0, 0, { 0 } };
	int again = 0;
	char b[8];

	ATF_REQUIRE_EQ(kvm_walk_pages(kd, read_each_page, &r), 0);
	ATF_REQUIRE_EQ(r.pages, 50);
	/* The reads inside the walk answered as the same reads after it
	   (the cut-down fixture holds only some of the pages mapped). */
	for (int i = 0; i < 50; i++)
		again += kvm_read(kd, r.va[i], b, sizeof(b)) == sizeof(b);
	ATF_REQUIRE_EQ(r.reads, again);
	kvm_close(kd);
}

ATF_TC(dump_calls);
ATF_TC_HEAD(dump_calls, tc)
{
	atf_tc_set_md_var(tc, "descr", "kvm_dump_mkheader gives the header "
	    "size, kvm_dump_wrtheader writes that many bytes, kvm_dump_inval "
	    "refuses a read-only dump; arm64 is refused");
	CONFIG(tc);
}
ATF_TC_BODY(dump_calls, tc)
{
	kvm_t *kd = open_set(tc, "amd64-kaslr", O_RDONLY);
	kvm_t *arm = open_set(tc, "arm64-kaslr", O_RDONLY);
	FILE *f = tmpfile();
	int size;

	size = kvm_dump_mkheader(kd, 0);
	ATF_REQUIRE_MSG(size > 0, "%s", kvm_geterr(kd));
	ATF_REQUIRE_EQ(kvm_dump_wrtheader(kd, f, 1 << 20), 0);
	ATF_REQUIRE_EQ(ftell(f), size);
	ATF_REQUIRE_EQ(kvm_dump_wrtheader(kd, f, -1), -1);
	ATF_REQUIRE_EQ(kvm_dump_inval(kd), -1);
	ATF_REQUIRE(strstr(kvm_geterr(kd), "read-only") != NULL);
	ATF_REQUIRE_EQ(kvm_dump_mkheader(arm, 0), -1);
	ATF_REQUIRE(strstr(kvm_geterr(arm), "amd64 and i386") != NULL);
	fclose(f);
	kvm_close(kd);
	kvm_close(arm);
}

ATF_TC(null_handles_are_refused);
ATF_TC_HEAD(null_handles_are_refused, tc)
{
	atf_tc_set_md_var(tc, "descr", "every call given a NULL handle "
	    "fails with its error value and errno EINVAL");
}
ATF_TC_BODY(null_handles_are_refused, tc)
{
	struct nlist nl[] = { { .n_name = "x" }, { 0 } };
	double l[3];
	char b[4];
	int n;

	ATF_REQUIRE_EQ(kvm_read(NULL, 0, b, 4), -1);
	ATF_REQUIRE_EQ(kvm_write(NULL, 0, b, 4), -1);
	ATF_REQUIRE_EQ(kvm_nlist(NULL, nl), -1);
	ATF_REQUIRE(kvm_getprocs(NULL, 0, 0, sizeof(struct kinfo_proc), &n)
	    == NULL);
	ATF_REQUIRE(kvm_getargv(NULL, NULL, 0) == NULL);
	ATF_REQUIRE_EQ(kvm_getloadavg(NULL, l, 3), -1);
	errno = 0;
	ATF_REQUIRE_EQ(kvm_dump_inval(NULL), -1);
	ATF_REQUIRE_EQ(errno, EINVAL);
}

ATF_TP_ADD_TCS(tp)
{
	ATF_TP_ADD_TC(tp, failed_open_leaves_message_in_errbuf);
	ATF_TP_ADD_TC(tp, errbuf_is_posix2_line_max);
	ATF_TP_ADD_TC(tp, null_errbuf_writes_nothing);
	ATF_TP_ADD_TC(tp, kvm_open_prints_errstr_and_message);
	ATF_TP_ADD_TC(tp, open_refusals);
	ATF_TP_ADD_TC(tp, dev_null_and_no_files_mean_no_memory);
	ATF_TP_ADD_TC(tp, null_core_means_the_live_kernel);
	ATF_TP_ADD_TC(tp, no_files_lists_the_processes_the_os_lists);
	ATF_TP_ADD_TC(tp, geterr_null_and_no_error_yet_are_empty);
	ATF_TP_ADD_TC(tp, errors_are_sticky);
	ATF_TP_ADD_TC(tp, geterr_buffer_lives_until_close);
	ATF_TP_ADD_TC(tp, close_null_is_einval);
	ATF_TP_ADD_TC(tp, nlist_values_and_types_equal_kallsyms);
	ATF_TP_ADD_TC(tp, nlist_strips_one_leading_underscore);
	ATF_TP_ADD_TC(tp, nlist_counts_and_zeroes_the_missing);
	ATF_TP_ADD_TC(tp, nlist_ends_at_null_or_empty_name);
	ATF_TP_ADD_TC(tp, nlist2_and_open2_resolver);
	ATF_TP_ADD_TC(tp, read_returns_bytes_read_or_minus_one);
	ATF_TP_ADD_TC(tp, read_a_task_on_both_arches);
	ATF_TP_ADD_TC(tp, write_to_a_dump_fails_clearly);
	ATF_TP_ADD_TC(tp, getprocs_argv_env_equal_truth);
	ATF_TP_ADD_TC(tp, getprocs_ops_select);
	ATF_TP_ADD_TC(tp, getprocs_checks_elemsize);
	ATF_TP_ADD_TC(tp, getprocs_and_argv_arrays_belong_to_the_handle);
	ATF_TP_ADD_TC(tp, getargv_honours_nchr);
	ATF_TP_ADD_TC(tp, loadavg_equals_truth);
	ATF_TP_ADD_TC(tp, walk_pages_visits_and_stops);
	ATF_TP_ADD_TC(tp, walk_pages_callback_may_call_the_library);
	ATF_TP_ADD_TC(tp, dump_calls);
	ATF_TP_ADD_TC(tp, null_handles_are_refused);
	return atf_no_error();
}
