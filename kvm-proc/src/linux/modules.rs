//! Symbols of loaded modules, as the `[module]` lines of `/proc/kallsyms`
//! list them, from each module's own symbol table in memory.

use super::layout::need;
use super::walker::{at, Linux};
use crate::{Kernel, Module, ModuleSymbol};
use alloc::string::String;
use alloc::vec::Vec;
use kvm_core::{Error, Result, VirtAddr, VirtReadExt};

impl<K: Kernel + ?Sized> Linux<'_, K> {
    /// The loaded modules (formed ones: `/proc/modules` leaves the others
    /// out) as `(struct module address, name)`, in list order. The list
    /// head is the `modules` symbol, or on arm64 kernels without data
    /// symbols the list `find_module_all` walks.
    pub(super) fn module_list(&self) -> Result<Vec<(u64, String)>> {
        let k = self.k;
        let head = match k.symbol("modules") {
            Some(a) => a,
            None => self.global_from_code("find_module_all")?,
        };
        if self.ptr(self.ptr(head, 0)?, 8)? != head {
            return Err(Error::Malformed("the module list head does not close"));
        }
        let list = need(k, "module.list")?;
        let name_off = need(k, "module.name")?;
        let name_len = k.size_of("module.name").unwrap_or(56).min(256);
        let state_off = need(k, "module.state")?;
        let unformed = k
            .enum_value("MODULE_STATE_UNFORMED")
            .and_then(|v| u32::try_from(v).ok());
        let mut out = Vec::new();
        for m in self.list(head, list)? {
            if unformed.is_some() && Some(self.u32_at(m, state_off)?) == unformed {
                continue;
            }
            let mut nb = alloc::vec![0u8; name_len as usize];
            self.mem().read_virt_exact(at(m, name_off)?, &mut nb)?;
            let end = nb.iter().position(|&c| c == 0).unwrap_or(nb.len());
            out.push((m, String::from_utf8_lossy(&nb[..end]).into_owned()));
        }
        Ok(out)
    }

    /// The loaded modules as `/proc/modules` lists them: name, size (the
    /// core and init layouts' sizes; 6.4+: every `mem[]` region's) and
    /// the core (text) base address.
    pub fn modules(&self) -> Result<Vec<Module>> {
        let k = self.k;
        // Where each of a module's memory regions is described (the text
        // region first), and where in such a description its base and
        // size are: the core and init layouts before 6.4 (and the data
        // layout on CONFIG_ARCH_WANTS_MODULES_DATA_IN_VMALLOC kernels),
        // else `struct module_memory mem[MOD_MEM_NUM_TYPES]`.
        let (regions, text, base, size) = match k.offset_of("module.core_layout") {
            Some(core) => {
                let init = need(k, "module.init_layout")?;
                let data = k.offset_of("module.data_layout");
                let regions: Vec<u64> = [Some(core), Some(init), data]
                    .into_iter()
                    .flatten()
                    .collect();
                (
                    regions,
                    core,
                    need(k, "module_layout.base")?,
                    need(k, "module_layout.size")?,
                )
            }
            None => {
                let mem = need(k, "module.mem")?;
                let one = k
                    .size_of("module_memory")
                    .ok_or(Error::Unsupported("module_memory"))?
                    .max(1);
                let n = (k.size_of("module.mem").unwrap_or(0) / one).min(16);
                let regions = (0..n).map(|i| mem + i * one).collect();
                (
                    regions,
                    mem,
                    need(k, "module_memory.base")?,
                    need(k, "module_memory.size")?,
                )
            }
        };
        let mut out = Vec::new();
        for (m, name) in self.module_list()? {
            let mut total = 0u64;
            for &r in &regions {
                total += u64::from(self.u32_at(at(m, r)?.0, size)?);
            }
            let addr = self.ptr(at(m, text)?.0, base)?;
            out.push(Module {
                name,
                size: total,
                addr,
            });
        }
        Ok(out)
    }

    /// The symbols of loaded modules (the `[module]` lines of
    /// `/proc/kallsyms`), from each module's `kallsyms` symbol table in
    /// memory.
    pub fn module_symbols(&self) -> Result<Vec<ModuleSymbol>> {
        let k = self.k;
        let kallsyms_ptr = k.offset_of("module.kallsyms");
        let core = need(k, "module.core_kallsyms")?;
        let (symtab, num, strtab, typetab) = (
            need(k, "mod_kallsyms.symtab")?,
            need(k, "mod_kallsyms.num_symtab")?,
            need(k, "mod_kallsyms.strtab")?,
            need(k, "mod_kallsyms.typetab")?,
        );
        /// `Elf64_Sym`: st_name u32, st_info u8, st_other u8, st_shndx u16,
        /// st_value u64, st_size u64 (the ELF ABI, not a kernel layout).
        const SYM: u64 = 24;
        const MAX_MOD_SYMS: u32 = 1 << 20;
        let mut out = Vec::new();
        for (m, module) in self.module_list()? {
            let ks = match kallsyms_ptr {
                Some(o) => self.ptr(m, o)?,
                None => at(m, core)?.0,
            };
            let n = self.u32_at(ks, num)?;
            if n > MAX_MOD_SYMS {
                return Err(Error::Malformed("a module claims too many symbols"));
            }
            let (tab, strs, types) = (
                self.ptr(ks, symtab)?,
                self.ptr(ks, strtab)?,
                self.ptr(ks, typetab)?,
            );
            let mut syms = alloc::vec![0u8; (u64::from(n) * SYM) as usize];
            self.mem().read_virt_exact(VirtAddr(tab), &mut syms)?;
            let mut kinds = alloc::vec![0u8; n as usize];
            self.mem().read_virt_exact(VirtAddr(types), &mut kinds)?;
            for (i, e) in syms.chunks_exact(SYM as usize).enumerate() {
                let st_name = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
                let mut v = [0u8; 8];
                v.copy_from_slice(&e[8..16]);
                let mut name = [0u8; 512];
                let got = self
                    .mem()
                    .read_virt(at(strs, u64::from(st_name))?, &mut name)
                    .unwrap_or(0);
                let end = name[..got].iter().position(|&c| c == 0).unwrap_or(got);
                if end == 0 {
                    continue; // /proc/kallsyms skips nameless entries (the null symbol)
                }
                out.push(ModuleSymbol {
                    name: String::from_utf8_lossy(&name[..end]).into_owned(),
                    addr: u64::from_le_bytes(v),
                    kind: char::from(kinds[i]),
                    module: module.clone(),
                });
            }
        }
        Ok(out)
    }
}
