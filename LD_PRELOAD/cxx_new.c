/*
 * cxx_new.c — C++'s replaceable operator new and operator delete, in C.
 *
 * Included by override.c after the API layer (alloc/malloc.c), so each
 * operator inlines the same fast path as malloc or free: a C++ program that
 * links or preloads libgomalloc reaches gomalloc in one call, without
 * libstdc++'s operators, which would call malloc in turn.  All twenty
 * forms are defined: plain, array, nothrow, sized, aligned and sized+aligned.
 *
 * The functions are C functions under the Itanium C++ ABI's names for the
 * operators (size_t is unsigned long, "m", on every target gomalloc builds
 * for), so the library needs no C++ compiler's runtime: a C program that
 * links gomalloc gains no libstdc++ dependency (readelf -d shows none).  What
 * the operators need from the C++ runtime they reach through weak
 * references, which add no DT_NEEDED entry and are null where no C++
 * runtime is loaded (then no new-handler can have been set either):
 *   std::get_new_handler()   the handler to call when memory runs out;
 *   std::__throw_bad_alloc() throws std::bad_alloc (libstdc++'s helper,
 *                            the one its own operator new uses).
 * A C++ program always has both (a statically linked one has
 * get_new_handler whenever it calls set_new_handler).  Where
 * __throw_bad_alloc is missing all the same (a static link that pulled in
 * none of libstdc++'s exception helpers), an operator new that must throw
 * prints a line and aborts instead.
 *
 * operator new follows the standard: on failure it calls the new-handler
 * and tries again while one is installed, then throws std::bad_alloc; the
 * nothrow forms return NULL instead of throwing, and a new-handler that
 * throws in a nothrow call makes it return NULL too (the catch is the only
 * C++ in the library: cxx_catch.cc).  An alignment that is not a power of
 * two fails as libstdc++'s does.  The exception passes through these C
 * frames, which is why override.c is compiled with -fexceptions.
 *
 * Sized delete hands the size to the sized free (malloc.c): with
 * GOMALLOC_DEBUG=1 a size or alignment that does not match the block is
 * reported ("gomalloc: operator delete(): wrong size for 0x...: 24 given,
 * 20 requested") and the program aborts.
 */

_Static_assert(_Generic((size_t)0, unsigned long: 1, default: 0),
               "the mangled names below spell size_t as unsigned long");

typedef void (*gm_new_handler_fn)(void);
extern gm_new_handler_fn gm_std_get_new_handler(void) __asm__("_ZSt15get_new_handlerv")
    __attribute__((weak));
extern void gm_std_throw_bad_alloc(void) __asm__("_ZSt17__throw_bad_allocv")
    __attribute__((weak, noreturn));
/* cxx_catch.cc: calls handler; false if it threw (the exception is dropped). */
bool gm_cxx_call_new_handler_nothrow(gm_new_handler_fn handler);

/* A block of size bytes aligned to align (a power of two; 0 = the default
 * 16), or NULL with errno set. */
static inline void *cxx_alloc(size_t size, size_t align) {
    if (align <= MIN_ALIGN)
        return api_malloc(size);
    return alloc_aligned(align, size);
}

/* After a failed attempt: the new-handler loop, then std::bad_alloc (or
 * NULL for the nothrow forms). */
static GM_NOINLINE void *cxx_new_failed(size_t size, size_t align, bool nothrow) {
    bool impossible = align & (align - 1);   /* not a power of two: no handler helps */
    for (;;) {
        gm_new_handler_fn handler = gm_std_get_new_handler ? gm_std_get_new_handler() : NULL;
        if (!handler || impossible)
            break;
        if (!nothrow)
            handler();
        else if (!gm_cxx_call_new_handler_nothrow(handler))
            return NULL;
        void *p = cxx_alloc(size, align);
        if (p)
            return GM_VG_ALLOC(p, size, false);
    }
    if (nothrow)
        return NULL;
    if (gm_std_throw_bad_alloc)
        gm_std_throw_bad_alloc();
    gm_fatal_msg("operator new: out of memory, and no C++ runtime to throw std::bad_alloc");
}

static inline void *cxx_new(size_t size, size_t align, bool nothrow) {
    if (GM_UNLIKELY(align & (align - 1)))
        return cxx_new_failed(size, align, nothrow);
    void *p = cxx_alloc(size, align);
    if (GM_LIKELY(p))
        return GM_VG_ALLOC(p, size, false);
    return cxx_new_failed(size, align, nothrow);
}

static inline void cxx_delete(void *ptr) {
    GM_VG_FREE(ptr);
    if (GM_LIKELY(gm_mcache_free_fast(ptr)))
        return;
    free_slow(ptr, "operator delete()");
}

static inline void cxx_delete_checked(void *ptr, size_t align, size_t size) {
    GM_VG_FREE(ptr);
    free_sized_checked(ptr, align, size, "operator delete()");
}

/* The operators' types as the C++ ABI passes them: std::nothrow_t by
 * reference (a pointer, unused), std::align_val_t as a size_t. */
typedef const void *gm_nothrow_ref;

#define CXX_OP GM_EXPORT
#define MANGLED(name) __asm__(name)

CXX_OP void *gm_op_new(size_t) MANGLED("_Znwm");
CXX_OP void *gm_op_new_array(size_t) MANGLED("_Znam");
CXX_OP void *gm_op_new_nothrow(size_t, gm_nothrow_ref) MANGLED("_ZnwmRKSt9nothrow_t");
CXX_OP void *gm_op_new_array_nothrow(size_t, gm_nothrow_ref) MANGLED("_ZnamRKSt9nothrow_t");
CXX_OP void *gm_op_new_aligned(size_t, size_t) MANGLED("_ZnwmSt11align_val_t");
CXX_OP void *gm_op_new_array_aligned(size_t, size_t) MANGLED("_ZnamSt11align_val_t");
CXX_OP void *gm_op_new_aligned_nothrow(size_t, size_t, gm_nothrow_ref)
    MANGLED("_ZnwmSt11align_val_tRKSt9nothrow_t");
CXX_OP void *gm_op_new_array_aligned_nothrow(size_t, size_t, gm_nothrow_ref)
    MANGLED("_ZnamSt11align_val_tRKSt9nothrow_t");

CXX_OP void gm_op_delete(void *) MANGLED("_ZdlPv");
CXX_OP void gm_op_delete_array(void *) MANGLED("_ZdaPv");
CXX_OP void gm_op_delete_nothrow(void *, gm_nothrow_ref) MANGLED("_ZdlPvRKSt9nothrow_t");
CXX_OP void gm_op_delete_array_nothrow(void *, gm_nothrow_ref) MANGLED("_ZdaPvRKSt9nothrow_t");
CXX_OP void gm_op_delete_sized(void *, size_t) MANGLED("_ZdlPvm");
CXX_OP void gm_op_delete_array_sized(void *, size_t) MANGLED("_ZdaPvm");
CXX_OP void gm_op_delete_aligned(void *, size_t) MANGLED("_ZdlPvSt11align_val_t");
CXX_OP void gm_op_delete_array_aligned(void *, size_t) MANGLED("_ZdaPvSt11align_val_t");
CXX_OP void gm_op_delete_aligned_nothrow(void *, size_t, gm_nothrow_ref)
    MANGLED("_ZdlPvSt11align_val_tRKSt9nothrow_t");
CXX_OP void gm_op_delete_array_aligned_nothrow(void *, size_t, gm_nothrow_ref)
    MANGLED("_ZdaPvSt11align_val_tRKSt9nothrow_t");
CXX_OP void gm_op_delete_sized_aligned(void *, size_t, size_t) MANGLED("_ZdlPvmSt11align_val_t");
CXX_OP void gm_op_delete_array_sized_aligned(void *, size_t, size_t)
    MANGLED("_ZdaPvmSt11align_val_t");

void *gm_op_new(size_t size) { return cxx_new(size, 0, false); }
void *gm_op_new_array(size_t size) { return cxx_new(size, 0, false); }
void *gm_op_new_nothrow(size_t size, gm_nothrow_ref nt) {
    (void)nt;
    return cxx_new(size, 0, true);
}
void *gm_op_new_array_nothrow(size_t size, gm_nothrow_ref nt) {
    (void)nt;
    return cxx_new(size, 0, true);
}
void *gm_op_new_aligned(size_t size, size_t align) { return cxx_new(size, align, false); }
void *gm_op_new_array_aligned(size_t size, size_t align) { return cxx_new(size, align, false); }
void *gm_op_new_aligned_nothrow(size_t size, size_t align, gm_nothrow_ref nt) {
    (void)nt;
    return cxx_new(size, align, true);
}
void *gm_op_new_array_aligned_nothrow(size_t size, size_t align, gm_nothrow_ref nt) {
    (void)nt;
    return cxx_new(size, align, true);
}

void gm_op_delete(void *ptr) { cxx_delete(ptr); }
void gm_op_delete_array(void *ptr) { cxx_delete(ptr); }
void gm_op_delete_nothrow(void *ptr, gm_nothrow_ref nt) {
    (void)nt;
    cxx_delete(ptr);
}
void gm_op_delete_array_nothrow(void *ptr, gm_nothrow_ref nt) {
    (void)nt;
    cxx_delete(ptr);
}
void gm_op_delete_sized(void *ptr, size_t size) { cxx_delete_checked(ptr, 0, size); }
void gm_op_delete_array_sized(void *ptr, size_t size) { cxx_delete_checked(ptr, 0, size); }
void gm_op_delete_aligned(void *ptr, size_t align) { cxx_delete_checked(ptr, align, GM_NO_SIZE); }
void gm_op_delete_array_aligned(void *ptr, size_t align) {
    cxx_delete_checked(ptr, align, GM_NO_SIZE);
}
void gm_op_delete_aligned_nothrow(void *ptr, size_t align, gm_nothrow_ref nt) {
    (void)nt;
    cxx_delete_checked(ptr, align, GM_NO_SIZE);
}
void gm_op_delete_array_aligned_nothrow(void *ptr, size_t align, gm_nothrow_ref nt) {
    (void)nt;
    cxx_delete_checked(ptr, align, GM_NO_SIZE);
}
void gm_op_delete_sized_aligned(void *ptr, size_t size, size_t align) {
    cxx_delete_checked(ptr, align, size);
}
void gm_op_delete_array_sized_aligned(void *ptr, size_t size, size_t align) {
    cxx_delete_checked(ptr, align, size);
}
