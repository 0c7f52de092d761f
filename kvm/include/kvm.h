/*
 * kvm.h: kernel memory, live or from a crash dump: the kvm(3) interface.
 *
 * Part of kvm, a Rust implementation of the BSD kvm(3) interface; this
 * header declares what libkvm.so / libkvm.a (built with `cargo build
 * --release -p kvm --features capi`) export. It follows OpenBSD's <kvm.h>
 * (the interface kvm(3) describes) and adds FreeBSD's kvm_open2,
 * kvm_read2, kvm_nlist2 and kvm_walk_pages. Link with `pkg-config --cflags
 * --libs kvm`. The shared library's SONAME is libkvm.so.0 (the version of
 * this C interface, not of the crate): install it under that name, with
 * libkvm.so a link to it for the linker.
 *
 * What works where (kvm 0.1):
 *
 *   call                 Linux dump   Linux live   FreeBSD dump   OpenBSD kcore
 *   kvm_open(files)/2    yes          yes (1)      yes (-N)       yes (-N)
 *   kvm_read(2)          yes          yes          yes            yes
 *   kvm_write            no (2)       yes (3)      no (2)         no (2)
 *   kvm_nlist(2)         yes          yes          yes            yes
 *   kvm_getprocs         yes          yes          yes (4)        no (5)
 *   kvm_getargv/envv     yes          yes          no (6)         no (5)
 *   kvm_getfiles         yes          yes          no (10)        no (5)
 *   kvm_getloadavg       yes          yes          yes            yes
 *   kvm_walk_pages       yes (7)      yes          yes            yes
 *   kvm_dump_mkheader,
 *   kvm_dump_wrtheader   amd64 (9)    amd64 (9)    amd64, i386 (9) amd64, i386
 *   kvm_dump_inval       no (2)       no (8)       no (2)         no (2)
 *
 *   Linux: x86-64 and arm64; symbols from the kernel's own kallsyms, so
 *   `execfile` may be NULL. FreeBSD and OpenBSD dumps need the kernel as
 *   `execfile` (their symbols are not in the dump).
 *   (1) corefile NULL: the running kernel through /proc/kcore ($KVM_KCORE
 *       names another file); needs root and a kernel without lockdown.
 *   (2) dump files are opened read-only: "read-only".
 *   (3) with O_RDWR, through a running VM's RAM file, "qemu:PID" or
 *       /dev/mem (which CONFIG_STRICT_DEVMEM limits to non-RAM); the
 *       running kernel's /proc/kcore cannot be written.
 *   (4) pid, ppid, comm, threads; the other fields are marked unknown
 *       (p_kvm_valid).
 *   (5) OpenBSD's process structures need CTF type data, not read yet.
 *   (6) FreeBSD's argv/env live in user pages, not walked yet.
 *   (7) every page the kernel's page tables map, or the dump's own map.
 *   (8) refused on a live kernel, as OpenBSD refuses it.
 *   (9) where the kernel's page-table root is known (a dump that carries
 *       a map of its own instead, such as a FreeBSD minidump, is refused).
 *   (10) FreeBSD's file tables are not walked yet.
 *
 * Memory the library returns (kvm_getprocs, kvm_getargv, kvm_getenvv,
 * kvm_getfiles) belongs to the handle: valid until the next call of the same function
 * on the handle, or kvm_close; kvm_geterr's buffer until kvm_close. A
 * handle may be used by one thread at a time; a kvm_walk_pages callback
 * and a kvm_open2 resolver may call the library on the same handle.
 */
#ifndef KVM_KVM_H
#define KVM_KVM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "nlist.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version (this header's): major * 10000 + minor * 100. */
#define	KVM_VERSION	100

/* The size of `errbuf` for kvm_openfiles and kvm_open2 (POSIX's
   _POSIX2_LINE_MAX; messages are cut to fit, NUL-terminated). */
#ifndef _POSIX2_LINE_MAX
#define	_POSIX2_LINE_MAX	2048
#endif

/* kvm_openfiles/kvm_open2 `flags`: O_RDONLY or O_RDWR, or'ed with: */
#define	KVM_NO_FILES	0x80000000	/* open nothing: no memory access */

/* An open kernel. */
typedef struct __kvm kvm_t;

/*
 * Opening and closing.
 *
 * execfile: the kernel's symbols (a vmlinux or System.map on Linux; the
 *   kernel ELF on the BSDs), NULL for none (Linux dumps need none).
 * corefile: a crash dump in any supported format (found by content: ELF
 *   vmcore, kdump, LiME, FreeBSD full or minidump or dump-device image,
 *   OpenBSD kcore, whole-file .xz, a raw or LiME image found by the
 *   kernel's VMCOREINFO in it); a live door: a running VM's RAM file,
 *   "qemu:PID" (its memory through /proc/PID/mem), /dev/mem; NULL for the
 *   live kernel; "/dev/null" for the live system without memory access
 *   (as with KVM_NO_FILES: every call that needs memory fails, and
 *   kvm_getprocs, kvm_getargv and kvm_getenvv list the running system's
 *   processes as the OS lists them, from Linux's /proc: pid, ppid, pgid,
 *   sid, ids, state, comm, tty, start, RSS, threads; as BSD ps uses such
 *   a handle). Other character devices are refused.
 * swapfile: ignored, as on every BSD today.
 * flags: O_RDONLY, or O_RDWR to allow kvm_write where the source takes it.
 *
 * flags: O_RDONLY or O_RDWR, with KVM_NO_FILES; anything else is "bad
 * flags arg".
 *
 * kvm_openfiles and kvm_open2 return NULL on failure with the message in
 * errbuf (_POSIX2_LINE_MAX bytes; with errbuf NULL nothing is written).
 * kvm_open returns NULL on failure and, when errstr is not NULL, prints
 * "errstr: message" on stderr; later errors go to kvm_geterr only (BSD
 * prints its hard errors there too).
 */
kvm_t	*kvm_open(const char *execfile, const char *corefile,
	    const char *swapfile, int flags, const char *errstr);
kvm_t	*kvm_openfiles(const char *execfile, const char *corefile,
	    const char *swapfile, int flags, char *errbuf);
/* Returns 0; -1 with errno EINVAL for a NULL handle. */
int	 kvm_close(kvm_t *kd);

/*
 * The last error's message, "" if none yet or if kd is NULL. Errors are
 * sticky: a later success does not clear them. The pointer is the
 * handle's one message buffer, valid until kvm_close (a later error
 * rewrites its text).
 */
char	*kvm_geterr(kvm_t *kd);

/*
 * Kernel virtual memory. Both return the bytes transferred: fewer than
 * asked when the range runs into an unmapped or missing page (kvm_geterr
 * then says where it stopped; BSD's return -1 there), -1 (and a message)
 * when not even the first byte can be. nbytes 0 returns 0 on a
 * handle that could transfer; kvm_write refuses even that on a read-only
 * handle. Writes to dump files are refused ("read-only").
 */
ssize_t	 kvm_read(kvm_t *kd, unsigned long addr, void *buf, size_t nbytes);
ssize_t	 kvm_write(kvm_t *kd, unsigned long addr, const void *buf,
	    size_t nbytes);

/*
 * Symbols. The list ends at an entry whose n_name is NULL or "". A name
 * not found as given is looked up again without one leading '_' (BSD
 * callers write "_msgbufp"). Found: n_value is the runtime address
 * (KASLR applied) and n_type N_TEXT/N_DATA/N_BSS/N_ABS | N_EXT (global)
 * from the symbol's type letter. Not found: n_type and n_value 0. Returns
 * the number of names not found, -1 on error (no symbols to look in).
 */
int	 kvm_nlist(kvm_t *kd, struct nlist *nl);

/*
 * Load averages: fills up to nelem (at most 3) samples of the 1, 5 and 15
 * minute averages; returns how many, -1 on error.
 */
int	 kvm_getloadavg(kvm_t *kd, double loadavg[], int nelem);

/*
 * Processes.
 *
 * kvm_getprocs(kd, op, arg, elemsize, &cnt): the processes `op` selects,
 * as an array of *cnt entries owned by the handle; NULL on error.
 * elemsize must be sizeof(struct kinfo_proc) (checked: a program built
 * against another layout is refused, not misread). As on OpenBSD, every
 * op leaves kernel threads out but KERN_PROC_KTHREAD, which is every
 * process, kernel threads included. With KERN_PROC_SHOW_THREADS or'ed
 * into op, each process's entry (p_tid -1) is followed by one entry per
 * thread (p_tid its thread id, p_comm its name, p_stat its state).
 */
#define	KERN_PROC_ALL		0	/* everything */
#define	KERN_PROC_PID		1	/* by process id */
#define	KERN_PROC_PGRP		2	/* by process group id */
#define	KERN_PROC_SESSION	3	/* by session of pid */
#define	KERN_PROC_TTY		4	/* by controlling tty (p_tdev;
					   KI_NODEV: none) */
#define	KERN_PROC_UID		5	/* by effective uid */
#define	KERN_PROC_RUID		6	/* by real uid */
#define	KERN_PROC_KTHREAD	7	/* all, kernel threads too */
#define	KERN_PROC_SHOW_THREADS	0x40000000	/* also list threads */

#define	KI_MAXCOMLEN	24	/* p_comm's size */
#define	KI_NODEV	0xffffffffU	/* p_tdev of no terminal (NODEV) */

/* p_stat values (OpenBSD's). */
#define	SIDL	1		/* being created */
#define	SRUN	2		/* runnable (Linux R) */
#define	SSLEEP	3		/* sleeping (Linux S, D, I, P) */
#define	SSTOP	4		/* stopped (Linux T, t) */
#define	SZOMB	5		/* zombie (Linux Z) */
#define	SDEAD	6		/* dead (Linux X) */
#define	SONPROC	7		/* running on a CPU right now */

/* p_flag bits (OpenBSD's; set for kernel threads). */
#define	P_SYSTEM	0x00000200
#define	PS_SYSTEM	0x00010000

/* p_kvm_valid bits: which fields the OS layer could read. A field whose
   bit is clear holds -1 (or KI_NODEV, 0 for strings) and means
   "unavailable", never a guess. */
#define	KVM_KI_PPID	0x0001	/* p_ppid */
#define	KVM_KI_PGID	0x0002	/* p__pgid */
#define	KVM_KI_SID	0x0004	/* p_sid */
#define	KVM_KI_UID	0x0008	/* p_uid, p_ruid */
#define	KVM_KI_GID	0x0010	/* p_gid, p_rgid */
#define	KVM_KI_STAT	0x0020	/* p_stat, p_kvm_state */
#define	KVM_KI_TDEV	0x0040	/* p_tdev */
#define	KVM_KI_USTART	0x0080	/* p_ustart_sec, p_ustart_usec */
#define	KVM_KI_RSS	0x0100	/* p_vm_rssize */
#define	KVM_KI_FLAG	0x0200	/* p_flag (kernel thread or not) */
#define	KVM_KI_CPUID	0x0400	/* p_cpuid */

/*
 * One process or thread. Field names are OpenBSD's for what they mean
 * there; the layout is this library's own (every field fixed-size, no
 * padding left implicit), so build against this header, not a BSD one.
 * Fields named p_kvm_* are this library's additions.
 */
struct kinfo_proc {
	uint64_t p_paddr;	/* address of the kernel's process structure
				   (Linux task_struct, FreeBSD struct proc) */
	uint64_t p_cpuid;	/* CPU the thread last ran on */
	uint64_t p_ustart_sec;	/* start time: seconds since boot (a dump
				   does not hold the boot time) */
	uint32_t p_ustart_usec;	/* and microseconds */
	int32_t	 p_pid;		/* process id */
	int32_t	 p_ppid;	/* parent's process id */
	int32_t	 p_sid;		/* session id */
	int32_t	 p__pgid;	/* process group id */
	int32_t	 p_tid;		/* thread id; -1 in a process's entry */
	uint32_t p_uid;		/* effective user id */
	uint32_t p_ruid;	/* real user id */
	uint32_t p_gid;		/* effective group id */
	uint32_t p_rgid;	/* real group id */
	uint32_t p_tdev;	/* controlling tty (Linux tty_nr); KI_NODEV */
	int32_t	 p_vm_rssize;	/* resident pages */
	int32_t	 p_flag;	/* P_SYSTEM | PS_SYSTEM for kernel threads */
	uint32_t p_kvm_valid;	/* KVM_KI_* bits: which fields are known */
	int32_t	 p_kvm_nthreads; /* threads of the process */
	int8_t	 p_stat;	/* SRUN, SSLEEP, ... */
	char	 p_kvm_state;	/* the state letter as the OS prints it
				   (Linux /proc/PID/stat: R S D T t X Z P I) */
	char	 p_comm[KI_MAXCOMLEN];	/* command name, NUL-terminated */
	char	 p_kvm_pad[10];	/* zero */
};

struct kinfo_proc *kvm_getprocs(kvm_t *kd, int op, int arg, size_t elemsize,
	    int *cnt);

/*
 * The arguments and environment of a process (kp from kvm_getprocs on
 * this handle), as a NULL-terminated array of strings owned by the handle
 * (argv and env each have their own, valid until the next call of the same
 * function). nchr bounds the bytes returned, NULs included (0: no bound;
 * FreeBSD's count); the string that crosses it is cut. NULL for a kernel
 * thread, and on error (a page of them not in the dump: the message says
 * which). The strings are the bytes the process holds, as BSD returns
 * them (not necessarily UTF-8).
 */
char	**kvm_getargv(kvm_t *kd, const struct kinfo_proc *kp, int nchr);
char	**kvm_getenvv(kvm_t *kd, const struct kinfo_proc *kp, int nchr);

/*
 * Open files (OpenBSD's kvm_getfiles(3)).
 *
 * kvm_getfiles(kd, op, arg, elemsize, &cnt): the open descriptors of the
 * processes op selects, as an array of *cnt entries owned by the handle
 * (valid until the next kvm_getfiles); NULL on error. elemsize must be
 * sizeof(struct kinfo_file). Ops: KERN_FILE_BYPID (arg a pid, -1 for
 * every process), KERN_FILE_BYUID (arg an effective uid),
 * KERN_FILE_BYFILE (every open file; arg unused). Kernel threads and
 * zombies have none.
 */
#define	KERN_FILE_BYFILE	1
#define	KERN_FILE_BYPID		2
#define	KERN_FILE_BYUID		3

/* f_type values (OpenBSD's). */
#define	DTYPE_VNODE	1	/* a file, directory, device, FIFO, ... */
#define	DTYPE_SOCKET	2	/* a socket */
#define	DTYPE_PIPE	3	/* a pipe (Linux pipe:[ino]) */

/* fd_ofileflags bits (OpenBSD's). */
#define	UF_EXCLOSE	0x01	/* close on exec */

#define	KVM_KF_PATHLEN	1024	/* f_kvm_path's size */

/*
 * One open descriptor. Field names are OpenBSD's for what they mean
 * there; the layout is this library's own. f_kvm_* are its additions.
 */
struct kinfo_file {
	uint64_t f_fileaddr;	/* address of the kernel's struct file */
	uint64_t f_offset;	/* file position */
	uint64_t va_fileid;	/* inode number */
	uint32_t f_flag;	/* open flags as the OS keeps them (Linux O_*,
				   as /proc/PID/fdinfo's flags; close-on-exec
				   is in fd_ofileflags) */
	uint32_t f_type;	/* DTYPE_VNODE, DTYPE_SOCKET, DTYPE_PIPE */
	uint32_t va_mode;	/* the inode's type and permissions (S_IFMT) */
	int32_t	 p_pid;		/* process id */
	int32_t	 fd_fd;		/* descriptor */
	uint32_t fd_ofileflags;	/* UF_EXCLOSE when close-on-exec */
	uint32_t p_uid;		/* the process's effective uid (-1: unknown) */
	uint32_t p_gid;		/* its effective gid (-1: unknown) */
	uint32_t f_kvm_pathlen;	/* the path's whole length (f_kvm_path may
				   hold less: cut, NUL-terminated) */
	char	 p_comm[KI_MAXCOMLEN];	/* the process's command name */
	char	 f_kvm_pad[4];	/* zero */
	char	 f_kvm_path[KVM_KF_PATHLEN];	/* what /proc/PID/fd/N links to:
				   /tmp/x, pipe:[123], socket:[456],
				   "/tmp/y (deleted)" */
};

struct kinfo_file *kvm_getfiles(kvm_t *kd, int op, int arg, size_t elemsize,
	    int *cnt);

/*
 * OpenBSD's savecore calls (kvm_dump(3)). kvm_dump_mkheader makes the
 * kcore headers from the open kernel (amd64 or i386: its page-table root
 * and physical ranges; dump_off is not used: the header is made, not read
 * from a dump device) and returns their size in bytes, -1 on error.
 * kvm_dump_wrtheader writes them to fp (at its current position, no
 * seek) for dumpsize bytes of memory to follow: 0, or -1 on error.
 * kvm_dump_inval clears the dump magic of a dump opened O_RDWR on a
 * source that takes writes: 0, or -1 (dump files are read-only).
 */
int	 kvm_dump_mkheader(kvm_t *kd, off_t dump_off);
int	 kvm_dump_wrtheader(kvm_t *kd, FILE *fp, int dumpsize);
int	 kvm_dump_inval(kvm_t *kd);

/* FreeBSD's additions. */

typedef uint64_t kvaddr_t;	/* a kernel virtual address */
typedef uint64_t kpaddr_t;	/* a physical address */

/*
 * kvm_open2: kvm_openfiles without the swap file. resolver, when not
 * NULL, is asked for names kvm_nlist/kvm_nlist2 do not find in the
 * kernel's tables (return 0 and set *addr when found).
 */
kvm_t	*kvm_open2(const char *execfile, const char *corefile, int flags,
	    char *errbuf, int (*resolver)(const char *, kvaddr_t *));

/* kvm_read with a 64-bit address. */
ssize_t	 kvm_read2(kvm_t *kd, kvaddr_t addr, void *buf, size_t nbytes);

/* kvm_nlist with 64-bit values; the same rules. */
struct kvm_nlist {
	const char	*n_name;
	unsigned char	 n_type;
	kvaddr_t	 n_value;
};
int	 kvm_nlist2(kvm_t *kd, struct kvm_nlist *nl);

/*
 * kvm_walk_pages: calls cb for every page the kernel's page tables (or
 * the dump's own map) map, in address order, until cb returns 0. Returns
 * 1 when every page was visited, 0 when cb stopped it or on error
 * (kvm_geterr says which).
 */
#define	LIBKVM_WALK_PAGES_VERSION	2
#ifndef VM_PROT_READ
typedef unsigned char vm_prot_t;
#define	VM_PROT_NONE	((vm_prot_t)0x00)
#define	VM_PROT_READ	((vm_prot_t)0x01)
#define	VM_PROT_WRITE	((vm_prot_t)0x02)
#define	VM_PROT_EXECUTE	((vm_prot_t)0x04)
#endif
struct kvm_page {
	unsigned int	kp_version;	/* LIBKVM_WALK_PAGES_VERSION */
	kpaddr_t	kp_paddr;	/* physical address */
	kvaddr_t	kp_kmap_vaddr;	/* kernel virtual address */
	kvaddr_t	kp_dmap_vaddr;	/* direct-map address; 0: not given */
	vm_prot_t	kp_prot;	/* VM_PROT_* */
	off_t		kp_offset;	/* offset in the core file; always -1:
					   not given */
	size_t		kp_len;		/* page size of the mapping */
};
typedef int kvm_walk_pages_cb_t(struct kvm_page *, void *);
int	 kvm_walk_pages(kvm_t *kd, kvm_walk_pages_cb_t *cb, void *closure);

#ifdef __cplusplus
}
#endif

#endif /* KVM_KVM_H */
