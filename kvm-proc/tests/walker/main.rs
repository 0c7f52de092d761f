//! The Linux process walker over a fake kernel (`fake`): real x86-64 page
//! tables, made-up structure layouts, hostile lists and pointers.

mod args;
mod fake;
mod files_maps;
mod holes;
mod hostile;
mod layout;
mod normal;
mod zombie;
