// cxx_catch.cc — the one thing the C++ operators (cxx_new.c) cannot do in C:
// catch.  A nothrow operator new whose new-handler throws must return NULL,
// as libstdc++'s own does (it catches everything the handler throws).
//
// Built into libgomalloc without linking libstdc++: the C++ runtime symbols
// this object refers to (the personality routine, __cxa_begin_catch,
// __cxa_end_catch) are made weak below, so they add no DT_NEEDED entry and
// resolve to null in a program without a C++ runtime.  This function runs
// only when a new-handler is installed, that is in a program whose C++
// runtime is loaded and provides them.  The Makefile checks that every
// undefined symbol of this object is weak.

__asm__(".weak __gxx_personality_v0\n"
        ".weak __cxa_begin_catch\n"
        ".weak __cxa_end_catch\n"
        ".weak __cxa_rethrow\n"
        ".weak _Unwind_Resume\n"
        ".weak __cxa_call_terminate\n"
        ".weak _ZSt9terminatev\n");

typedef void (*gm_new_handler_fn)();

extern "C" __attribute__((visibility("hidden"))) bool
gm_cxx_call_new_handler_nothrow(gm_new_handler_fn handler) {
    try {
        handler();
    } catch (...) {
        return false;
    }
    return true;
}
