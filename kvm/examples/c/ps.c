/*
 * ps: the processes of a kernel through kvm(3), as a BSD program lists
 * them: kvm_openfiles, kvm_getprocs, kvm_getargv, kvm_geterr, kvm_close.
 *
 *   ps [-M core] [-N kernel]
 *
 * One line per process: pid, parent pid, real uid, state letter, command
 * name and arguments ("-" for a field the kernel's memory does not give).
 * Without -M it reads the running kernel.
 *
 * Build: cc -Wall -Werror $(pkg-config --cflags kvm) ps.c $(pkg-config --libs kvm)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <kvm.h>

static void
usage(void)
{
	fprintf(stderr, "usage: ps [-M core] [-N kernel]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	char errbuf[_POSIX2_LINE_MAX];
	const char *core = NULL, *kernel = NULL;
	struct kinfo_proc *kp;
	kvm_t *kd;
	int c, i, n;

	while ((c = getopt(argc, argv, "M:N:")) != -1) {
		switch (c) {
		case 'M':
			core = optarg;
			break;
		case 'N':
			kernel = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	kd = kvm_openfiles(kernel, core, NULL, O_RDONLY, errbuf);
	if (kd == NULL) {
		fprintf(stderr, "ps: %s\n", errbuf);
		return 1;
	}
	/* KERN_PROC_KTHREAD: every process, kernel threads included. */
	kp = kvm_getprocs(kd, KERN_PROC_KTHREAD, 0, sizeof(*kp), &n);
	if (kp == NULL) {
		fprintf(stderr, "ps: %s\n", kvm_geterr(kd));
		kvm_close(kd);
		return 1;
	}
	printf("PID PPID UID S COMM ARGS\n");
	for (i = 0; i < n; i++) {
		char **av;

		printf("%d ", kp[i].p_pid);
		if (kp[i].p_kvm_valid & KVM_KI_PPID)
			printf("%d ", kp[i].p_ppid);
		else
			printf("- ");
		if (kp[i].p_kvm_valid & KVM_KI_UID)
			printf("%u ", kp[i].p_ruid);
		else
			printf("- ");
		printf("%c %s", (kp[i].p_kvm_valid & KVM_KI_STAT) ?
		    kp[i].p_kvm_state : '-', kp[i].p_comm);
		/* Kernel threads have no arguments. */
		if (!(kp[i].p_flag & P_SYSTEM)) {
			av = kvm_getargv(kd, &kp[i], 0);
			if (av == NULL)
				printf(" -");
			else
				for (; *av != NULL; av++)
					printf(" %s", *av);
		}
		printf("\n");
	}
	kvm_close(kd);
	return 0;
}
