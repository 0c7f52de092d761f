/*
 * fstat: the open files of a crash dump's processes through kvm(3), as
 * BSD's fstat(1) lists them from kvm_getfiles.   fstat -M core [-N kernel] [-p pid]
 *
 * One line per descriptor: pid, command, descriptor (with "e" when it is
 * closed on exec), type, inode, open flags (octal), position, and the
 * path it names, tab-separated.
 */
#define	_POSIX_C_SOURCE	200809L	/* getopt */

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <kvm.h>

static const char *
type(unsigned t)
{
	switch (t) {
	case DTYPE_SOCKET:
		return "socket";
	case DTYPE_PIPE:
		return "pipe";
	default:
		return "vnode";
	}
}

int
main(int argc, char *argv[])
{
	char errbuf[_POSIX2_LINE_MAX];
	const char *core = NULL, *kernel = NULL;
	int op = KERN_FILE_BYPID, arg = -1, c, n, i;

	while ((c = getopt(argc, argv, "M:N:p:")) != -1) {
		switch (c) {
		case 'M':
			core = optarg;
			break;
		case 'N':
			kernel = optarg;
			break;
		case 'p':
			arg = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: fstat -M core [-N kernel] [-p pid]\n");
			return 2;
		}
	}
	kvm_t *kd = kvm_openfiles(kernel, core, NULL, O_RDONLY, errbuf);
	if (kd == NULL) {
		fprintf(stderr, "fstat: %s\n", errbuf);
		return 1;
	}
	struct kinfo_file *kf = kvm_getfiles(kd, op, arg, sizeof(*kf), &n);
	if (kf == NULL) {
		fprintf(stderr, "fstat: %s\n", kvm_geterr(kd));
		kvm_close(kd);
		return 1;
	}
	for (i = 0; i < n; i++) {
		printf("%d\t%s\t%d%s\t%s\t%llu\t0%o\t%llu\t%s\n", kf[i].p_pid,
		    kf[i].p_comm, kf[i].fd_fd,
		    kf[i].fd_ofileflags & UF_EXCLOSE ? "e" : "",
		    type(kf[i].f_type), (unsigned long long)kf[i].va_fileid,
		    kf[i].f_flag, (unsigned long long)kf[i].f_offset,
		    kf[i].f_kvm_path);
	}
	kvm_close(kd);
	return 0;
}
