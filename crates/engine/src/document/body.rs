//! The bytes of a stored document.

#[cfg(feature = "body-heap")]
use std::ptr::NonNull;
#[cfg(feature = "body-heap")]
use std::sync::LazyLock;

/// A compressed body, in a heap of its own when the `body-heap` feature is on.
///
/// Bodies are the one allocation per document that lives as long as the
/// document; the buffers of the request that made it (its text, the JSON, the
/// index's copy) are freed at once. Allocated side by side, each freed buffer
/// left a hole in a page a body kept, and pages whose thread had exited were
/// not reused; a mimalloc heap of their own packs bodies together (see
/// docs/decisions.md). Without the feature a body is a boxed slice.
#[cfg(feature = "body-heap")]
pub(crate) struct Body {
    ptr: NonNull<u8>,
    len: usize,
}

#[cfg(not(feature = "body-heap"))]
#[derive(Clone)]
pub(crate) struct Body(Box<[u8]>);

#[cfg(not(feature = "body-heap"))]
impl Body {
    pub(super) fn copy_of(bytes: &[u8]) -> Body {
        Body(bytes.into())
    }
}

#[cfg(not(feature = "body-heap"))]
impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

// SAFETY: a body is an immutable byte buffer, and mimalloc allocates in and
// frees from a heap on any thread.
#[cfg(feature = "body-heap")]
unsafe impl Send for Body {}
#[cfg(feature = "body-heap")]
unsafe impl Sync for Body {}

/// The heap holding every body (a pointer, to be shared between threads).
#[cfg(feature = "body-heap")]
struct BodyHeap(NonNull<libmimalloc_sys::mi_heap_t>);

// SAFETY: mimalloc's first-class heaps allocate from any thread (mimalloc 3).
#[cfg(feature = "body-heap")]
unsafe impl Send for BodyHeap {}
#[cfg(feature = "body-heap")]
unsafe impl Sync for BodyHeap {}

#[cfg(feature = "body-heap")]
static BODY_HEAP: LazyLock<Option<BodyHeap>> = LazyLock::new(|| {
    // SAFETY: creating a heap has no preconditions; it lives for the process.
    NonNull::new(unsafe { libmimalloc_sys::mi_heap_new() }).map(BodyHeap)
});

#[cfg(feature = "body-heap")]
impl Body {
    pub(super) fn copy_of(bytes: &[u8]) -> Body {
        let len = bytes.len();
        // SAFETY: the heap is live; a null return is handled below.
        let raw = match &*BODY_HEAP {
            Some(heap) => unsafe { libmimalloc_sys::mi_heap_malloc(heap.0.as_ptr(), len.max(1)) },
            None => unsafe { libmimalloc_sys::mi_malloc(len.max(1)) },
        };
        let Some(ptr) = NonNull::new(raw.cast::<u8>()) else {
            let layout = std::alloc::Layout::from_size_align(len.max(1), 1);
            std::alloc::handle_alloc_error(layout.unwrap_or(std::alloc::Layout::new::<u8>()))
        };
        // SAFETY: `ptr` is a fresh block of at least `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.as_ptr(), len) };
        Body { ptr, len }
    }
}

#[cfg(feature = "body-heap")]
impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` holds `len` initialised bytes until the body is dropped.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

#[cfg(feature = "body-heap")]
impl Clone for Body {
    fn clone(&self) -> Body {
        Body::copy_of(self)
    }
}

#[cfg(feature = "body-heap")]
impl Drop for Body {
    fn drop(&mut self) {
        // SAFETY: the block came from mimalloc and is freed once.
        unsafe { libmimalloc_sys::mi_free(self.ptr.as_ptr().cast()) }
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Body({} bytes)", self.len())
    }
}
