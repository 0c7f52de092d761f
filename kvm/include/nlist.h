/*
 * nlist.h: the symbol list of kvm_nlist(3), as BSD's <nlist.h> declares it.
 *
 * Part of kvm, a Rust implementation of the BSD kvm(3) interface
 * (libkvm.so / libkvm.a, built with `cargo build --release -p kvm
 * --features capi`). Installed as <kvm/nlist.h>; the pkg-config
 * file puts that directory on the include path, so that programs written
 * against BSD's `#include <nlist.h>` build unchanged, while another
 * <nlist.h> of the system (libelf's, in /usr/include) stays where it is.
 * Including both in one translation unit is refused below: their
 * `struct nlist` differ.
 */
#ifndef KVM_NLIST_H
#define KVM_NLIST_H

#if defined(_NLIST_H) || defined(_NLIST_H_)
#error "another <nlist.h> (libelf's?) was included before kvm's: include only one; kvm's is <kvm/nlist.h>"
#endif
/* The guards of BSD's and of libelf's <nlist.h>: one included after this
   one adds nothing (its struct nlist would clash with this one). */
#define _NLIST_H_ 1
#define _NLIST_H 1

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One symbol to look up. The caller sets n_name (a list ends at a NULL or
 * empty name); kvm_nlist sets n_type and n_value, and leaves both 0 for a
 * name it does not find. n_other and n_desc are not used and left as the
 * caller set them.
 */
struct nlist {
	char		*n_name;	/* symbol name */
	unsigned char	 n_type;	/* N_TEXT, N_DATA, ... | N_EXT; 0: not found */
	char		 n_other;	/* unused */
	short		 n_desc;	/* unused */
	unsigned long	 n_value;	/* address (kernel virtual) */
};

/* n_type values (a.out's, which BSD's kvm_nlist reports). */
#define	N_UNDF	0x00		/* undefined: not found */
#define	N_ABS	0x02		/* absolute (kallsyms `A`) */
#define	N_TEXT	0x04		/* text (kallsyms `T`, `W`) */
#define	N_DATA	0x06		/* data (kallsyms `D`, `R`, `V`; and symbols
				   whose table gives no type) */
#define	N_BSS	0x08		/* bss (kallsyms `B`) */
#define	N_EXT	0x01		/* external (global: an upper-case kallsyms
				   type letter), or'ed into the above */
#define	N_TYPE	0x1e		/* mask for the type bits */

#ifdef __cplusplus
}
#endif

#endif /* KVM_NLIST_H */
