//! The shim's own memory: hand freed heap pages back to the kernel.

/// Returns the free pages of the heap to the kernel (glibc `malloc_trim`): the shim
/// calls it after the allocation-heavy steps (Create, Exec, Start), so what they freed
/// does not stay resident, and private, in every long-lived shim.
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; the shim is
    // single-threaded and no pointer is passed.
    unsafe {
        libc::malloc_trim(0);
    }
}
