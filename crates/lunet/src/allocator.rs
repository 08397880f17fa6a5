//! The process's global allocator: mimalloc, asked the way Rust's own `System`
//! allocator asks the C library's `malloc`.
//!
//! The `mimalloc` crate's `GlobalAlloc` passes every request to mimalloc's aligned
//! entry points (`mi_malloc_aligned(size, align)`, `mi_realloc_aligned`), which
//! check the alignment and look for a suitably aligned free block before they
//! allocate. Almost every Rust and Luau allocation asks for an alignment that
//! `mi_malloc` gives anyway: mimalloc (with its `MI_MAX_ALIGN_SIZE` of 16) rounds
//! small blocks to whole 16-byte units and aligns them to 16, all but 8-byte ones,
//! which it aligns to 8; so an alignment of at most 16 that is also at most the
//! size (the rule `std`'s `System` uses for `malloc`) is met. Those go to
//! `mi_malloc`, `mi_zalloc` and `mi_realloc`; the rest (a 64-byte aligned tokio task
//! cell, say) to the `mimalloc` crate as before. Frees are `mi_free` either way.
//! Callgrind, per request against the crate's calls: HTTP/1 hello 0.985x the
//! instructions, a table with headers 0.984x, 1 KiB echo 0.987x, the JSON API
//! 0.996x, WebSocket echo 0.997x, HTTP/2 hello unchanged.
//!
//! Does not own mimalloc's build or settings (the workspace's `Cargo.toml`: v2, no
//! transparent huge pages). The alignment rule above holds for that release build;
//! mimalloc's `debug` features turn on its guarded blocks, which `mi_malloc` may place
//! against a guard page without that alignment (its aligned entry points do not), so
//! they must not be enabled with this allocator.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// mimalloc's `MI_MAX_ALIGN_SIZE` on the 64-bit targets Lunet builds for.
const MALLOC_ALIGN: usize = 16;

/// Whether `mi_malloc(size)` returns memory aligned to `align`.
#[inline]
fn malloc_aligns(align: usize, size: usize) -> bool {
    align <= MALLOC_ALIGN && align <= size
}

/// See the module documentation.
pub(crate) struct Allocator;

// SAFETY: every request goes to mimalloc, whose blocks meet the layout's size and
// alignment (`malloc_aligns`, or the aligned entry points), and every block is
// freed or resized by mimalloc (`mi_free` and `mi_realloc` take a block from any
// of its entry points).
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if malloc_aligns(layout.align(), layout.size()) {
            // SAFETY: mimalloc takes any size.
            unsafe { mi::mi_malloc(layout.size()).cast() }
        } else {
            // SAFETY: the caller's contract.
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if malloc_aligns(layout.align(), layout.size()) {
            // SAFETY: mimalloc takes any size.
            unsafe { mi::mi_zalloc(layout.size()).cast() }
        } else {
            // SAFETY: the caller's contract.
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract: `ptr` came from this allocator.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if malloc_aligns(layout.align(), new_size) {
            // SAFETY: the caller's contract: `ptr` is a live block of mimalloc's.
            unsafe { mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast() }
        } else {
            // SAFETY: the caller's contract.
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of every small size and alignment, allocated, zeroed, grown and
    /// shrunk, meet their alignment and keep their contents.
    #[test]
    fn blocks_meet_their_layout_through_every_entry_point() {
        let a = Allocator;
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in [1, 3, 8, 12, 16, 24, 48, 100, 1024, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; every block is freed with its layout.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc {size} aligned {align}");
                    p.write_bytes(0xab, size);
                    let grown = a.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "grow {size} aligned {align}");
                    assert!((0..size).all(|i| *grown.add(i) == 0xab));
                    let bigger = Layout::from_size_align(size * 3, align).unwrap();
                    let shrunk = a.realloc(grown, bigger, size.div_ceil(2));
                    assert_eq!(shrunk as usize % align, 0, "shrink {size} aligned {align}");
                    assert!((0..size.div_ceil(2)).all(|i| *shrunk.add(i) == 0xab));
                    a.dealloc(
                        shrunk,
                        Layout::from_size_align(size.div_ceil(2), align).unwrap(),
                    );
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed {size} aligned {align}");
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
